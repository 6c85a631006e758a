"""GPT-2: Hugging Face `GPT2LMHeadModel` / `GPT2Model` directories and keras-hub
`GPT2Backbone` presets into tfllm's `GptCausalLM` (its LM head is the token embedding,
tied) and back out; the byte-level BPE vocabulary as vocab.json + merges.txt."""

import json
import os

import keras_hub
import numpy as np

from tfllm.errors import ConfigError
from tfllm.interop import huggingface, keras_hub_models
from tfllm.interop.tensor_names import Entry, Fused, attention_projection, dense, layer_norm
from tfllm.models import configs
from tfllm.models.gpt import GptBackbone, GptCausalLM
from tfllm.text import tokenizers

FAMILY = "gpt"
HF_MODEL_TYPES = ("gpt2",)
KERAS_HUB_BACKBONES = ("GPT2Backbone",)
_ACTIVATIONS = {"gelu_new": "gelu_approximate", "gelu_pytorch_tanh": "gelu_approximate",
                "gelu": "gelu", "relu": "relu"}


def describes(config):
    return config.family == FAMILY


# --- Hugging Face ---------------------------------------------------------------------

def config_from_hf(hf, directory):
    activation = hf.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        huggingface.refuse(directory, "activation_function", activation,
                           f"activations {', '.join(_ACTIVATIONS)}")
    for field in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(field):
            huggingface.refuse(directory, field, hf[field], "GPT-2's standard attention only")
    if hf.get("tie_word_embeddings", True) is False:
        huggingface.refuse(directory, "tie_word_embeddings", False,
                           "the LM head is the embedding")
    hidden = hf["n_embd"]
    return configs.GptConfig(
        vocab_size=hf["vocab_size"], hidden_size=hidden, num_layers=hf["n_layer"],
        num_heads=hf["n_head"], intermediate_size=hf.get("n_inner") or 4 * hidden,
        max_sequence_length=hf["n_positions"], dropout=hf.get("resid_pdrop", 0.1),
        layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
        initializer_range=hf.get("initializer_range", 0.02), activation=_ACTIVATIONS[activation])


def hf_config(model, labels=None):
    if labels is not None or hasattr(model, "classifier_head"):
        raise ConfigError("A GPT classifier has no Hugging Face counterpart tfllm writes "
                          "(GPT2ForSequenceClassification scores without a bias); export "
                          "BERT classifiers or pretrained models.")
    config = model.config
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": config.vocab_size, "n_embd": config.hidden_size,
            "n_layer": config.num_layers, "n_head": config.num_heads,
            "n_inner": config.intermediate_size, "n_positions": config.max_sequence_length,
            "n_ctx": config.max_sequence_length,
            "activation_function": {"gelu_approximate": "gelu_new", "gelu": "gelu",
                                    "relu": "relu"}[config.activation],
            "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
            "attn_pdrop": config.dropout, "layer_norm_epsilon": config.layer_norm_epsilon,
            "initializer_range": config.initializer_range, "tie_word_embeddings": True,
            "bos_token_id": config.vocab_size - 1, "eos_token_id": config.vocab_size - 1}


def hf_entries(model):
    """GPT2LMHeadModel's names (what GPT2Model saves lacks the `transformer.` prefix)."""
    backbone = model.backbone
    entries = [Entry("transformer.wte.weight", backbone.token_embedding.embeddings),
               Entry("transformer.wpe.weight", backbone.position_embedding.position_embeddings)]
    for i, block in enumerate(backbone.transformer_layers):
        prefix, attention = f"transformer.h.{i}", block._self_attention_layer
        projections = (attention.query_dense, attention.key_dense, attention.value_dense)
        entries += layer_norm(f"{prefix}.ln_1", block._self_attention_layer_norm)
        entries += [Fused(f"{prefix}.attn.c_attn.weight", [p.kernel for p in projections], 1),
                    Fused(f"{prefix}.attn.c_attn.bias", [p.bias for p in projections], 0)]
        entries += attention_projection(f"{prefix}.attn.c_proj", attention.output_dense, False,
                                        output=True)
        entries += layer_norm(f"{prefix}.ln_2", block._feedforward_layer_norm)
        entries += dense(f"{prefix}.mlp.c_fc", block._feedforward_intermediate_dense, False)
        entries += dense(f"{prefix}.mlp.c_proj", block._feedforward_output_dense, False)
    entries += layer_norm("transformer.ln_f", backbone.final_layer_norm)
    for entry in entries:
        entry.aliases = (entry.name.split(".", 1)[1],)
    return entries


def read_hf_weights(model, tensors, source):
    """The weights, refusing an LM head that is not the token embedding."""
    missing = huggingface.assign(hf_entries(model), tensors, source)
    lm_head = tensors.get("lm_head.weight")
    if lm_head is not None and not np.array_equal(
            lm_head, tensors.get("transformer.wte.weight", tensors.get("wte.weight"))):
        raise ConfigError(f"{source}: lm_head.weight differs from the token embedding; tfllm's "
                          "GPT ties them; nothing was converted.")
    return missing


