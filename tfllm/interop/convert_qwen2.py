"""Qwen2 (Qwen2, Qwen2.5): Hugging Face `Qwen2ForCausalLM` and keras-hub `QwenBackbone`
presets, into tfllm's `LlamaCausalLM` (biases on the query, key and value projections)
and back out."""

import keras_hub

from tfllm.interop import llama_layout
from tfllm.interop.llama_layout import (copy_hf_tokenizer, copy_keras_hub_tokenizer,  # noqa: F401
                                        hf_entries, keras_hub_reads, read_hf_weights,
                                        write_hf_tokenizer)

FAMILY = llama_layout.FAMILY
HF_MODEL_TYPES = ("qwen2",)
KERAS_HUB_BACKBONES = ("QwenBackbone",)
_FIXED = {"norm_scale_offset": 0.0, "scale_embeddings": False, "sliding_window": 0,
          "attention_bias": True}


def describes(config):
    return config.family == FAMILY and config.attention_bias and not config.sliding_window \
        and not config.scale_embeddings


def config_from_hf(hf, directory):
    if hf.get("use_sliding_window"):
        llama_layout.refuse(directory, "use_sliding_window", True, "Qwen2's per-layer windows")
    return llama_layout.config_from_hf(hf, directory, attention_bias=True)


def hf_config(model, labels=None):
    config = model.config
    llama_layout.check_fields(config, "Qwen2ForCausalLM", _FIXED)
    fields = llama_layout.hf_config(config, "qwen2", "Qwen2ForCausalLM")
    # the window fields every Qwen2 config.json carries, off
    fields.update(use_sliding_window=False, sliding_window=config.max_sequence_length,
                  max_window_layers=config.num_layers)
    return fields


def read_keras_hub(directory):
    backbone = keras_hub.models.Backbone.from_preset(directory)
    return model_from_keras_hub(backbone, llama_layout.keras_hub_length(directory)), backbone


def model_from_keras_hub(backbone, length=llama_layout.DEFAULT_KERAS_HUB_LENGTH):
    if backbone.use_sliding_window_attention:
        llama_layout.refuse(backbone.name, "use_sliding_window_attention", True,
                            "Qwen2's per-layer windows")
    config = llama_layout.config_from_keras_hub(
        backbone, length, **llama_layout.linear_rope(backbone.rope_scaling_factor),
        attention_bias=True, tie_word_embeddings=bool(backbone.tie_word_embeddings))
    return llama_layout.model_from_pairs(config, backbone, llama_layout.llama_style_pairs)


def write_keras_hub(model, tokenizer, directory):
    config = model.config
    llama_layout.check_fields(config, "keras-hub's QwenBackbone",
                              {**_FIXED, "activation": "silu", "head_dim": 0})
    models = keras_hub.models
    backbone = models.QwenBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_query_heads=config.num_heads, num_key_value_heads=config.key_value_heads,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        layer_norm_epsilon=config.layer_norm_epsilon,
        tie_word_embeddings=config.tie_word_embeddings,
        **llama_layout.rope_keras_hub_fields(config, "rope_scaling_factor",
                                             "keras-hub's QwenBackbone"))
    keras_tokenizer = llama_layout.keras_hub_tokenizer(tokenizer, None, models.QwenTokenizer)
    llama_layout.write_keras_hub_preset(backbone, llama_layout.llama_style_pairs, model,
                                        keras_tokenizer, models.QwenCausalLMPreprocessor,
                                        directory)
