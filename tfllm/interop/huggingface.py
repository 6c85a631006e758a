"""Hugging Face Transformers directories of BERT and GPT-2: config.json,
model.safetensors (or shards with model.safetensors.index.json) and the
tokenizer's files, read into tfllm models and written back from them.
"""

import json
import os

import numpy as np
import safetensors
import safetensors.numpy

from tfllm.errors import ConfigError
from tfllm.interop import tensor_names
from tfllm.models import configs

_BERT_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                     "gelu_pytorch_tanh": "gelu_approximate", "relu": "relu"}
_GPT2_ACTIVATIONS = {"gelu_new": "gelu_approximate", "gelu_pytorch_tanh": "gelu_approximate",
                     "gelu": "gelu", "relu": "relu"}
WEIGHTS_FILE, INDEX_FILE = "model.safetensors", "model.safetensors.index.json"


def _refuse(directory, field, value, why):
    raise ConfigError(f"{directory}: config field {field}={value!r} cannot be represented by "
                      f"tfllm's models ({why}); nothing was converted.")


def read_config(directory):
    """The tfllm config of an HF config.json, refusing what tfllm cannot represent."""
    with open(os.path.join(directory, "config.json")) as f:
        return config_from(json.load(f), directory)


def config_from(hf, directory):
    """The tfllm config of HF config fields (`directory` names the source in errors)."""
    model_type = hf.get("model_type")
    if model_type == "bert":
        if hf.get("position_embedding_type", "absolute") != "absolute":
            _refuse(directory, "position_embedding_type", hf["position_embedding_type"],
                    "only absolute learned positions")
        activation = hf.get("hidden_act", "gelu")
        if activation not in _BERT_ACTIVATIONS:
            _refuse(directory, "hidden_act", activation,
                    f"activations {', '.join(_BERT_ACTIVATIONS)}")
        return configs.BertConfig(
            vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
            num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            max_sequence_length=hf["max_position_embeddings"],
            type_vocab_size=hf.get("type_vocab_size", 2),
            dropout=hf.get("hidden_dropout_prob", 0.1),
            layer_norm_epsilon=hf.get("layer_norm_eps", 1e-12),
            initializer_range=hf.get("initializer_range", 0.02),
            activation=_BERT_ACTIVATIONS[activation])
    if model_type == "gpt2":
        activation = hf.get("activation_function", "gelu_new")
        if activation not in _GPT2_ACTIVATIONS:
            _refuse(directory, "activation_function", activation,
                    f"activations {', '.join(_GPT2_ACTIVATIONS)}")
        for field in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if hf.get(field):
                _refuse(directory, field, hf[field], "GPT-2's standard attention only")
        if hf.get("tie_word_embeddings", True) is False:
            _refuse(directory, "tie_word_embeddings", False, "the LM head is the embedding")
        hidden = hf["n_embd"]
        return configs.GptConfig(
            vocab_size=hf["vocab_size"], hidden_size=hidden, num_layers=hf["n_layer"],
            num_heads=hf["n_head"], intermediate_size=hf.get("n_inner") or 4 * hidden,
            max_sequence_length=hf["n_positions"], dropout=hf.get("resid_pdrop", 0.1),
            layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
            initializer_range=hf.get("initializer_range", 0.02),
            activation=_GPT2_ACTIVATIONS[activation])
    raise ConfigError(f"{directory}: config.json has model_type {model_type!r}; tfllm converts "
                      "'bert' and 'gpt2' (RoBERTa, DistilBERT and others differ in their "
                      "layers); nothing was converted.")


def read_tensors(directory):
    """{name: numpy array} from model.safetensors or its shards."""
    index = os.path.join(directory, INDEX_FILE)
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = [WEIGHTS_FILE]
    tensors = {}
    for name in files:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise ConfigError(f"{directory} has no {name} (the weights); nothing was converted.")
        try:
            tensors.update(safetensors.numpy.load_file(path))
        except (safetensors.SafetensorError, OSError, ValueError) as error:
            raise ConfigError(f"{path} is not a readable safetensors file ({error}); it may be "
                              "truncated; nothing was converted.") from None
    return tensors


