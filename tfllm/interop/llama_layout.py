"""What the Llama-architecture converters (Llama, Qwen2, Mistral, Gemma) share: the
Hugging Face name table (the four publish one layout; their differences are config
fields), config.json's common fields, the tokenizer files (SentencePiece
tokenizer.model or byte-level tokenizer.json with its special tokens, stop ids and chat
template), and keras-hub's tokenizers of these families. Each converter module adds its
own config fields and keras-hub backbone."""

import json
import os
import shutil

import keras_hub

from tfllm.errors import ConfigError
from tfllm.interop import huggingface, keras_hub_models
from tfllm.interop.tensor_names import Entry, matrix
from tfllm.models import configs
from tfllm.models.llama import LlamaBackbone, LlamaCausalLM
from tfllm.text import byte_level_bpe, chat_templates, tokenizers

FAMILY = "llama"
_ACTIVATIONS = {"silu": "silu", "gelu_pytorch_tanh": "gelu_approximate",
                "gelu_new": "gelu_approximate", "gelu": "gelu_approximate"}
# keras-hub presets keep no context length (HF's max_position_embeddings); its
# preprocessor's sequence length stands in, else this.
DEFAULT_KERAS_HUB_LENGTH = 2048


def refuse(directory, field, value, why):
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
    refuse(directory, "rope_scaling.rope_type", rope_type, "rotary scaling none, linear or llama3")


def config_from_hf(hf, directory, **family_fields):
    """The LlamaConfig of config.json's common fields plus the family's own."""
    if hf.get("num_local_experts") or hf.get("num_experts"):
        refuse(directory, "num_local_experts", hf.get("num_local_experts")
               or hf.get("num_experts"), "a dense feed-forward, not a mixture of experts")
    if hf.get("mlp_bias"):
        refuse(directory, "mlp_bias", True, "feed-forward projections without biases")
    activation = hf.get("hidden_activation") or hf.get("hidden_act", "silu")
    if activation not in _ACTIVATIONS:
        refuse(directory, "hidden_act", activation, f"gates {', '.join(_ACTIVATIONS)}")
    heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or 0
    if head_dim * heads == hf["hidden_size"]:
        head_dim = 0  # the default, said explicitly
    fields = dict(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
        num_layers=hf["num_hidden_layers"], num_heads=heads,
        num_key_value_heads=hf.get("num_key_value_heads") or heads, head_dim=head_dim,
        intermediate_size=hf["intermediate_size"],
        max_sequence_length=hf["max_position_embeddings"],
        layer_norm_epsilon=float(hf.get("rms_norm_eps", 1e-6)),
        rope_theta=float(hf.get("rope_theta", 10000.0)), **_rope(hf, directory),
        attention_bias=bool(hf.get("attention_bias")),
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        activation=_ACTIVATIONS[activation], dropout=0.0,
        initializer_range=hf.get("initializer_range", 0.02))
    return configs.LlamaConfig(**{**fields, **family_fields})


