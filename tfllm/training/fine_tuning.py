"""Fine-tuning adaptation: a pretrained backbone, LoRA, frozen layers, and a slower
learning rate for the backbone than for the new head.

These are the usual recipes (Model Garden's sentence-prediction task, the LoRA
paper); they only decide which weights start where and which optimizer moves
them, so the training step stays the same for pretraining and fine-tuning.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tfllm.errors import ConfigError
from tfllm.models import lora
from tfllm.training import optimization

_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                 "max_sequence_length", "family", "type_vocab_size")


@dataclasses.dataclass
class OptimizerGroup:
    """One optimizer and the trainable variables it updates (by index and value)."""
    optimizer: object
    indices: list
    variables: list


def restore_backbone(backbone, init_checkpoint, model_config):
    """Loads the backbone of a pretrained tfllm model into `backbone` (heads are left)."""
    path = init_checkpoint
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                saved = json.load(f)["model"]
            current = model_config.to_dict()
            differ = [f"{k} {saved.get(k)} vs {current.get(k)}" for k in _SHAPE_FIELDS
                      if saved.get(k) != current.get(k)]
            if differ:
                raise ConfigError(f"--init_checkpoint {init_checkpoint} does not match the "
                                  f"model: {'; '.join(differ)}.")
        path = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    if not path:
        raise ConfigError(f"--init_checkpoint {init_checkpoint} holds no checkpoint.")
    try:
        tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone)).restore(
            path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ConfigError(f"--init_checkpoint {init_checkpoint} does not fit this model's "
                          f"backbone: {str(error).splitlines()[0]}") from None


def adapt(model, config):
    """Applies LoRA and layer freezing; returns a line with the parameter counts."""
    if config.lora_rank:
        lora.apply_lora(model.backbone, config.lora_rank, config.lora_alpha or None,
                        config.lora_target_names)
    if config.freeze_layers:
        blocks = model.backbone.transformer_layers
        if config.freeze_layers > len(blocks):
            raise ConfigError(f"--freeze_layers={config.freeze_layers} exceeds the model's "
                              f"{len(blocks)} transformer blocks.")
        frozen = [model.backbone.token_embedding, model.backbone.position_embedding,
                  *blocks[:config.freeze_layers]]
        for layer in frozen:
            for variable in layer.weights:
                variable.trainable = False
    count = lambda weights: sum(int(np.prod(v.shape)) for v in weights)  # noqa: E731
    return (f"parameters: {count(model.trainable_weights):,} trainable, "
            f"{count(model.non_trainable_weights):,} frozen")


def create_optimizer_groups(model, config, model_config):
    """One built optimizer for every trainable variable, or one for the head and a
    second, slower one for the backbone when --encoder_lr_multiplier is not 1."""
    variables = model.trainable_variables
    multiplier = config.encoder_lr_multiplier
    float16 = model_config.dtype == "mixed_float16"
    if multiplier == 1.0:
        parts = [(list(range(len(variables))), 1.0)]
    else:
        if float16:
            raise ConfigError("--encoder_lr_multiplier cannot be combined with mixed_float16 "
                              "(one loss scale per optimizer).")
        backbone = {id(v) for v in model.backbone.trainable_variables}
        parts = [([i for i, v in enumerate(variables) if id(v) not in backbone], 1.0),
                 ([i for i, v in enumerate(variables) if id(v) in backbone], multiplier)]
    groups = []
    for indices, lr_multiplier in parts:
        optimizer = optimization.create_optimizer(
            config.optimizer, config.learning_rate * lr_multiplier, config.warmup_steps,
            config.train_steps, config.lr_decay, config.weight_decay,
            loss_scale=float16 and not groups)
        group = [variables[i] for i in indices]
        optimizer.build(group)
        groups.append(OptimizerGroup(optimizer, indices, group))
    return groups


def prepare(model, config, model_config, report):
    """Everything fine-tuning changes before the first step; returns the optimizer groups.
    Call inside the strategy's scope (the optimizers' variables are created here)."""
    if config.init_checkpoint:
        restore_backbone(model.backbone, config.init_checkpoint, model_config)
    report(adapt(model, config))
    return create_optimizer_groups(model, config, model_config)


def save_outputs(model, config):
    """The LoRA adapter and the merged weights, next to the checkpoints; their paths."""
    if not config.lora_rank:
        return {}
    lora.save_adapter(model, os.path.join(config.model_dir, "adapter.npz"))
    return {"merged_weights": lora.merged_weights_path(
        model, os.path.join(config.model_dir, "merged.weights.h5"))}
