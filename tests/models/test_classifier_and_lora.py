import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import bert_batch, gpt_batch, tiny
from tfllm.errors import ConfigError
from tfllm.models import build_backbone
from tfllm.models.classifier import SequenceClassifier
from tfllm.models.lora import apply_lora, merged_weights_path, save_adapter


def _features(family, rng, config):
    if family == "bert":
        batch = bert_batch(rng, config, lengths=[7, 12])
        return {k: v for k, v in batch.items() if k != "mask_positions"}
    batch = gpt_batch(rng, config)
    batch["padding_mask"][0, 7:] = 0
    return batch


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_classifier_outputs_and_padding(family, rng):
    model = SequenceClassifier(build_backbone(tiny(family)), num_classes=3)
    features = _features(family, rng, model.config)
    logits = model(features, training=False)
    assert logits.shape == (2, 3) and logits.dtype == "float32"
    if family == "gpt":  # reads the last real token: later padding tokens do not matter
        changed = {**features, "token_ids": features["token_ids"].copy()}
        changed["token_ids"][0, 8:] = 1
        np.testing.assert_allclose(model(changed, training=False), logits, atol=1e-5)
    restored = SequenceClassifier.from_config(model.get_config())
    assert restored.num_classes == 3


def _train_steps(model, features, steps=3):
    optimizer = keras.optimizers.Adam(1e-2)
    labels = tf.constant([0, 2])
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, model(features, training=True)))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_lora_trains_only_adapters_and_head_and_merges(family, rng, tmp_path):
    model = SequenceClassifier(build_backbone(tiny(family, dropout=0.0)), num_classes=3)
    features = _features(family, rng, model.config)
    frozen_before = {v.path: v.numpy().copy() for v in model.backbone.weights}
    adapters = apply_lora(model.backbone, rank=4, targets=("query", "value"))
    trainable = {v.path for v in model.trainable_weights}
    assert trainable == {v.path for v in adapters} | {
        v.path for v in model.classifier_head.weights}
    assert len(adapters) == 2 * 2 * model.config.num_layers
    frozen = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    assert frozen == sum(int(np.prod(v.shape)) for v in frozen_before.values())

    _train_steps(model, features)
    for variable in model.backbone.weights:  # the base weights did not move
        if variable.path in frozen_before:
            np.testing.assert_array_equal(variable.numpy(), frozen_before[variable.path])
    assert any(np.abs(v.numpy()).sum() > 0 for v in adapters if "lora_kernel_b" in v.path)

    adapter_logits = model(features, training=False).numpy()
    merged = SequenceClassifier(build_backbone(model.config), num_classes=3)
    merged.load_weights(merged_weights_path(model, str(tmp_path / "merged.weights.h5")))
    np.testing.assert_allclose(merged(features, training=False), adapter_logits, atol=1e-5)
    assert not any("lora" in v.path for v in merged.weights)

    save_adapter(model, tmp_path / "adapter.npz")
    saved = np.load(tmp_path / "adapter.npz")
    assert set(saved.files) == trainable


def test_lora_errors():
    backbone = build_backbone(tiny("bert"))
    with pytest.raises(ConfigError, match="--lora_rank=64 does not fit projection "
                                          "transformer_layer_0/query"):
        apply_lora(backbone, rank=64)
    with pytest.raises(ConfigError, match="Unknown LoRA target\\(s\\) mlp"):
        apply_lora(backbone, rank=2, targets=("mlp",))