def _lookup(tensors, name):
    """HF names vary with the class that saved them: `bert.`/`transformer.` prefixes
    (absent for BertModel/GPT2Model) and old LayerNorm gamma/beta names."""
    candidates = [name, name.split(".", 1)[1]]
    if ".LayerNorm." in name:
        old = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta")
        candidates += [old, old.split(".", 1)[1]]
    return next((tensors[c] for c in candidates if c in tensors), None)


def entries(model):
    if hasattr(model, "classifier_head"):
        if model.config.family != "bert":
            raise ConfigError("A GPT classifier has no Hugging Face counterpart tfllm writes "
                              "(GPT2ForSequenceClassification scores without a bias); export "
                              "BERT classifiers or pretrained models.")
        return tensor_names.bert_classifier_entries(model)
    return (tensor_names.bert_entries(model) if model.config.family == "bert"
            else tensor_names.gpt2_entries(model))


def assign(model, tensors, source):
    """Writes HF-named tensors into a tfllm model; returns the names of the head
    weights the file lacks (left at their initial values), refusing a missing or
    misshapen backbone weight."""
    missing_heads = []
    for entry in entries(model):
        value = _lookup(tensors, entry.hf_name)
        if value is None:
            if entry.hf_name.startswith("cls."):
                missing_heads.append(entry.hf_name)
                continue
            raise ConfigError(f"{source} lacks tensor {entry.hf_name}; nothing was converted.")
        value = np.asarray(value, np.float32)
        if isinstance(entry, tensor_names.Fused):
            parts = entry.split(value) if value.shape[entry.split_axis] % 3 == 0 else None
            if parts is None or any(p.shape != tuple(v.shape)
                                    for p, v in zip(parts, entry.variables)):
                raise ConfigError(f"{source}: tensor {entry.hf_name} has shape {value.shape}, "
                                  "which does not match config.json; nothing was converted.")
            for variable, part in zip(entry.variables, parts):
                variable.assign(part)
            continue
        try:
            converted = entry.to_tfllm(value)
        except ValueError:
            converted = None
        if converted is None or converted.shape != tuple(entry.variable.shape):
            raise ConfigError(f"{source}: tensor {entry.hf_name} has shape {value.shape}, which "
                              "does not match config.json; nothing was converted.")
        entry.variable.assign(converted)
    lm_head = tensors.get("lm_head.weight")
    if lm_head is not None and model.config.family == "gpt" and not np.array_equal(
            lm_head, _lookup(tensors, "transformer.wte.weight")):
        raise ConfigError(f"{source}: lm_head.weight differs from the token embedding; tfllm's "
                          "GPT ties them; nothing was converted.")
    return missing_heads


def tensors_of(model):
    """{HF name: numpy array} of a tfllm model."""
    tensors = {}
    for entry in entries(model):
        if isinstance(entry, tensor_names.Fused):
            tensors[entry.hf_name] = entry.join([np.asarray(v) for v in entry.variables])
        else:
            tensors[entry.hf_name] = np.ascontiguousarray(entry.to_hf(np.asarray(entry.variable)))
    return tensors


def hf_config(config):
    """config.json for a tfllm config, as Transformers writes it."""
    if config.family == "bert":
        return {"architectures": ["BertForPreTraining"], "model_type": "bert",
                "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
                "num_hidden_layers": config.num_layers,
                "num_attention_heads": config.num_heads,
                "intermediate_size": config.intermediate_size,
                "hidden_act": {"gelu": "gelu", "gelu_approximate": "gelu_new",
                               "relu": "relu"}[config.activation],
                "hidden_dropout_prob": config.dropout,
                "attention_probs_dropout_prob": config.dropout,
                "max_position_embeddings": config.max_sequence_length,
                "type_vocab_size": config.type_vocab_size,
                "layer_norm_eps": config.layer_norm_epsilon,
                "initializer_range": config.initializer_range,
                "position_embedding_type": "absolute", "pad_token_id": 0}
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


def write(model, directory, labels=None):
    """config.json and model.safetensors of a tfllm model (a classifier with its
    `labels`); the tokenizer is written by the caller."""
    config = hf_config(model.config)
    if labels is not None:
        config.update(architectures=["BertForSequenceClassification"],
                      problem_type="single_label_classification",
                      id2label={str(i): label for i, label in enumerate(labels)},
                      label2id={label: i for i, label in enumerate(labels)})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    safetensors.numpy.save_file(tensors_of(model), os.path.join(directory, WEIGHTS_FILE),
                                metadata={"format": "pt"})