def hf_config(config, model_type, architecture):
    """config.json's fields common to the four."""
    fields = {
        "architectures": [architecture], "model_type": model_type,
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
    return fields


def check_fields(config, target, required):
    """Refuses a config whose fields differ from what `target` (a family's files or a
    keras-hub backbone) can hold; `required` maps field -> the only value it can."""
    for field, value in required.items():
        if getattr(config, field) != value:
            raise ConfigError(f"{target} cannot hold this model: its {field} is "
                              f"{getattr(config, field)!r} and there it must be {value!r}; "
                              "nothing was written.")


def hf_entries(model):
    """Every weight under its Hugging Face name."""
    backbone, config = model.backbone, model.config
    size = config.head_size
    entries = [Entry("model.embed_tokens.weight", backbone.token_embedding.embeddings)]
    if not config.tie_word_embeddings:
        entries.append(Entry("lm_head.weight", backbone.token_embedding.reverse_embeddings,
                             matrix, matrix))
    for i, block in enumerate(backbone.transformer_layers):
        prefix, attention = f"model.layers.{i}", block._self_attention_layer
        entries += [Entry(f"{prefix}.input_layernorm.weight",
                          block._self_attention_layernorm.scale),
                    Entry(f"{prefix}.post_attention_layernorm.weight",
                          block._feedforward_layernorm.scale)]
        for name, projection in (("q", attention._query_dense), ("k", attention._key_dense),
                                 ("v", attention._value_dense)):
            heads = projection.kernel.shape[1]
            entries.append(Entry(f"{prefix}.self_attn.{name}_proj.weight", projection.kernel,
                                 lambda x, h=heads: matrix(x).reshape(-1, h, size),
                                 lambda x: matrix(x.reshape(x.shape[0], -1))))
            if config.attention_bias:
                entries.append(Entry(f"{prefix}.self_attn.{name}_proj.bias", projection.bias,
                                     lambda x, h=heads: x.reshape(h, size),
                                     lambda x: x.reshape(-1)))
        entries.append(Entry(f"{prefix}.self_attn.o_proj.weight", attention._output_dense.kernel,
                             lambda x: matrix(x).reshape(config.num_heads, size, -1),
                             lambda x: matrix(x.reshape(-1, x.shape[-1]))))
        for name, projection in (("gate", block._feedforward_gate_dense),
                                 ("up", block._feedforward_intermediate_dense),
                                 ("down", block._feedforward_output_dense)):
            entries.append(Entry(f"{prefix}.mlp.{name}_proj.weight", projection.kernel,
                                 matrix, matrix))
    entries.append(Entry("model.norm.weight", backbone.final_norm.scale))
    return entries


def read_hf_weights(model, tensors, source):
    return huggingface.assign(hf_entries(model), tensors, source)


def copy_hf_tokenizer(path, fmt, directory):
    """SentencePiece tokenizer.model (Llama 2, TinyLlama, Mistral, Gemma) or, without
    one, byte-level BPE tokenizer.json (Llama 3, Qwen2, SmolLM2) with its special tokens
    and stop ids; the chat template is kept."""
    if os.path.exists(os.path.join(path, tokenizers.SENTENCEPIECE_FILE)):
        names = [tokenizers.SENTENCEPIECE_FILE]
    elif os.path.exists(os.path.join(path, tokenizers.BYTE_LEVEL_FILE)):
        names = [tokenizers.BYTE_LEVEL_FILE, tokenizers.TOKENIZER_CONFIG_FILE,
                 tokenizers.GENERATION_CONFIG_FILE]
    else:
        raise ConfigError(f"{path} has neither {tokenizers.SENTENCEPIECE_FILE} nor "
                          f"{tokenizers.BYTE_LEVEL_FILE}: a Llama-family model needs its "
                          "tokenizer; nothing was converted.")
    for name in names:
        if os.path.exists(os.path.join(path, name)):
            shutil.copyfile(os.path.join(path, name), os.path.join(directory, name))
    settings_path = os.path.join(path, tokenizers.TOKENIZER_CONFIG_FILE)
    if os.path.exists(settings_path):
        with open(settings_path, encoding="utf-8") as f:
            chat = chat_templates.from_tokenizer_config(json.load(f))
        if chat is not None:
            with open(os.path.join(directory, chat_templates.KEPT_FILE), "w") as f:
                f.write(chat.to_json())
    return names[0]


def write_hf_tokenizer(model, tokenizer, directory):
    """The tokenizer as it came: tokenizer.json with its tokenizer_config.json and
    generation_config.json, or SentencePiece tokenizer.model."""
    if is_byte_level(tokenizer):
        for source in tokenizers.tokenizer_files(tokenizer.path):
            if not source.endswith(chat_templates.KEPT_FILE):
                shutil.copyfile(source, os.path.join(directory, os.path.basename(source)))
        return
    require_sentencepiece(tokenizer, "Hugging Face")
    shutil.copyfile(tokenizer.path, os.path.join(directory, tokenizers.SENTENCEPIECE_FILE))
    settings = {"tokenizer_class": "LlamaTokenizer",
                "model_max_length": model.config.max_sequence_length,
                "add_bos_token": False, "add_eos_token": False}
    with open(os.path.join(directory, tokenizers.TOKENIZER_CONFIG_FILE), "w") as f:
        json.dump(settings, f, indent=2)


def is_byte_level(tokenizer):
    return tokenizer.path.endswith(tokenizers.BYTE_LEVEL_FILE)


def require_sentencepiece(tokenizer, target):
    if not tokenizer.path.endswith(tokenizers.SENTENCEPIECE_FILE):
        raise ConfigError(f"This model's tokenizer is {tokenizer.path}; {target} takes this "
                          "family with a SentencePiece tokenizer.model or a byte-level "
                          "tokenizer.json, so it cannot be exported there.")


def keras_hub_reads(config):
    """keras-hub's Transformers loaders read every shape of these families."""
    return True


# --- keras-hub ------------------------------------------------------------------------

def keras_hub_length(directory):
    """The context length a keras-hub preset implies (see DEFAULT_KERAS_HUB_LENGTH)."""
    path = os.path.join(directory, "preprocessor.json")
    if os.path.exists(path):
        with open(path) as f:
            length = json.load(f).get("config", {}).get("sequence_length")
        if length:
            return int(length)
    return DEFAULT_KERAS_HUB_LENGTH


def config_from_keras_hub(backbone, length, **family_fields):
    """The LlamaConfig of what keras-hub's Llama, Mistral and Qwen backbones share (a SiLU
    gate, `rope_max_wavelength`), plus the family's own fields."""
    fields = dict(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers, num_heads=backbone.num_query_heads,
        num_key_value_heads=backbone.num_key_value_heads,
        intermediate_size=backbone.intermediate_dim, max_sequence_length=length,
        layer_norm_epsilon=float(backbone.layer_norm_epsilon),
        rope_theta=float(backbone.rope_max_wavelength), activation="silu", dropout=0.0)
    return configs.LlamaConfig(**{**fields, **family_fields})


def linear_rope(factor):
    """The config fields of keras-hub's linear rotary factor (1: none)."""
    return {} if factor == 1.0 else {"rope_scaling": "linear", "rope_scaling_factor": float(factor)}


def model_from_pairs(config, backbone, pairs):
    """A LlamaCausalLM of `config` holding `backbone`'s weights; `pairs(theirs, model)`
    is the family's (keras-hub variable, tfllm variable[, changes]) list."""
    model = LlamaCausalLM(LlamaBackbone(config))
    keras_hub_models.copy_variables(pairs(backbone, model), to_tfllm=True)
    return model


def llama_style_pairs(theirs, model):
    """keras-hub's Llama, Llama 3, Mistral and Qwen backbones name their layers alike
    (`transformer_layer_i/self_attention/query`, `feedforward_gate_dense`, ...) and
    shape every kernel as tfllm does."""
    ours = model.backbone
    pairs = [(theirs.token_embedding.embeddings, ours.token_embedding.embeddings)]
    if not model.config.tie_word_embeddings:
        pairs.append((theirs.token_embedding.reverse_embeddings,
                      ours.token_embedding.reverse_embeddings))
    for their_block, block in zip(theirs.transformer_layers, ours.transformer_layers,
                                  strict=True):
        their_attention, attention = their_block._self_attention_layer, \
            block._self_attention_layer
        pairs += [(their_block._self_attention_layernorm.scale,
                   block._self_attention_layernorm.scale),
                  (their_block._feedforward_layernorm.scale, block._feedforward_layernorm.scale)]
        for name in ("_query_dense", "_key_dense", "_value_dense", "_output_dense"):
            pairs += list(zip(getattr(their_attention, name).weights,
                              getattr(attention, name).weights, strict=True))
        for name in ("_feedforward_gate_dense", "_feedforward_intermediate_dense",
                     "_feedforward_output_dense"):
            pairs.append((getattr(their_block, name).kernel, getattr(block, name).kernel))
    pairs.append((theirs.get_layer("sequence_output_layernorm").scale, ours.final_norm.scale))
    return pairs


def copy_keras_hub_tokenizer(keras_tokenizer, directory):
    """keras-hub's SentencePiece tokenizers (Llama, Mistral, Gemma) as tokenizer.model;
    its byte-level ones (Llama 3, Qwen) as a tokenizer.json with the family's published
    split pattern, their special tokens kept whole, the end token as end of text."""
    if isinstance(keras_tokenizer, keras_hub.tokenizers.SentencePieceTokenizer):
        with open(os.path.join(directory, tokenizers.SENTENCEPIECE_FILE), "wb") as f:
            f.write(keras_tokenizer.proto)
        return tokenizers.SENTENCEPIECE_FILE
    pattern = {"Llama3Tokenizer": "llama3", "QwenTokenizer": "qwen2"}.get(
        type(keras_tokenizer).__name__)
    if pattern is None:
        raise ConfigError(f"keras-hub tokenizer {type(keras_tokenizer).__name__} is not one "
                          "tfllm reads for this family (LlamaTokenizer, MistralTokenizer, "
                          "GemmaTokenizer, Llama3Tokenizer, QwenTokenizer); nothing was "
                          "converted.")
    vocabulary = dict(keras_tokenizer.vocabulary)
    special = [t for t in keras_tokenizer.special_tokens if t in vocabulary]
    spec = {"version": "1.0", "added_tokens": [
                {"id": vocabulary[t], "content": t, "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": True} for t in special],
            # Qwen2's tokenizer.json normalizes to NFC; keras-hub's QwenTokenizer drops it
            "normalizer": {"type": "NFC"} if pattern == "qwen2" else None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": byte_level_bpe.KNOWN_PATTERNS[pattern]},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False}]},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": pattern == "llama3", "vocab": vocabulary,
                      "merges": [m for m in keras_tokenizer.merges
                                 if not m.startswith("#version")]}}
    with open(os.path.join(directory, tokenizers.BYTE_LEVEL_FILE), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    with open(os.path.join(directory, tokenizers.TOKENIZER_CONFIG_FILE), "w") as f:
        json.dump({"eos_token": keras_tokenizer.end_token,
                   "pad_token": keras_tokenizer.id_to_token(keras_tokenizer.pad_token_id)}, f)
    return tokenizers.BYTE_LEVEL_FILE


def keras_hub_tokenizer(tokenizer, sentencepiece_class, byte_level_class=None):
    """The family's keras-hub tokenizer of a tfllm tokenizer."""
    if is_byte_level(tokenizer):
        if byte_level_class is None:
            raise ConfigError(f"keras-hub's {sentencepiece_class.__name__} reads SentencePiece "
                              f"only; this model's tokenizer is {tokenizer.path}.")
        spec = byte_level_bpe.read_spec(tokenizer.path)
        vocabulary = {**spec["vocabulary"], **spec["added_tokens"]}
        return byte_level_class(vocabulary=vocabulary, merges=spec["merges"])
    require_sentencepiece(tokenizer, "keras-hub")
    if sentencepiece_class is None:
        raise ConfigError(f"keras-hub's {byte_level_class.__name__} reads byte-level BPE only; "
                          f"this model's tokenizer is {tokenizer.path}.")
    with open(tokenizer.path, "rb") as f:
        return sentencepiece_class(proto=f.read())


def rope_keras_hub_fields(config, linear_name, target):
    """keras-hub's names for the rotary settings (`linear_name`: its linear factor);
    `target` (Mistral, Qwen) has no Llama 3 frequency scaling."""
    check_fields(config, target, {"rope_scaling": ""} if config.rope_scaling == "llama3" else {})
    fields = {"rope_max_wavelength": config.rope_theta}
    if config.rope_scaling == "linear":
        fields[linear_name] = config.rope_scaling_factor
    return fields


def write_keras_hub_preset(backbone, pairs, model, keras_tokenizer, preprocessor_class,
                           directory):
    """Copies `model` into keras-hub's `backbone` and saves it with the family's causal-LM
    preprocessor (its tokenizer, and the context length as its sequence length)."""
    keras_hub_models.copy_variables(pairs(backbone, model), to_tfllm=False)
    backbone.save_to_preset(directory)
    preprocessor_class(tokenizer=keras_tokenizer,
                       sequence_length=model.config.max_sequence_length).save_to_preset(directory)
