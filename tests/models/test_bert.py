import math

import keras
import numpy as np
import pytest

from tests.models.helpers import bert_batch, tiny
from tfllm.models import BertEncoder, BertPretrainer, build_pretraining_model


def _layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


@pytest.fixture(scope="module")
def pretrainer():
    keras.utils.set_random_seed(7)
    return BertPretrainer(BertEncoder(tiny("bert")))


def test_output_shapes_and_dtypes(pretrainer, rng):
    config = pretrainer.config
    batch = bert_batch(rng, config, batch=3, length=10, num_masked=4)
    outputs = pretrainer(batch, training=False)
    assert outputs["mlm_logits"].shape == (3, 4, config.vocab_size)
    assert outputs["nsp_logits"].shape == (3, 2)
    encoded = pretrainer.backbone({k: batch[k] for k in ("token_ids", "segment_ids",
                                                         "padding_mask")}, training=False)
    assert encoded["sequence_output"].shape == (3, 10, config.hidden_size)
    assert encoded["pooled_output"].shape == (3, config.hidden_size)
    assert all(v.dtype == "float32" for v in [*outputs.values(), *encoded.values()])


def test_padding_does_not_change_real_positions(pretrainer, rng):
    config = pretrainer.config
    batch = bert_batch(rng, config, batch=2, length=12, lengths=[7, 12])
    changed = dict(batch)
    pad = batch["padding_mask"] == 0
    changed["token_ids"] = np.where(pad, rng.integers(1, config.vocab_size, pad.shape),
                                    batch["token_ids"]).astype("int32")
    changed["segment_ids"] = np.where(pad, 1, batch["segment_ids"]).astype("int32")
    assert (changed["token_ids"] != batch["token_ids"]).any()
    encoder = pretrainer.backbone
    inputs = ("token_ids", "segment_ids", "padding_mask")
    before = encoder({k: batch[k] for k in inputs}, training=False)
    after = encoder({k: changed[k] for k in inputs}, training=False)
    real = batch["padding_mask"].astype(bool)
    np.testing.assert_allclose(before["sequence_output"].numpy()[real],
                               after["sequence_output"].numpy()[real], atol=1e-5)
    np.testing.assert_allclose(before["pooled_output"], after["pooled_output"], atol=1e-5)
    # The padded positions themselves did change: the check above is not vacuous.
    assert not np.allclose(before["sequence_output"].numpy()[~real],
                           after["sequence_output"].numpy()[~real])
    # The MLM and NSP outputs, read at real positions only, are unchanged too.
    np.testing.assert_allclose(pretrainer(batch, training=False)["mlm_logits"],
                               pretrainer(changed, training=False)["mlm_logits"], atol=1e-4)


def test_heads_match_an_independent_numpy_computation(pretrainer, rng):
    """MLM runs only at mask_positions, through dense+gelu+LN and the tied embedding."""
    config = pretrainer.config
    batch = bert_batch(rng, config, batch=2, length=9, num_masked=3)
    outputs = pretrainer(batch, training=False)
    encoded = pretrainer.backbone({k: batch[k] for k in ("token_ids", "segment_ids",
                                                         "padding_mask")}, training=False)
    sequence = encoded["sequence_output"].numpy()
    gathered = np.take_along_axis(sequence, batch["mask_positions"][..., None], axis=1)
    head = pretrainer.mlm_head
    dense_kernel, dense_bias = [w.numpy() for w in head._intermediate_dense.weights]
    gamma, beta = [w.numpy() for w in head._intermediate_layer_norm.weights]
    h = gathered @ dense_kernel + dense_bias
    h = 0.5 * h * (1 + np.vectorize(math.erf)(h / np.sqrt(2)))  # exact GELU, as in BERT
    h = _layer_norm(h, gamma, beta, config.layer_norm_epsilon)
    embeddings = pretrainer.backbone.token_embedding.embeddings.numpy()
    expected = h @ embeddings.T + head._bias.numpy()
    np.testing.assert_allclose(outputs["mlm_logits"], expected, atol=1e-4, rtol=1e-4)

    nsp_kernel, nsp_bias = [w.numpy() for w in pretrainer.nsp_head.weights]
    np.testing.assert_allclose(outputs["nsp_logits"],
                               encoded["pooled_output"].numpy() @ nsp_kernel + nsp_bias,
                               atol=1e-5)


def test_pooled_output_reads_the_cls_position(pretrainer, rng):
    batch = bert_batch(rng, pretrainer.config, batch=2, length=8)
    encoded = pretrainer.backbone({k: batch[k] for k in ("token_ids", "segment_ids",
                                                         "padding_mask")}, training=False)
    kernel, bias = [w.numpy() for w in pretrainer.backbone.pooler.weights]
    expected = np.tanh(encoded["sequence_output"].numpy()[:, 0] @ kernel + bias)
    np.testing.assert_allclose(encoded["pooled_output"], expected, atol=1e-5)


def test_mlm_projection_is_tied_to_the_token_embedding(pretrainer):
    embedding = pretrainer.backbone.token_embedding.embeddings
    assert pretrainer.mlm_head.token_embedding.embeddings is embedding
    paths = [w.path for w in pretrainer.weights]
    assert len(paths) == len(set(paths))
    assert sum(w is embedding for w in pretrainer.weights) == 1
    vocab, hidden = embedding.shape
    assert not any(tuple(w.shape) == (hidden, vocab) for w in pretrainer.weights)


def test_gradients_reach_every_weight(rng):
    model = build_pretraining_model(tiny("bert", dropout=0.0))
    batch = bert_batch(rng, model.config)
    import tensorflow as tf
    with tf.GradientTape() as tape:
        out = model(batch, training=True)
        loss = tf.reduce_mean(out["mlm_logits"] ** 2) + tf.reduce_mean(out["nsp_logits"] ** 2)
    grads = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None]
    assert not missing
