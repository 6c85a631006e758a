"""Reading a trained (or converted) model directory back: architecture, weights and
tokenizer."""

import json
import os

import tensorflow as tf

from tfllm import tasks
from tfllm.data import output
from tfllm.errors import ConfigError
from tfllm.models import configs
from tfllm.text.tokenizers import load_tokenizer


def load_trained(model_dir, with_tokenizer=True):
    """(task model with the trained weights, data `Manifest` (a stand-in for a converted
    model), tokenizer or None)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"{model_dir} has no config.json: it is not a tfllm model directory.")
    with open(path) as f:
        saved = json.load(f)
    config = configs.from_dict(saved["model"])
    if "train" not in saved:  # converted from a published checkpoint (tfllm.convert)
        manifest = output.Manifest(kind=saved["kind"],
                                   tokenizer=output.TokenizerInfo(**saved["tokenizer"]),
                                   converted=True, directory=model_dir)
    else:
        manifest = output.read_manifest(saved["train"]["data_dir"])
    task = tasks.for_manifest(manifest)
    if not manifest.converted:
        task.check_model(config)
    model = task.build_model(config)
    merged = os.path.join(model_dir, "merged.weights.h5")
    if os.path.exists(merged):  # LoRA training: adapters merged into the base kernels
        model.load_weights(merged)
    else:
        checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
        if checkpoint is None:
            raise ConfigError(f"{model_dir} has no checkpoint yet; train it first.")
        tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    tokenizer = None
    if with_tokenizer:
        tokenizer = load_tokenizer(os.path.join(manifest.directory, manifest.tokenizer.file))
    return model, manifest, tokenizer


def pretrained_architecture(init_checkpoint):
    """The config of an --init_checkpoint model directory (trained or converted), or None
    (a checkpoint prefix, or nothing)."""
    path = os.path.join(init_checkpoint or "", "config.json")
    if not init_checkpoint or not os.path.isfile(path):
        return None
    with open(path) as f:
        return configs.from_dict(json.load(f)["model"])
