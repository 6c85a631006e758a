"""Gemma (the first generation): Hugging Face `GemmaForCausalLM` and keras-hub
`GemmaBackbone` presets, into tfllm's `LlamaCausalLM` (GeGLU, RMSNorm's `1 + scale`,
embeddings scaled by sqrt(hidden), explicit head size, tied head) and back out.
Gemma 2 and 3 (soft-capping, post-norms, alternating windows) are refused."""

import keras_hub
import numpy as np

from tfllm.interop import llama_layout
from tfllm.interop.llama_layout import (copy_hf_tokenizer, copy_keras_hub_tokenizer,  # noqa: F401
                                        hf_entries, keras_hub_reads, read_hf_weights,
                                        write_hf_tokenizer)
from tfllm.models import configs

FAMILY = llama_layout.FAMILY
HF_MODEL_TYPES = ("gemma",)
KERAS_HUB_BACKBONES = ("GemmaBackbone",)
_FIXED = {"norm_scale_offset": 1.0, "scale_embeddings": True, "sliding_window": 0}


def describes(config):
    return config.family == FAMILY and config.scale_embeddings and \
        config.norm_scale_offset == 1.0


def config_from_hf(hf, directory):
    return llama_layout.config_from_hf(
        hf, directory, tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
        scale_embeddings=True, norm_scale_offset=1.0)


def hf_config(model, labels=None):
    llama_layout.check_fields(model.config, "GemmaForCausalLM", _FIXED)
    fields = llama_layout.hf_config(model.config, "gemma", "GemmaForCausalLM")
    fields["attention_bias"] = model.config.attention_bias
    return fields


def _heads_first(x):
    """keras-hub's Gemma query/key/value kernels are [heads, hidden, head], tfllm's
    [hidden, heads, head]: the same swap each way."""
    return np.transpose(x, (1, 0, 2))


def gemma_pairs(theirs, model):
    ours = model.backbone
    pairs = [(theirs.token_embedding.embeddings, ours.token_embedding.embeddings)]
    for i, block in enumerate(ours.transformer_layers):
        their_block = theirs.get_layer(f"decoder_block_{i}")
        their_attention, attention = their_block.attention, block._self_attention_layer
        pairs += [(their_block.pre_attention_norm.scale, block._self_attention_layernorm.scale),
                  (their_block.pre_ffw_norm.scale, block._feedforward_layernorm.scale)]
        for name in ("query", "key", "value"):
            pairs.append((getattr(their_attention, f"{name}_dense").kernel,
                          getattr(attention, f"_{name}_dense").kernel, _heads_first,
                          _heads_first))
        pairs += [(their_attention.output_dense.kernel, attention._output_dense.kernel),
                  (their_block.gating_ffw.kernel, block._feedforward_gate_dense.kernel),
                  (their_block.gating_ffw_2.kernel, block._feedforward_intermediate_dense.kernel),
                  (their_block.ffw_linear.kernel, block._feedforward_output_dense.kernel)]
    pairs.append((theirs.get_layer("final_normalization").scale, ours.final_norm.scale))
    return pairs


def read_keras_hub(directory):
    backbone = keras_hub.models.Backbone.from_preset(directory)
    return model_from_keras_hub(backbone, llama_layout.keras_hub_length(directory)), backbone


def model_from_keras_hub(backbone, length=llama_layout.DEFAULT_KERAS_HUB_LENGTH):
    fields = backbone.get_config()
    for field, plain in (("query_head_dim_normalize", True), ("use_post_ffw_norm", False),
                         ("use_post_attention_norm", False), ("attention_logit_soft_cap", None),
                         ("final_logit_soft_cap", None), ("use_sliding_window_attention", False)):
        if fields.get(field, plain) != plain:
            llama_layout.refuse(backbone.name, field, fields[field],
                                "the first Gemma generation, without Gemma 2/3's additions")
    heads, head_dim = backbone.num_query_heads, backbone.head_dim
    config = configs.LlamaConfig(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers, num_heads=heads,
        num_key_value_heads=backbone.num_key_value_heads,
        head_dim=0 if heads * head_dim == backbone.hidden_dim else head_dim,
        intermediate_size=backbone.intermediate_dim // 2,  # keras-hub counts both halves
        max_sequence_length=length, layer_norm_epsilon=float(fields["layer_norm_epsilon"]),
        rope_theta=10000.0, tie_word_embeddings=True, scale_embeddings=True,
        norm_scale_offset=1.0, activation="gelu_approximate", dropout=0.0)
    return llama_layout.model_from_pairs(config, backbone, gemma_pairs)


def write_keras_hub(model, tokenizer, directory):
    config = model.config
    llama_layout.check_fields(config, "keras-hub's GemmaBackbone",
                              {**_FIXED, "attention_bias": False, "tie_word_embeddings": True,
                               "activation": "gelu_approximate", "rope_theta": 10000.0,
                               "rope_scaling": ""})
    models = keras_hub.models
    backbone = models.GemmaBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_query_heads=config.num_heads, num_key_value_heads=config.key_value_heads,
        hidden_dim=config.hidden_size, intermediate_dim=2 * config.intermediate_size,
        head_dim=config.head_size, layer_norm_epsilon=config.layer_norm_epsilon)
    keras_tokenizer = llama_layout.keras_hub_tokenizer(tokenizer, models.GemmaTokenizer)
    llama_layout.write_keras_hub_preset(backbone, gemma_pairs, model, keras_tokenizer,
                                        models.GemmaCausalLMPreprocessor, directory)
