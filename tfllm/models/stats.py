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
    attention = 12 * config.num_layers * sequence_length * config.hidden_size
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


def describe(preset_name, model, stats):
    """A human-readable summary: architecture, parameters, FLOPs."""
    c = model.config
    kind = ("BERT encoder (post-LN) + MLM and NSP heads" if c.family == "bert"
            else "GPT decoder (pre-LN, causal) + tied LM head")
    lines = [
        f"{preset_name}: {kind}",
        f"  layers {c.num_layers}, hidden {c.hidden_size}, heads {c.num_heads} x "
        f"{c.head_size}, intermediate {c.intermediate_size}, activation {c.activation}",
        f"  vocab {c.vocab_size:,}, max length {c.max_sequence_length}, dropout {c.dropout}, "
        f"dtype policy {c.dtype}",
        f"  parameters: {stats.total_parameters:,} total, "
        f"{stats.trainable_parameters:,} trainable",
        f"    backbone {stats.backbone_parameters:,} = embeddings "
        f"{stats.embedding_parameters:,} + non-embedding {stats.non_embedding_parameters:,}; "
        f"heads {stats.head_parameters:,}",
    ]
    published = PUBLISHED_PARAMETER_COUNTS.get(preset_name)
    if published is not None:
        verdict = "matches" if published == stats.backbone_parameters else "DIFFERS from"
        lines.append(f"    backbone {verdict} the published model ({published:,})")
    lines.append(f"  training FLOPs per token at length {stats.sequence_length}: "
                 f"{stats.training_flops_per_token / 1e6:,.2f} MFLOP "
                 "(6N + 12·L·T·d + output projection)")
    return "\n".join(lines)
