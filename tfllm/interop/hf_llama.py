"""Hugging Face directories of the Llama family (LlamaForCausalLM, Qwen2ForCausalLM,
MistralForCausalLM, GemmaForCausalLM): config.json fields and tensor names, read into
tfllm's `LlamaCausalLM` and written back from it. One name table serves all four, as the
four share one architecture (their differences are config fields)."""

import json
import os

import numpy as np
import safetensors.numpy

from tfllm.errors import ConfigError
from tfllm.models import configs

MODEL_TYPES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
               "mistral": "MistralForCausalLM", "gemma": "GemmaForCausalLM"}
_ACTIVATIONS = {"silu": "silu", "gelu_pytorch_tanh": "gelu_approximate",
                "gelu_new": "gelu_approximate", "gelu": "gelu_approximate"}


def _refuse(directory, field, value, why):
    raise ConfigError(f"{directory}: config field {field}={value!r} cannot be represented by "
                      f"tfllm's Llama-family decoder ({why}); nothing was converted.")


def _rope(hf, directory):
    scaling = hf.get("rope_scaling") or {}
    rope_type = scaling.get("rope_type", scaling.get("type", ""))
    if rope_type in ("", "default"):
        return {}
    if rope_type == "linear":
        return {"rope_scaling": "linear", "rope_scaling_factor": float(scaling["factor"])}
    if rope_type == "llama3":
        return {"rope_scaling": "llama3", "rope_scaling_factor": float(scaling["factor"]),
                "rope_low_freq_factor": float(scaling["low_freq_factor"]),
                "rope_high_freq_factor": float(scaling["high_freq_factor"]),
                "rope_original_max_length": int(scaling["original_max_position_embeddings"])}
    _refuse(directory, "rope_scaling.rope_type", rope_type,
            "rotary scaling none, linear or llama3")


def config_from(hf, directory):
    """The tfllm config of a Llama-family config.json, refusing what it cannot represent."""
    model_type = hf.get("model_type")
    if hf.get("num_local_experts") or hf.get("num_experts"):
        _refuse(directory, "num_local_experts", hf.get("num_local_experts")
                or hf.get("num_experts"), "a dense feed-forward, not a mixture of experts")
    if hf.get("mlp_bias"):
        _refuse(directory, "mlp_bias", True, "feed-forward projections without biases")
    if model_type == "qwen2" and hf.get("use_sliding_window"):
        _refuse(directory, "use_sliding_window", True, "Qwen2's per-layer windows")
    activation = hf.get("hidden_activation") or hf.get("hidden_act", "silu")
    if activation not in _ACTIVATIONS:
        _refuse(directory, "hidden_act", activation, f"gates {', '.join(_ACTIVATIONS)}")
    gemma = model_type == "gemma"
    heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or 0
    if head_dim * heads == hf["hidden_size"]:
        head_dim = 0  # the default, said explicitly
    try:
        return configs.LlamaConfig(
            vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
            num_layers=hf["num_hidden_layers"], num_heads=heads,
            num_key_value_heads=hf.get("num_key_value_heads") or heads, head_dim=head_dim,
            intermediate_size=hf["intermediate_size"],
            max_sequence_length=hf["max_position_embeddings"],
            layer_norm_epsilon=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=float(hf.get("rope_theta", 10000.0)), **_rope(hf, directory),
            attention_bias=model_type == "qwen2" or bool(hf.get("attention_bias")),
            sliding_window=(hf.get("sliding_window") or 0) if model_type == "mistral" else 0,
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", gemma)),
            scale_embeddings=gemma, norm_scale_offset=1.0 if gemma else 0.0,
            activation=_ACTIVATIONS[activation], dropout=0.0,
            initializer_range=hf.get("initializer_range", 0.02))
    except KeyError as error:
        raise ConfigError(f"{directory}: config.json lacks {error}; nothing was "
                          "converted.") from None


def model_type_of(config):
    """The Hugging Face class a tfllm Llama-family config is published as."""
    if config.norm_scale_offset == 1.0 and config.scale_embeddings:
        return "gemma"
    if config.sliding_window:
        return "mistral"
    return "qwen2" if config.attention_bias else "llama"


