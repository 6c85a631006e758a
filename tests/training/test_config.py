"""TrainConfig validates itself where it is built, naming every bad setting."""

import pytest

from tfllm.errors import ConfigError
from tfllm.training.config import TrainConfig


def _config(**fields):
    return TrainConfig(data_dir="d", model_dir="m", **fields)


def test_defaults_are_valid():
    assert _config().lora_target_names == ("query", "value")
    assert _config(lora_targets=" query , key ,").lora_target_names == ("query", "key")


@pytest.mark.parametrize("fields, message", [
    ({"train_steps": 0}, "--train_steps must be at least 1 (got 0)"),
    ({"global_batch_size": -4}, "--global_batch_size must be at least 1 (got -4)"),
    ({"grad_accum_steps": 0}, "--grad_accum_steps must be at least 1"),
    ({"steps_per_loop": 0}, "--steps_per_loop must be at least 1 (got 0)"),
    ({"log_every": 0}, "--log_every must be at least 1"),
    ({"eval_steps": 0}, "--eval_steps must be at least 1"),
    ({"checkpoint_every": 0}, "--checkpoint_every must be at least 1"),
    ({"keep_checkpoints": 0}, "--keep_checkpoints must be at least 1"),
    ({"warmup_steps": -1}, "--warmup_steps must not be negative (got -1)"),
    ({"clipnorm": -1.0}, "--clipnorm must not be negative"),
    ({"freeze_layers": -2}, "--freeze_layers must not be negative"),
    ({"mlm_max_predictions": -1}, "--mlm_max_predictions must not be negative"),
    ({"mlm_mask_rate": 1.0}, "--mlm_mask_rate must be in [0, 1) (got 1.0)"),
    ({"learning_rate": 0.0}, "--learning_rate must be positive (got 0.0)"),
    ({"encoder_lr_multiplier": 0.0}, "--encoder_lr_multiplier must be positive"),
    ({"optimizer": "sgd"}, "unknown --optimizer='sgd' (choose adamw or lamb)"),
    ({"lr_decay": "step"}, "--lr_decay must be linear or cosine (got 'step')"),
    ({"lora_rank": 4, "lora_targets": " , "}, "--lora_rank needs at least one --lora_targets"),
])
def test_each_bad_setting_is_named(fields, message):
    with pytest.raises(ConfigError, match="^Invalid training settings: ") as error:
        _config(**fields)
    assert message in str(error.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as error:
        _config(train_steps=0, learning_rate=-1.0)
    assert "--train_steps" in str(error.value) and "--learning_rate" in str(error.value)
