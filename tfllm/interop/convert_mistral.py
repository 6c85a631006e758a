"""Mistral: Hugging Face `MistralForCausalLM` and keras-hub `MistralBackbone` presets,
into tfllm's `LlamaCausalLM` (sliding-window attention, untied head) and back out."""

import keras_hub

from tfllm.interop import llama_layout
from tfllm.interop.llama_layout import (copy_hf_tokenizer, copy_keras_hub_tokenizer,  # noqa: F401
                                        hf_entries, keras_hub_reads, read_hf_weights,
                                        write_hf_tokenizer)

FAMILY = llama_layout.FAMILY
HF_MODEL_TYPES = ("mistral",)
KERAS_HUB_BACKBONES = ("MistralBackbone",)
_FIXED = {"norm_scale_offset": 0.0, "scale_embeddings": False, "attention_bias": False}


def describes(config):
    return config.family == FAMILY and bool(config.sliding_window) \
        and not config.scale_embeddings


def config_from_hf(hf, directory):
    return llama_layout.config_from_hf(hf, directory, sliding_window=hf.get("sliding_window") or 0)


def hf_config(model, labels=None):
    llama_layout.check_fields(model.config, "MistralForCausalLM", _FIXED)
    fields = llama_layout.hf_config(model.config, "mistral", "MistralForCausalLM")
    fields["sliding_window"] = model.config.sliding_window
    return fields


def read_keras_hub(directory):
    backbone = keras_hub.models.Backbone.from_preset(directory)
    return model_from_keras_hub(backbone, llama_layout.keras_hub_length(directory)), backbone


def model_from_keras_hub(backbone, length=llama_layout.DEFAULT_KERAS_HUB_LENGTH):
    head_dim = backbone.head_dim or 0
    config = llama_layout.config_from_keras_hub(
        backbone, length, **llama_layout.linear_rope(backbone.rope_scaling_factor),
        head_dim=0 if head_dim * backbone.num_query_heads == backbone.hidden_dim else head_dim,
        sliding_window=int(backbone.sliding_window or 0), tie_word_embeddings=False)
    return llama_layout.model_from_pairs(config, backbone, llama_layout.llama_style_pairs)


def write_keras_hub(model, tokenizer, directory):
    config = model.config
    llama_layout.check_fields(config, "keras-hub's MistralBackbone",
                              {**_FIXED, "activation": "silu", "tie_word_embeddings": False})
    models = keras_hub.models
    backbone = models.MistralBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_query_heads=config.num_heads, num_key_value_heads=config.key_value_heads,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        head_dim=config.head_size, layer_norm_epsilon=config.layer_norm_epsilon,
        sliding_window=config.sliding_window,
        **llama_layout.rope_keras_hub_fields(config, "rope_scaling_factor",
                                             "keras-hub's MistralBackbone"))
    keras_tokenizer = llama_layout.keras_hub_tokenizer(tokenizer, models.MistralTokenizer)
    llama_layout.write_keras_hub_preset(backbone, llama_layout.llama_style_pairs, model,
                                        keras_tokenizer, models.MistralCausalLMPreprocessor,
                                        directory)
