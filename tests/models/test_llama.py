"""The Llama decoder family against keras-hub's own Llama, Llama 3, Mistral, Qwen2 and
Gemma models with the same weights; the cache, grouped-query and sliding-window
invariants; presets with the published parameter counts."""

import keras_hub
import numpy as np
import pytest

from tfllm.errors import ConfigError
from tfllm.models import build_pretraining_model, configs
from tfllm.models.llama import LlamaBackbone
from tfllm.models.stats import llama_parameter_count

VOCAB, LENGTH = 97, 12


def _config(**fields):
    base = dict(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4,
                num_key_value_heads=2, intermediate_size=48, max_sequence_length=64,
                layer_norm_epsilon=1e-6)
    return configs.LlamaConfig(**{**base, **fields})


# name -> (our config, keras-hub backbone built with the same architecture)
VARIANTS = {
    "llama_gqa_untied": (
        _config(tie_word_embeddings=False, rope_theta=500.0),
        lambda: keras_hub.models.LlamaBackbone(
            vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, hidden_dim=32,
            intermediate_dim=48, num_key_value_heads=2, rope_max_wavelength=500,
            layer_norm_epsilon=1e-6, tie_word_embeddings=False)),
    "llama3_rope_scaling": (
        _config(num_key_value_heads=1, rope_theta=500.0, rope_scaling="llama3",
                rope_scaling_factor=8.0, rope_low_freq_factor=1.0, rope_high_freq_factor=4.0,
                rope_original_max_length=16),
        lambda: keras_hub.models.Llama3Backbone(
            vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, hidden_dim=32,
            intermediate_dim=48, num_key_value_heads=1, rope_max_wavelength=500,
            rope_frequency_adjustment_factor=8.0, rope_low_freq_factor=1.0,
            rope_high_freq_factor=4.0, rope_pretraining_sequence_length=16,
            layer_norm_epsilon=1e-6, tie_word_embeddings=True)),
    "qwen2_biases": (
        _config(attention_bias=True, rope_theta=10000.0),
        lambda: keras_hub.models.QwenBackbone(
            vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2,
            hidden_dim=32, intermediate_dim=48, layer_norm_epsilon=1e-6,
            tie_word_embeddings=True)),
    "mistral_sliding_window": (
        _config(sliding_window=3, tie_word_embeddings=False),
        lambda: keras_hub.models.MistralBackbone(
            vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, hidden_dim=32,
            intermediate_dim=48, num_key_value_heads=2, layer_norm_epsilon=1e-6,
            sliding_window=3)),
    "gemma_mqa_head_dim": (
        _config(num_key_value_heads=1, head_dim=16, activation="gelu_approximate",
                scale_embeddings=True, norm_scale_offset=1.0),
        lambda: keras_hub.models.GemmaBackbone(
            vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=1,
            hidden_dim=32, intermediate_dim=96, head_dim=16, layer_norm_epsilon=1e-6)),
}

# Our weight names (suffixes of `weight.path`) for keras-hub's, and how to reshape.
_LLAMA_NAMES = {
    "self_attention_layernorm/scale": "attention_norm/scale",
    "self_attention/query/kernel": "attention/query/kernel",
    "self_attention/query/bias": "attention/query/bias",
    "self_attention/key/kernel": "attention/key/kernel",
    "self_attention/key/bias": "attention/key/bias",
    "self_attention/value/kernel": "attention/value/kernel",
    "self_attention/value/bias": "attention/value/bias",
    "self_attention/attention_output/kernel": "attention/attention_output/kernel",
    "feedforward_layernorm/scale": "feedforward_norm/scale",
    "feedforward_gate_dense/kernel": "gate/kernel",
    "feedforward_intermediate_dense/kernel": "up/kernel",
    "feedforward_output_dense/kernel": "down/kernel",
}
_GEMMA_NAMES = {
    "pre_attention_norm/scale": "attention_norm/scale",
    "attention/query/kernel": "attention/query/kernel",
    "attention/key/kernel": "attention/key/kernel",
    "attention/value/kernel": "attention/value/kernel",
    "attention/attention_output/kernel": "attention/attention_output/kernel",
    "pre_ffw_norm/scale": "feedforward_norm/scale",
    "ffw_gating/kernel": "gate/kernel",
    "ffw_gating_2/kernel": "up/kernel",
    "ffw_linear/kernel": "down/kernel",
}


