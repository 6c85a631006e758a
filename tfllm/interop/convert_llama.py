"""Llama (Llama 2 and 3, TinyLlama, SmolLM2): Hugging Face `LlamaForCausalLM` and
keras-hub `LlamaBackbone` / `Llama3Backbone` presets, into tfllm's `LlamaCausalLM` and
back out. The Llama-architecture relatives have their own modules (convert_qwen2,
convert_mistral, convert_gemma); what all four share is in `llama_layout`."""

import keras_hub

from tfllm.interop import llama_layout
from tfllm.interop.llama_layout import (copy_hf_tokenizer, copy_keras_hub_tokenizer,  # noqa: F401
                                        hf_entries, keras_hub_reads, read_hf_weights,
                                        write_hf_tokenizer)

FAMILY = llama_layout.FAMILY
HF_MODEL_TYPES = ("llama",)
KERAS_HUB_BACKBONES = ("LlamaBackbone", "Llama3Backbone")
# What Llama's files cannot say (the relatives' fields).
_PLAIN = {"norm_scale_offset": 0.0, "scale_embeddings": False, "sliding_window": 0}


def describes(config):
    """Any Llama-architecture config the relatives' converters do not take."""
    return config.family == FAMILY


def config_from_hf(hf, directory):
    return llama_layout.config_from_hf(hf, directory)


def hf_config(model, labels=None):
    llama_layout.check_fields(model.config, "LlamaForCausalLM", _PLAIN)
    fields = llama_layout.hf_config(model.config, "llama", "LlamaForCausalLM")
    fields["attention_bias"] = model.config.attention_bias
    return fields


def read_keras_hub(directory):
    backbone = keras_hub.models.Backbone.from_preset(directory)
    return model_from_keras_hub(backbone, llama_layout.keras_hub_length(directory)), backbone


def model_from_keras_hub(backbone, length=llama_layout.DEFAULT_KERAS_HUB_LENGTH):
    if backbone.rope_frequency_adjustment_factor:
        rope = dict(rope_scaling="llama3",
                    rope_scaling_factor=float(backbone.rope_frequency_adjustment_factor),
                    rope_low_freq_factor=float(backbone.rope_low_freq_factor),
                    rope_high_freq_factor=float(backbone.rope_high_freq_factor),
                    rope_original_max_length=int(backbone.rope_pretraining_sequence_length))
    else:
        rope = llama_layout.linear_rope(backbone.rope_position_scaling_factor)
    config = llama_layout.config_from_keras_hub(
        backbone, length, **rope, tie_word_embeddings=bool(backbone.tie_word_embeddings))
    return llama_layout.model_from_pairs(config, backbone, llama_layout.llama_style_pairs)


def write_keras_hub(model, tokenizer, directory):
    """Llama3Backbone with Llama 3's byte-level tokenizer, LlamaBackbone with
    SentencePiece (both take Llama 3's rotary scaling)."""
    config = model.config
    llama_layout.check_fields(config, "keras-hub's LlamaBackbone",
                                 {**_PLAIN, "attention_bias": False, "activation": "silu",
                                  "head_dim": 0})
    llama3 = llama_layout.is_byte_level(tokenizer)
    rope = {"rope_max_wavelength": config.rope_theta}
    if config.rope_scaling == "llama3":
        rope.update(rope_frequency_adjustment_factor=config.rope_scaling_factor,
                    rope_low_freq_factor=config.rope_low_freq_factor,
                    rope_high_freq_factor=config.rope_high_freq_factor,
                    rope_pretraining_sequence_length=config.rope_original_max_length)
    elif config.rope_scaling == "linear":
        rope["rope_position_scaling_factor"] = config.rope_scaling_factor
    models = keras_hub.models
    backbone = (models.Llama3Backbone if llama3 else models.LlamaBackbone)(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_query_heads=config.num_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        num_key_value_heads=config.key_value_heads, layer_norm_epsilon=config.layer_norm_epsilon,
        tie_word_embeddings=config.tie_word_embeddings, **rope)
    keras_tokenizer = llama_layout.keras_hub_tokenizer(
        tokenizer, None if llama3 else models.LlamaTokenizer,
        models.Llama3Tokenizer if llama3 else None)
    llama_layout.write_keras_hub_preset(
        backbone, llama_layout.llama_style_pairs, model, keras_tokenizer,
        models.Llama3CausalLMPreprocessor if llama3 else models.LlamaCausalLMPreprocessor,
        directory)
