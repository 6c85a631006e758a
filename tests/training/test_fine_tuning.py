"""Fine-tuning through the trainer: init checkpoints, LoRA, freezing."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import (make_trainer, tiny_gpt_config, write_classify_data,
                                    write_gpt_data)
from tfllm.errors import ConfigError


def one_device():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    data = write_gpt_data(root / "data")
    keras.utils.set_random_seed(1)
    trainer = make_trainer(*data, root / "model", one_device(), train_steps=2)
    trainer.train()
    weights = {v.path: v.numpy() for v in trainer.model.backbone.weights}
    return str(root / "model"), weights


@pytest.fixture(scope="module")
def classify_data(tmp_path_factory):
    return write_classify_data(tmp_path_factory.mktemp("classify"))


def _backbone_matches(trainer, weights):
    for variable in trainer.model.backbone.weights:
        if variable.path in weights:
            np.testing.assert_array_equal(variable.numpy(), weights[variable.path])


def test_init_checkpoint_loads_the_pretrained_backbone(pretrained, classify_data, tmp_path):
    model_dir, weights = pretrained
    trainer = make_trainer(*classify_data, tmp_path, one_device(), train_steps=40,
                           init_checkpoint=model_dir, learning_rate=3e-3)
    _backbone_matches(trainer, weights)
    summary = trainer.train()
    assert summary["eval/cls_accuracy"] > 0.7  # the even/odd rule is learned


@pytest.mark.parametrize("overrides, message", [
    ({"num_layers": 3}, "does not match the model: num_layers 2 vs 3"),
    ({"hidden_size": 64, "intermediate_size": 64}, "hidden_size 32 vs 64"),
])
def test_init_checkpoint_of_another_architecture(pretrained, classify_data, tmp_path,
                                                 overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_trainer(*classify_data, tmp_path, one_device(), init_checkpoint=pretrained[0],
                     model_config=tiny_gpt_config(**overrides))


def test_init_checkpoint_without_checkpoint(classify_data, tmp_path):
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        make_trainer(*classify_data, tmp_path / "m", one_device(),
                     init_checkpoint=str(tmp_path))


def test_mlm_masking_needs_bert_data(classify_data, tmp_path):
    with pytest.raises(ConfigError, match="--mlm_mask_rate and --mlm_max_predictions are "
                       "for BERT pretraining data; .* holds classify examples"):
        make_trainer(*classify_data, tmp_path / "m", one_device(), mlm_mask_rate=0.3)


def test_lora_fine_tuning_keeps_the_base_and_writes_the_adapter(pretrained, classify_data,
                                                                tmp_path):
    model_dir, weights = pretrained
    trainer = make_trainer(*classify_data, tmp_path, one_device(), train_steps=5,
                           init_checkpoint=model_dir, lora_rank=4)
    trainable = {v.path for v in trainer.model.trainable_weights}
    assert trainable and all("lora" in p or "classifier_head" in p for p in trainable)
    summary = trainer.train()
    _backbone_matches(trainer, weights)  # frozen base weights unchanged
    assert os.path.exists(tmp_path / "adapter.npz")
    assert summary["merged_weights"].endswith("merged.weights.h5")


def test_freezing_layers(pretrained, classify_data, tmp_path):
    trainer = make_trainer(*classify_data, tmp_path, one_device(), freeze_layers=1)
    frozen = {v.path for v in trainer.model.non_trainable_weights}
    assert any("transformer_layer_0" in p for p in frozen)
    assert not any("transformer_layer_1" in p for p in frozen)
    assert any("token_embedding" in p for p in frozen)
    with pytest.raises(ConfigError, match="--freeze_layers=5 exceeds"):
        make_trainer(*classify_data, tmp_path / "x", one_device(), freeze_layers=5)


def test_encoder_learning_rate_multiplier(pretrained, classify_data, tmp_path):
    model_dir, weights = pretrained
    trainer = make_trainer(*classify_data, tmp_path, one_device(), train_steps=3,
                           init_checkpoint=model_dir, encoder_lr_multiplier=0.0001)
    head_before = [v.numpy().copy() for v in trainer.model.classifier_head.weights]
    trainer.train()
    # The backbone moved by at most ~lr*multiplier per step; the head moved normally.
    for variable in trainer.model.backbone.trainable_variables:
        np.testing.assert_allclose(variable.numpy(), weights[variable.path], atol=1e-5)
    assert any(not np.allclose(a, v.numpy())
               for a, v in zip(head_before, trainer.model.classifier_head.weights))
    assert int(trainer.optimizer.iterations.numpy()) == 3
    assert int(trainer.encoder_optimizer.iterations.numpy()) == 3
    with pytest.raises(ConfigError, match="--encoder_lr_multiplier must be positive"):
        make_trainer(*classify_data, tmp_path / "x", one_device(), encoder_lr_multiplier=-1.0)


def test_label_outside_the_label_vocabulary(tmp_path):
    from tfllm.errors import InputError

    data_dir, manifest = write_classify_data(tmp_path / "data")
    manifest = dataclasses.replace(manifest, labels=["only"])  # the data also holds id 1
    with pytest.raises(InputError, match="label id outside the label vocabulary \\(1 labels"):
        make_trainer(data_dir, manifest, tmp_path / "m", one_device(), train_steps=3).train()