def hf_config(config):
    """config.json fields for a tfllm Llama-family config."""
    model_type = model_type_of(config)
    fields = {
        "architectures": [MODEL_TYPES[model_type]], "model_type": model_type,
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.key_value_heads, "head_dim": config.head_size,
        "max_position_embeddings": config.max_sequence_length,
        "rms_norm_eps": config.layer_norm_epsilon, "rope_theta": config.rope_theta,
        "tie_word_embeddings": config.tie_word_embeddings,
        "hidden_act": "gelu_pytorch_tanh" if config.activation == "gelu_approximate"
        else config.activation,
        "initializer_range": config.initializer_range, "torch_dtype": "float32"}
    if config.rope_scaling == "linear":
        fields["rope_scaling"] = {"rope_type": "linear", "factor": config.rope_scaling_factor}
    elif config.rope_scaling == "llama3":
        fields["rope_scaling"] = {
            "rope_type": "llama3", "factor": config.rope_scaling_factor,
            "low_freq_factor": config.rope_low_freq_factor,
            "high_freq_factor": config.rope_high_freq_factor,
            "original_max_position_embeddings": config.rope_original_max_length}
    if model_type == "mistral":
        fields["sliding_window"] = config.sliding_window
    if model_type == "llama":
        fields["attention_bias"] = False
    if model_type == "qwen2":  # the window fields every Qwen2 config.json carries, off
        fields.update(use_sliding_window=False, sliding_window=config.max_sequence_length,
                      max_window_layers=config.num_layers)
    return fields


def _matrix(x):
    """HF's [out, in] Linear weight <-> a Keras [in, out] kernel."""
    return np.transpose(x)


def entries(model):
    """(HF name, variable, HF tensor -> ours, ours -> HF tensor) for every weight."""
    backbone, config = model.backbone, model.config
    size = config.head_size
    rows = [("model.embed_tokens.weight", backbone.token_embedding.embeddings,
             lambda x: x, lambda x: x)]
    if not config.tie_word_embeddings:
        rows.append(("lm_head.weight", backbone.token_embedding.reverse_embeddings,
                     _matrix, _matrix))
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"model.layers.{i}"
        attention = block._self_attention_layer
        rows += [(f"{prefix}.input_layernorm.weight", block._self_attention_layernorm.scale,
                  lambda x: x, lambda x: x),
                 (f"{prefix}.post_attention_layernorm.weight",
                  block._feedforward_layernorm.scale, lambda x: x, lambda x: x)]
        for name, dense in (("q", attention._query_dense), ("k", attention._key_dense),
                            ("v", attention._value_dense)):
            heads = dense.kernel.shape[1]
            rows.append((f"{prefix}.self_attn.{name}_proj.weight", dense.kernel,
                         lambda x, h=heads: _matrix(x).reshape(-1, h, size),
                         lambda x: _matrix(x.reshape(x.shape[0], -1))))
            if config.attention_bias:
                rows.append((f"{prefix}.self_attn.{name}_proj.bias", dense.bias,
                             lambda x, h=heads: x.reshape(h, size), lambda x: x.reshape(-1)))
        rows.append((f"{prefix}.self_attn.o_proj.weight", attention._output_dense.kernel,
                     lambda x: _matrix(x).reshape(config.num_heads, size, -1),
                     lambda x: _matrix(x.reshape(-1, x.shape[-1]))))
        for name, dense in (("gate", block._feedforward_gate_dense),
                            ("up", block._feedforward_intermediate_dense),
                            ("down", block._feedforward_output_dense)):
            rows.append((f"{prefix}.mlp.{name}_proj.weight", dense.kernel, _matrix, _matrix))
    rows.append(("model.norm.weight", backbone.final_norm.scale, lambda x: x, lambda x: x))
    return rows


def assign(model, tensors, directory):
    """Loads HF tensors into `model`; every weight must be there with its shape."""
    missing = [name for name, *_ in entries(model) if name not in tensors]
    if missing:
        raise ConfigError(f"{directory} lacks {len(missing)} of the model's tensors (the "
                          f"first: {missing[0]}); nothing was converted.")
    for name, variable, to_ours, _ in entries(model):
        value = to_ours(np.asarray(tensors[name], np.float32))
        if tuple(value.shape) != tuple(variable.shape):
            raise ConfigError(f"{directory}: tensor {name} has shape "
                              f"{tuple(tensors[name].shape)}, which does not fit the model "
                              "its config.json describes; nothing was converted.")
        variable.assign(value)


def write(model, directory):
    """config.json and model.safetensors of `model` in the Hugging Face layout."""
    tensors = {name: np.ascontiguousarray(to_hf(np.asarray(variable.numpy())))
               for name, variable, _, to_hf in entries(model)}
    safetensors.numpy.save_file(tensors, os.path.join(directory, "model.safetensors"),
                                metadata={"format": "pt"})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(hf_config(model.config), f, indent=2)
