import keras
import numpy as np
import pytest

from tests.models.helpers import gpt_batch, tiny
from tfllm.errors import InputError
from tfllm.models import GptBackbone, GptCausalLM


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(11)
    return GptCausalLM(GptBackbone(tiny("gpt")))


def test_output_shape_and_dtype(lm, rng):
    batch = gpt_batch(rng, lm.config, batch=3, length=9)
    logits = lm(batch, training=False)
    assert logits.shape == (3, 9, lm.config.vocab_size)
    assert logits.dtype == "float32"
    assert lm.backbone(batch, training=False).shape == (3, 9, lm.config.hidden_size)


def test_changing_a_later_token_leaves_earlier_logits_unchanged(lm, rng):
    batch = gpt_batch(rng, lm.config, batch=1, length=10)
    reference = lm(batch, training=False).numpy()
    for t in range(9):
        changed = {**batch, "token_ids": batch["token_ids"].copy()}
        changed["token_ids"][0, t + 1] = (changed["token_ids"][0, t + 1] + 1) % lm.config.vocab_size
        logits = lm(changed, training=False).numpy()
        np.testing.assert_allclose(logits[0, :t + 1], reference[0, :t + 1], atol=1e-5)
        assert not np.allclose(logits[0, t + 1], reference[0, t + 1])


def test_lm_head_is_the_transposed_token_embedding(lm, rng):
    embedding = lm.backbone.token_embedding.embeddings
    assert sum(w is embedding for w in lm.weights) == 1
    assert len(lm.weights) == len(lm.backbone.weights)  # the head adds no weights
    batch = gpt_batch(rng, lm.config, batch=2, length=5)
    hidden = lm.backbone(batch, training=False).numpy()
    np.testing.assert_allclose(lm(batch, training=False), hidden @ embedding.numpy().T,
                               atol=1e-4, rtol=1e-4)


def test_kv_cache_decoding_matches_full_recomputation(lm, rng):
    batch = gpt_batch(rng, lm.config, batch=2, length=12)
    full = lm(batch, training=False).numpy()
    prompt = 5
    cache = lm.empty_cache(2, 12)
    logits, _, cache = lm.call_with_cache(batch["token_ids"][:, :prompt], cache, 0)
    steps = [logits.numpy()]
    for index in range(prompt, 12):
        logits, _, cache = lm.call_with_cache(batch["token_ids"][:, index:index + 1],
                                              cache, index)
        steps.append(logits.numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5, rtol=0)


def test_kv_cache_with_left_padding_matches_full_recomputation(lm, rng):
    """Short prompts left-padded in a batch see only their own tokens."""
    length = 10
    batch = gpt_batch(rng, lm.config, batch=2, length=length)
    padding_mask = np.ones((2, length), "int32")
    padding_mask[1, :3] = 0
    cache = lm.empty_cache(2, length)
    logits, _, cache = lm.call_with_cache(batch["token_ids"][:, :6], cache, 0,
                                          padding_mask=padding_mask)
    steps = [logits.numpy()]
    for index in range(6, length):
        logits, _, cache = lm.call_with_cache(batch["token_ids"][:, index:index + 1], cache,
                                              index, padding_mask=padding_mask)
        steps.append(logits.numpy())
    cached = np.concatenate(steps, axis=1)
    padded_full = lm({"token_ids": batch["token_ids"], "padding_mask": padding_mask},
                     training=False).numpy()
    np.testing.assert_allclose(cached[1, 3:], padded_full[1, 3:], atol=1e-5, rtol=0)
    np.testing.assert_allclose(cached[0], lm(batch, training=False).numpy()[0], atol=1e-5)
    # Without the mask the padded positions would leak in: the check is not vacuous.
    unmasked, _, _ = lm.call_with_cache(batch["token_ids"], lm.empty_cache(2, length), 0)
    assert not np.allclose(unmasked.numpy()[1, 3:], padded_full[1, 3:], atol=1e-3)


def test_cache_longer_than_the_context_is_rejected(lm):
    with pytest.raises(InputError, match="exceeds the model's max_sequence_length of 128"):
        lm.empty_cache(1, 129)
