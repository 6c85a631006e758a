import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import tiny_gpt_config
from tfllm.errors import ConfigError
from tfllm.models import build_pretraining_model
from tfllm.training import optimization, strategy


def test_warmup_then_linear_and_cosine_decay():
    linear = optimization.WarmupThenDecay(1.0, warmup_steps=10, total_steps=110)
    values = [float(linear(s)) for s in (0, 4, 9, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.1, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    cosine = optimization.WarmupThenDecay(1.0, 10, 110, decay="cosine", end_fraction=0.1)
    np.testing.assert_allclose([float(cosine(s)) for s in (10, 60, 110)], [1.0, 0.55, 0.1],
                               atol=1e-6)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_weight_decay_skips_layer_norms_and_biases(name):
    model = build_pretraining_model(tiny_gpt_config())
    optimizer = optimization.create_optimizer(name, 1e-3, 10, 100)
    optimizer.build(model.trainable_variables)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed and all(not p.endswith(("bias", "gamma", "beta")) for p in decayed)
    assert any(p.endswith("kernel") for p in decayed)
    assert any(p.endswith("embeddings") for p in decayed)


def test_bad_optimizer_settings():
    with pytest.raises(ConfigError, match="Unknown --optimizer='sgd'"):
        optimization.create_optimizer("sgd", 1e-3, 0, 10)
    with pytest.raises(ConfigError, match="--lr_decay must be linear or cosine"):
        optimization.create_optimizer("adamw", 1e-3, 0, 10, decay="step")
    with pytest.raises(ConfigError, match="--learning_rate must be positive"):
        optimization.create_optimizer("adamw", 0.0, 0, 10)


def test_auto_strategy_without_accelerators_is_one_device():
    assert isinstance(strategy.create_strategy("auto"), tf.distribute.OneDeviceStrategy)
    assert strategy.is_chief(strategy.create_strategy("one_device"))


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG is malformed"),
    (json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker",
                                                               "index": 3}}),
     "TF_CONFIG is malformed"),
    (json.dumps({"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker",
                                                               "index": 0}}),
     "TF_CONFIG is malformed"),
])
def test_multi_worker_validates_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=message):
        strategy.create_strategy("multi_worker")


def test_tpu_and_cpu_replica_errors():
    with pytest.raises(ConfigError, match="--strategy=tpu needs --tpu"):
        strategy.create_strategy("tpu")
    with pytest.raises(ConfigError, match="--cpu_replicas applies to"):
        strategy.create_strategy("tpu", cpu_replicas=2)
    with pytest.raises(ConfigError, match="Unknown --strategy='horovod'"):
        strategy.create_strategy("horovod")


def test_schedule_serialises_with_the_optimizer():
    optimizer = optimization.create_optimizer("adamw", 1e-3, 5, 50, decay="cosine")
    restored = keras.optimizers.AdamW.from_config(optimizer.get_config())
    assert float(restored.learning_rate) == pytest.approx(float(optimizer.learning_rate))
