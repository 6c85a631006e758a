import os
import subprocess
import sys

import numpy as np

from tests.models.helpers import bert_batch, gpt_batch, tiny
from tfllm.evaluation.attention import attention_maps, heatmap_png
from tfllm.models import build_backbone


def test_gpt_attention_is_causal_and_normalised(rng, tmp_path):
    backbone = build_backbone(tiny("gpt", dropout=0.0))
    batch = gpt_batch(rng, backbone.config, batch=1, length=9)
    maps = attention_maps(backbone, batch)
    assert len(maps) == backbone.config.num_layers
    for scores in maps:
        assert scores.shape == (1, backbone.config.num_heads, 9, 9)
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
        assert np.all(np.triu(scores[0, 0], k=1) == 0)
    path = heatmap_png(maps[0][0], [f"t{i}" for i in range(9)], "layer 0",
                       str(tmp_path / "layer.png"))
    assert os.path.getsize(path) > 1000


def test_llama_attention_is_causal_windowed_and_ignores_padding(rng):
    from tfllm.models import configs

    backbone = build_backbone(configs.LlamaConfig(
        vocab_size=50, hidden_size=16, num_layers=2, num_heads=4, num_key_value_heads=2,
        intermediate_size=32, max_sequence_length=16, sliding_window=3))
    ids = rng.integers(1, 50, (1, 9)).astype("int32")
    mask = np.array([[1] * 7 + [0, 0]], "int32")
    maps = attention_maps(backbone, {"token_ids": ids, "padding_mask": mask})
    assert len(maps) == 2
    for scores in maps:
        assert scores.shape == (1, 4, 9, 9)
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
        assert np.all(np.triu(scores[0, 0], k=1) == 0)  # causal
        assert np.all(np.tril(scores[0, 0, :7, :7], k=-3) == 0)  # the last 3 positions
        assert np.allclose(scores[0, :, :7, 7:], 0.0)  # padding


def test_bert_attention_ignores_padding(rng):
    backbone = build_backbone(tiny("bert", dropout=0.0))
    batch = bert_batch(rng, backbone.config, batch=1, length=10, lengths=[6])
    features = {k: v for k, v in batch.items() if k != "mask_positions"}
    for scores in attention_maps(backbone, features):
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
        assert np.allclose(scores[0, :, :, 6:], 0.0, atol=1e-6)


def test_attention_command_needs_text():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-m", "tfllm.attention", "--model_dir=x"],
                            cwd=repo, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2 and "non-empty --text" in result.stderr