def _ours_for(path):
    """Our weight path for a keras-hub weight path."""
    head, _, name = path.partition("/")
    if head in ("token_embedding",):
        return path
    if head in ("sequence_output_layernorm", "final_normalization"):
        return "final_norm/scale"
    block = head.replace("decoder_block_", "transformer_layer_")
    return f"{block}/{(_LLAMA_NAMES | _GEMMA_NAMES)[name]}"


def _copy_from_keras_hub(reference, ours):
    by_path = {w.path: w for w in ours.weights}
    copied = set()
    for weight in reference.weights:
        value = np.asarray(weight.numpy())
        if weight.path.endswith(("query/kernel", "key/kernel", "value/kernel")) and \
                "decoder_block" in weight.path:  # Gemma: [heads, hidden, head_dim]
            value = value.transpose(1, 0, 2)
        target = _ours_for(weight.path)
        by_path[target].assign(value)
        copied.add(target)
    assert copied == set(by_path), set(by_path) - copied


def _random_weights(model, rng, scale=0.3):
    for weight in model.weights:
        weight.assign(rng.normal(0, scale, weight.shape).astype("float32"))


def _batch(rng):
    ids = rng.integers(1, VOCAB, (2, LENGTH)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, 9:] = 0  # right padding
    return {"token_ids": ids, "padding_mask": mask}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_hidden_states_and_greedy_decoding_equal_keras_hub(variant, rng):
    config, make_reference = VARIANTS[variant]
    reference = make_reference()
    _random_weights(reference, rng)
    lm = build_pretraining_model(config)
    _copy_from_keras_hub(reference, lm.backbone)
    batch = _batch(rng)
    theirs = np.asarray(reference(batch))
    ours = np.asarray(lm.backbone(batch))
    real = batch["padding_mask"].astype(bool)
    np.testing.assert_allclose(ours[real], theirs[real], atol=1e-4, rtol=1e-4)

    # Our cached greedy continuation equals greedy decoding by keras-hub's full passes.
    prompt = batch["token_ids"][:1, :5]
    tokens = list(prompt[0])
    for _ in range(6):
        ids = np.array([tokens], "int32")
        hidden = reference({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        logits = np.asarray(reference.token_embedding(hidden, reverse=True))
        tokens.append(int(np.argmax(logits[0, -1])))
    cache = lm.empty_cache(1, 11)
    logits, _, cache = lm.call_with_cache(prompt, cache, 0)
    generated, next_token = [], int(np.argmax(logits[0, -1]))
    for index in range(5, 11):
        generated.append(next_token)
        logits, _, cache = lm.call_with_cache(np.array([[next_token]], "int32"), cache, index)
        next_token = int(np.argmax(logits[0, -1]))
    assert generated == tokens[5:]


@pytest.fixture(scope="module")
def windowed():
    config = _config(sliding_window=4, num_layers=1)
    lm = build_pretraining_model(config)
    _random_weights(lm, np.random.default_rng(3))
    return lm


def test_prefill_and_token_by_token_decoding_equal_the_full_pass(windowed, rng):
    ids = rng.integers(1, VOCAB, (2, LENGTH)).astype("int32")
    full = np.asarray(windowed({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
    cache = windowed.empty_cache(2, LENGTH)
    logits, _, cache = windowed.call_with_cache(ids[:, :5], cache, 0)
    steps = [np.asarray(logits)]
    for index in range(5, LENGTH):
        logits, _, cache = windowed.call_with_cache(ids[:, index:index + 1], cache, index)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4, rtol=1e-4)


def test_sliding_window_sees_exactly_the_last_n_positions(windowed, rng):
    """With one block and a window of 4, position 8 depends on tokens 5..8 only."""
    ids = rng.integers(1, VOCAB, (1, LENGTH)).astype("int32")

    def at_8(changed_position):
        changed = ids.copy()
        changed[0, changed_position] = (changed[0, changed_position] + 1) % VOCAB
        inputs = {"token_ids": changed, "padding_mask": np.ones_like(changed)}
        return np.asarray(windowed(inputs))[0, 8]

    unchanged = np.asarray(windowed({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
    for position in range(LENGTH):
        moved = not np.allclose(at_8(position), unchanged[0, 8], atol=1e-6)
        assert moved == (5 <= position <= 8), position


def test_left_padded_rows_read_as_they_would_alone(rng):
    lm = build_pretraining_model(_config())
    _random_weights(lm, rng)
    ids = rng.integers(1, VOCAB, (1, 7)).astype("int32")
    alone = np.asarray(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
    padded = np.concatenate([np.zeros((1, 5), "int32"), ids], axis=1)
    mask = np.concatenate([np.zeros((1, 5), "int32"), np.ones((1, 7), "int32")], axis=1)
    np.testing.assert_allclose(np.asarray(lm({"token_ids": padded, "padding_mask": mask}))[:, 5:],
                               alone, atol=1e-4, rtol=1e-4)


def test_the_cache_holds_only_the_key_value_heads():
    grouped = build_pretraining_model(_config(num_heads=8, num_key_value_heads=2))
    full = build_pretraining_model(_config(num_heads=8, num_key_value_heads=8))
    small, large = (np.asarray(m.empty_cache(2, 16)) for m in (grouped, full))
    assert small.shape == (2, 2, 2, 16, 2, 4)
    assert small.nbytes * 8 == large.nbytes * 2  # kv_heads / heads of multi-head attention


def test_parameter_count_from_the_config_equals_the_built_model():
    for fields in ({}, {"attention_bias": True}, {"tie_word_embeddings": False},
                   {"num_key_value_heads": 1, "head_dim": 16}, {"num_key_value_heads": 4}):
        config = _config(**fields)
        model = build_pretraining_model(config)
        assert llama_parameter_count(config) == model.count_params(), fields


@pytest.mark.parametrize("preset", ["smollm2_135m", "qwen2_5_0_5b", "tinyllama_1_1b",
                                    "llama3_2_1b", "mistral_7b", "gemma_2b"])
def test_presets_have_the_published_parameter_counts(preset):
    assert (llama_parameter_count(configs.get_preset(preset))
            == configs.PUBLISHED_PARAMETER_COUNTS[preset])


def test_the_smallest_published_preset_builds_with_its_published_count():
    """Built, not run (the larger ones are counted: mistral_7b's weights take 27 GiB)."""
    model = build_pretraining_model(configs.get_preset("smollm2_135m"))
    assert model.count_params() == configs.PUBLISHED_PARAMETER_COUNTS["smollm2_135m"]


def test_config_round_trip_mixed_precision_and_errors(rng):
    config = _config(attention_bias=True, sliding_window=5, dtype="mixed_bfloat16")
    assert configs.from_dict(config.to_dict()) == config
    backbone = LlamaBackbone(config)
    restored = LlamaBackbone.from_config(backbone.get_config())
    assert restored.config == config
    lm = build_pretraining_model(config)
    logits = lm(_batch(rng))
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
    assert lm.backbone.transformer_layers[0]._feedforward_gate_dense.kernel.dtype == "float32"
    assert configs.override(config, {"attention_bias": "false"}).attention_bias is False
    for fields, message in (({"num_key_value_heads": 3}, "not a multiple"),
                            ({"rope_scaling": "yarn"}, "rope_scaling"),
                            ({"hidden_size": 30}, "set head_dim"),
                            ({"head_dim": 5}, "must be even")):
        with pytest.raises(ConfigError, match=message):
            _config(**fields)
    with pytest.raises(ConfigError, match="expects true or false"):
        configs.override(config, {"attention_bias": "maybe"})


def test_lora_targets_the_gated_feed_forward():
    from tfllm.models.lora import apply_lora

    lm = build_pretraining_model(_config())
    trainable = apply_lora(lm.backbone, 2, targets=("query", "value", "gate"))
    assert len(trainable) == 2 * 3 * 2  # two factors, three projections, two blocks
    assert all(not w.trainable for w in lm.backbone.token_embedding.weights)
