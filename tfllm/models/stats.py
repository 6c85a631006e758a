"""Parameter counts and training FLOPs: what a model costs before it runs."""

import dataclasses

from tfllm.models.configs import PUBLISHED_PARAMETER_COUNTS

EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "segment_embedding")


@dataclasses.dataclass(frozen=True)
class ModelStats:
    total_parameters: int
    trainable_parameters: int
    backbone_parameters: int
    embedding_parameters: int
    head_parameters: int
    training_flops_per_token: float
    sequence_length: int

    @property
    def non_embedding_parameters(self):
        return self.backbone_parameters - self.embedding_parameters


def _count(weights):
    return int(sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size)
                   for w in weights))


def training_flops_per_token(config, non_embedding_parameters, sequence_length,
                             predicted_fraction):
    """Forward + backward FLOPs per token: 6N + 12·L·T·d + 6·V·d·f.

    N counts the non-embedding weights (each used in one multiply-add per token),
    12·L·T·d the attention scores and weighted sums (PaLM, appendix B), and
    6·V·d·f the output projection, run on a fraction f of the positions (all of
    them for GPT, the masked ones for BERT).
    """
    attention = 12 * config.num_layers * sequence_length * config.num_heads * config.head_size
    head = 6 * config.vocab_size * config.hidden_size * predicted_fraction
    return 6 * non_embedding_parameters + attention + head


def model_stats(model, sequence_length=None, predicted_fraction=None):
    """Counts of a task model (a backbone with heads) built from a config."""
    config = model.config
    backbone = model.backbone
    sequence_length = sequence_length or config.max_sequence_length
    if predicted_fraction is None:
        predicted_fraction = 0.15 if config.family == "bert" else 1.0
    embedding = _count(w for name in EMBEDDING_LAYERS if hasattr(backbone, name)
                       for w in getattr(backbone, name).weights)
    backbone_parameters = _count(backbone.weights)
    total = _count(model.weights)
    return ModelStats(
        total_parameters=total,
        trainable_parameters=_count(model.trainable_weights),
        backbone_parameters=backbone_parameters,
        embedding_parameters=embedding,
        head_parameters=total - backbone_parameters,
        training_flops_per_token=training_flops_per_token(
            config, backbone_parameters - embedding, sequence_length, predicted_fraction),
        sequence_length=sequence_length,
    )


def llama_parameter_count(config):
    """The parameters a Llama-family config builds, counted without building it (a 7B
    model's float32 weights do not fit this machine's memory)."""
    h, queries = config.hidden_size, config.num_heads * config.head_size
    keys = config.key_value_heads * config.head_size
    attention = 2 * h * queries + 2 * h * keys
    if config.attention_bias:
        attention += queries + 2 * keys
    block = attention + 3 * h * config.intermediate_size + 2 * h  # two RMSNorm scales
    embeddings = config.vocab_size * h * (1 if config.tie_word_embeddings else 2)
    return embeddings + config.num_layers * block + h


def _architecture(preset_name, c):
    kind = {"bert": "BERT encoder (post-LN) + MLM and NSP heads",
            "gpt": "GPT decoder (pre-LN, causal) + tied LM head",
            "llama": "Llama-family decoder (pre-RMSNorm, rotary positions, gated "
                     "feed-forward) + LM head"}[c.family]
    lines = [f"{preset_name}: {kind}",
             f"  layers {c.num_layers}, hidden {c.hidden_size}, heads {c.num_heads} x "
             f"{c.head_size}, intermediate {c.intermediate_size}, activation {c.activation}"]
    if c.family == "llama":
        lines.append(f"  key/value heads {c.key_value_heads}, rope theta {c.rope_theta:g}"
                     + (f" ({c.rope_scaling} x{c.rope_scaling_factor:g})" if c.rope_scaling
                        else "")
                     + (f", sliding window {c.sliding_window}" if c.sliding_window else "")
                     + (", q/k/v biases" if c.attention_bias else "")
                     + (", tied" if c.tie_word_embeddings else ", untied") + " LM head")
    lines.append(f"  vocab {c.vocab_size:,}, max length {c.max_sequence_length}, dropout "
                 f"{c.dropout}, dtype policy {c.dtype}")
    return lines


def _published(preset_name, count):
    published = PUBLISHED_PARAMETER_COUNTS.get(preset_name)
    if published is None:
        return []
    verdict = "matches" if published == count else "DIFFERS from"
    return [f"    backbone {verdict} the published model ({published:,})"]


def describe_unbuilt(preset_name, config):
    """The summary of a config too large to build here: its counted parameters."""
    count = llama_parameter_count(config)
    return "\n".join([*_architecture(preset_name, config),
                      f"  parameters: {count:,} (counted from the config; not built: "
                      f"{4 * count / 2 ** 30:.1f} GiB in float32)",
                      *_published(preset_name, count)])


def describe(preset_name, model, stats):
    """A human-readable summary: architecture, parameters, FLOPs."""
    lines = [
        *_architecture(preset_name, model.config),
        f"  parameters: {stats.total_parameters:,} total, "
        f"{stats.trainable_parameters:,} trainable",
        f"    backbone {stats.backbone_parameters:,} = embeddings "
        f"{stats.embedding_parameters:,} + non-embedding {stats.non_embedding_parameters:,}; "
        f"heads {stats.head_parameters:,}",
    ]
    lines += _published(preset_name, stats.backbone_parameters)
    lines.append(f"  training FLOPs per token at length {stats.sequence_length}: "
                 f"{stats.training_flops_per_token / 1e6:,.2f} MFLOP "
                 "(6N + 12·L·T·d + output projection)")
    return "\n".join(lines)