def copy_hf_tokenizer(path, fmt, directory):
    """vocab.json and merges.txt (merges without their #version line)."""
    for name in (tokenizers.BPE_VOCABULARY_FILE, tokenizers.BPE_MERGES_FILE):
        if not os.path.exists(os.path.join(path, name)):
            raise ConfigError(f"{path} has no {name}: GPT-2's tokenizer needs vocab.json "
                              "and merges.txt; nothing was converted.")
    with open(os.path.join(path, tokenizers.BPE_VOCABULARY_FILE), encoding="utf-8") as f:
        vocabulary = json.load(f)
    with open(os.path.join(path, tokenizers.BPE_MERGES_FILE), encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f
                  if line.strip() and not line.startswith("#version")]
    _write_bpe(vocabulary, merges, directory)
    return tokenizers.BPE_VOCABULARY_FILE


def _write_bpe(vocabulary, merges, directory):
    with open(os.path.join(directory, tokenizers.BPE_VOCABULARY_FILE), "w",
              encoding="utf-8") as f:
        json.dump(vocabulary, f, ensure_ascii=False)
    with open(os.path.join(directory, tokenizers.BPE_MERGES_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{merge}\n" for merge in merges))


def _bpe_files(tokenizer, target):
    """(vocabulary, merges) of a GPT-2-layout tokenizer; a GPT trained here with
    SentencePiece has no counterpart there."""
    if not tokenizer.path.endswith(tokenizers.BPE_VOCABULARY_FILE):
        raise ConfigError(f"This GPT model uses a SentencePiece tokenizer; {target}'s GPT-2 "
                          "reads byte-level BPE (vocab.json + merges.txt), so it cannot be "
                          "exported there. Models converted from GPT-2 can.")
    with open(tokenizer.path, encoding="utf-8") as f:
        vocabulary = json.load(f)
    with open(os.path.join(os.path.dirname(tokenizer.path), tokenizers.BPE_MERGES_FILE),
              encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip()]
    return vocabulary, merges


def write_hf_tokenizer(model, tokenizer, directory):
    vocabulary, merges = _bpe_files(tokenizer, "Hugging Face")
    _write_bpe(vocabulary, ["#version: 0.2"] + merges, directory)
    settings = {"tokenizer_class": "GPT2Tokenizer",
                "model_max_length": model.config.max_sequence_length,
                "bos_token": tokenizers.END_OF_TEXT, "eos_token": tokenizers.END_OF_TEXT,
                "unk_token": tokenizers.END_OF_TEXT}
    with open(os.path.join(directory, tokenizers.TOKENIZER_CONFIG_FILE), "w") as f:
        json.dump(settings, f, indent=2)


def keras_hub_reads(config):
    """Whether keras-hub's Transformers loader reads this shape (a 4x feed-forward only)."""
    return config.intermediate_size == 4 * config.hidden_size


# --- keras-hub ------------------------------------------------------------------------

def _layer_pairs(keras_hub_backbone, tfllm_backbone):
    names = [("token_embedding", "token_embedding"), ("position_embedding", "position_embedding"),
             ("layer_norm", "final_layer_norm")]
    return [(keras_hub_backbone.get_layer(a), tfllm_backbone.get_layer(b)) for a, b in names] + \
        list(zip(keras_hub_backbone.transformer_layers, tfllm_backbone.transformer_layers))


def read_keras_hub(directory):
    backbone = keras_hub.models.Backbone.from_preset(directory)
    return model_from_keras_hub(backbone), backbone


def model_from_keras_hub(backbone):
    """keras-hub's GPT-2 fixes the tanh GELU and LayerNorm's 1e-5."""
    config = configs.GptConfig(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers, num_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim,
        max_sequence_length=backbone.max_sequence_length, dropout=float(backbone.dropout),
        activation="gelu_approximate", layer_norm_epsilon=1e-5)
    model = GptCausalLM(GptBackbone(config))
    keras_hub_models.copy_layers(_layer_pairs(backbone, model.backbone), to_tfllm=True)
    return model


def write_keras_hub(model, tokenizer, directory):
    if hasattr(model, "classifier_head"):
        raise ConfigError("keras-hub's GPT-2 has no classifier task; export BERT "
                          "classifiers or pretrained models.")
    vocabulary, merges = _bpe_files(tokenizer, "keras-hub")
    config = model.config
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_heads=config.num_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.dropout,
        max_sequence_length=config.max_sequence_length)
    keras_hub_models.copy_layers(_layer_pairs(backbone, model.backbone), to_tfllm=False)
    backbone.save_to_preset(directory)
    keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges).save_to_preset(directory)


def copy_keras_hub_tokenizer(keras_tokenizer, directory):
    if not isinstance(keras_tokenizer, keras_hub.tokenizers.BytePairTokenizer):
        raise ConfigError(f"keras-hub tokenizer {type(keras_tokenizer).__name__} is not "
                          "GPT-2's byte-pair tokenizer; nothing was converted.")
    _write_bpe(keras_tokenizer.vocabulary,
               [m for m in keras_tokenizer.merges if not m.startswith("#version")], directory)
    return tokenizers.BPE_VOCABULARY_FILE
