"""LoRA (Hu et al. 2021) on the attention and feed-forward projections of a backbone.

Keras layers carry LoRA themselves (`EinsumDense.enable_lora`: a frozen kernel
plus trainable low-rank factors, merged when weights are saved); this module
chooses the projections, freezes everything else in the backbone, and saves or
merges the adapter.
"""

import math

import numpy as np

from tfllm.errors import ConfigError

TARGETS = {
    "query": lambda block: block._self_attention_layer._query_dense,
    "key": lambda block: block._self_attention_layer._key_dense,
    "value": lambda block: block._self_attention_layer._value_dense,
    "output": lambda block: block._self_attention_layer._output_dense,
    "intermediate": lambda block: block._feedforward_intermediate_dense,
    "gate": lambda block: block._feedforward_gate_dense,  # gated feed-forwards (Llama)
    "ffn_output": lambda block: block._feedforward_output_dense,
}


def _projections(backbone, targets):
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise ConfigError(f"Unknown LoRA target(s) {', '.join(unknown) or '(none)'}; choose "
                          f"from {', '.join(TARGETS)}.")
    return [(f"{block.name}/{name}", TARGETS[name](block))
            for block in backbone.transformer_layers for name in targets]


def apply_lora(backbone, rank, alpha=None, targets=("query", "value")):
    """Adds rank-`rank` adapters to `targets` and freezes every other backbone weight."""
    projections = _projections(backbone, targets)
    for name, layer in projections:
        shape = layer.kernel.shape
        limit = min(math.prod(shape[:-1]), shape[-1])
        if not 0 < rank <= limit:
            raise ConfigError(f"--lora_rank={rank} does not fit projection {name} "
                              f"(kernel {tuple(shape)}): it must be between 1 and {limit}.")
    for variable in backbone.weights:
        variable.trainable = False
    for _, layer in projections:
        layer.enable_lora(rank, lora_alpha=alpha or rank)
    return [v for _, layer in projections for v in (layer.lora_kernel_a, layer.lora_kernel_b)]


def adapter_weights(model):
    """{path: value} of the LoRA factors and every other trainable weight (the head)."""
    return {v.path: np.asarray(v.numpy()) for v in model.trainable_weights}


def save_adapter(model, path):
    np.savez(path, **adapter_weights(model))


def merged_weights_path(model, path):
    """Writes the model's weights with every adapter merged into its kernel (Keras merges
    LoRA when saving), loadable into the same architecture without LoRA."""
    model.save_weights(path)
    return path
