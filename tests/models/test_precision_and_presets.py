import numpy as np
import pytest

from tests.models.helpers import bert_batch, gpt_batch, tiny
from tfllm.models import build_pretraining_model, configs


@pytest.mark.parametrize("family", ["bert", "gpt"])
@pytest.mark.parametrize("policy, compute", [("mixed_bfloat16", "bfloat16"),
                                             ("mixed_float16", "float16")])
def test_mixed_precision_keeps_float32_weights_and_logits(family, policy, compute, rng):
    model = build_pretraining_model(tiny(family, dtype=policy))
    assert model.backbone.transformer_layers[0].compute_dtype == compute
    assert all(w.dtype == "float32" for w in model.weights)
    batch = (bert_batch if family == "bert" else gpt_batch)(rng, model.config)
    outputs = model(batch, training=False)
    outputs = outputs if isinstance(outputs, dict) else {"logits": outputs}
    for value in outputs.values():
        assert value.dtype == "float32"
        assert np.isfinite(value.numpy()).all()
    hidden = model.backbone({k: v for k, v in batch.items() if k != "mask_positions"},
                            training=False)
    hidden = hidden["sequence_output"] if isinstance(hidden, dict) else hidden
    assert hidden.dtype == compute


@pytest.mark.parametrize("name", ["bert_tiny", "gpt_tiny", "bert_small", "gpt_small"])
def test_trainable_presets_run_forward(name, rng):
    model = build_pretraining_model(configs.get_preset(name))
    config = model.config
    if config.family == "bert":
        out = model(bert_batch(rng, config, batch=2, length=32), training=False)
        assert out["mlm_logits"].shape == (2, 3, config.vocab_size)
    else:
        assert model(gpt_batch(rng, config, batch=2, length=32), training=False).shape == (
            2, 32, config.vocab_size)


def test_tiny_presets_have_a_few_hundred_thousand_parameters():
    for name in ("bert_tiny", "gpt_tiny"):
        assert 100_000 < build_pretraining_model(configs.get_preset(name)).count_params() < 1e6


@pytest.mark.parametrize("name", ["bert_base", "gpt2_small"])
def test_published_presets_match_the_published_parameter_counts(name):
    """Built, not run: the weights exist with the published shapes."""
    model = build_pretraining_model(configs.get_preset(name))
    assert model.backbone.count_params() == configs.PUBLISHED_PARAMETER_COUNTS[name]
    if name == "bert_base":
        # BertForPreTraining: + MLM transform (768x768+768), LayerNorm, vocab bias, NSP.
        assert model.count_params() == 110_106_428
        assert model.backbone.output["sequence_output"].shape == (None, None, 768)
    else:
        assert model.count_params() == 124_439_808
        assert model.output.shape == (None, None, 50257)
