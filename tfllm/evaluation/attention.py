"""Per-layer, per-head attention probabilities of a backbone, and their heatmaps."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from tfllm.models.llama import attention_mask, real_positions  # noqa: E402


def attention_maps(backbone, features):
    """[layers] of [batch, heads, query, key] attention probabilities.

    BERT blocks return their scores (keras-hub `return_attention_scores`); GPT and
    Llama-family blocks do not, so their pre-norm attention sublayer is called directly
    with the causal and padding mask, then the whole block runs to move to the next layer.
    """
    config = backbone.config
    if config.family == "llama":
        return _llama_attention_maps(backbone, features)
    tokens = backbone.token_embedding(features["token_ids"])
    if config.family == "bert":
        x = backbone.embeddings_layer_norm(
            tokens + backbone.position_embedding(tokens)
            + backbone.segment_embedding(features["segment_ids"]))
        maps = []
        for block in backbone.transformer_layers:
            x, scores = block(x, padding_mask=features["padding_mask"],
                              return_attention_scores=True)
            maps.append(np.asarray(scores))
        return maps
    x = tokens + backbone.position_embedding(tokens)
    length = ops.shape(x)[1]
    causal = ops.tril(ops.ones((length, length), "int32"))[None]
    mask = causal * ops.cast(features["padding_mask"], "int32")[:, None, :]
    maps = []
    for block in backbone.transformer_layers:
        normed = block._self_attention_layer_norm(x)
        _, scores = block._self_attention_layer(normed, normed, attention_mask=mask,
                                                return_attention_scores=True)
        maps.append(np.asarray(scores))
        x = block(x, decoder_padding_mask=features["padding_mask"])
    return maps


def _llama_attention_maps(backbone, features):
    x = backbone.embed(features["token_ids"])
    positions = real_positions(features["padding_mask"])
    mask = attention_mask(positions, positions, features["padding_mask"],
                          backbone.config.sliding_window)
    maps = []
    for block in backbone.transformer_layers:
        _, weights = block._self_attention_layer(block._self_attention_layernorm(x), mask,
                                                 positions, return_weights=True)
        maps.append(np.asarray(weights))
        x = block(x, mask, positions)
    return maps


def heatmap_png(scores, tokens, title, path):
    """One row of head heatmaps [heads, query, key] for one layer."""
    heads = scores.shape[0]
    figure, axes = plt.subplots(1, heads, figsize=(3.2 * heads + 1, 3.6), squeeze=False)
    for head, axis in enumerate(axes[0]):
        axis.imshow(scores[head], cmap="viridis", vmin=0.0, vmax=1.0)
        axis.set_title(f"head {head}")
        axis.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
        axis.set_yticks(range(len(tokens)), tokens, fontsize=6)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
