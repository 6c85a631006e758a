"""BERT: Hugging Face `BertForPreTraining` / `BertModel` / `BertForSequenceClassification`
directories, google-research/bert's TF1 releases (read as Hugging Face names by
`tf1_bert`) and keras-hub `BertBackbone` presets (with `BertMaskedLM`), into tfllm's
`BertPretrainer` and back out."""

import json
import os
import shutil

import keras_hub

from tfllm.errors import ConfigError
from tfllm.interop import huggingface, keras_hub_models, model_dir, tf1_bert
from tfllm.interop.tensor_names import Entry, attention_projection, dense, layer_norm
from tfllm.models import configs
from tfllm.models.bert import BertEncoder, BertPretrainer
from tfllm.text import tokenizers

FAMILY = "bert"
HF_MODEL_TYPES = ("bert",)
KERAS_HUB_BACKBONES = ("BertBackbone",)
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                "gelu_pytorch_tanh": "gelu_approximate", "relu": "relu"}
# What keras-hub's BERT fixes rather than configures (its encoder's GELU is the tanh
# approximation; its BertMaskedLM head uses exact GELU and LayerNorm's 1e-5).
_KERAS_HUB_FIXED = {"activation": "gelu_approximate", "layer_norm_epsilon": 1e-12,
                    "mlm_head_activation": "gelu", "mlm_head_layer_norm_epsilon": 1e-5}


def describes(config):
    return config.family == FAMILY


# --- Hugging Face ---------------------------------------------------------------------

def config_from_hf(hf, directory):
    if hf.get("position_embedding_type", "absolute") != "absolute":
        huggingface.refuse(directory, "position_embedding_type", hf["position_embedding_type"],
                           "only absolute learned positions")
    activation = hf.get("hidden_act", "gelu")
    if activation not in _ACTIVATIONS:
        huggingface.refuse(directory, "hidden_act", activation,
                           f"activations {', '.join(_ACTIVATIONS)}")
    return configs.BertConfig(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
        num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
        max_sequence_length=hf["max_position_embeddings"],
        type_vocab_size=hf.get("type_vocab_size", 2), dropout=hf.get("hidden_dropout_prob", 0.1),
        layer_norm_epsilon=hf.get("layer_norm_eps", 1e-12),
        initializer_range=hf.get("initializer_range", 0.02),
        activation=_ACTIVATIONS[activation])


def hf_config(model, labels=None):
    config = model.config
    fields = {"architectures": ["BertForPreTraining"], "model_type": "bert",
              "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
              "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
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
    if labels is not None:
        fields.update(architectures=["BertForSequenceClassification"],
                      problem_type="single_label_classification",
                      id2label={str(i): label for i, label in enumerate(labels)},
                      label2id={label: i for i, label in enumerate(labels)})
    return fields


def hf_entries(model):
    """BertForPreTraining's names (BertForSequenceClassification's for a classifier).
    What `BertModel` saves has no `bert.` prefix and no heads; old files name LayerNorm
    weights gamma/beta: both are read as aliases."""
    entries = _encoder_entries(model.backbone)
    if hasattr(model, "classifier_head"):
        entries += dense("classifier", model.classifier_head)
    else:
        head = model.mlm_head
        entries += dense("cls.predictions.transform.dense", head._intermediate_dense,
                         optional=True)
        entries += layer_norm("cls.predictions.transform.LayerNorm",
                              head._intermediate_layer_norm, optional=True)
        entries.append(Entry("cls.predictions.bias", head._bias, optional=True))
        entries += dense("cls.seq_relationship", model.nsp_head, optional=True)
    for entry in entries:
        names = [entry.name] + ([entry.name.split(".", 1)[1]]
                                if entry.name.startswith("bert.") else [])
        if ".LayerNorm." in entry.name:
            names += [n.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta") for n in names]
        entry.aliases = tuple(n for n in names[1:] if n != entry.name)
    return entries


def _encoder_entries(backbone):
    entries = [
        Entry("bert.embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
        Entry("bert.embeddings.position_embeddings.weight",
              backbone.position_embedding.position_embeddings),
        Entry("bert.embeddings.token_type_embeddings.weight",
              backbone.segment_embedding.embeddings),
        *layer_norm("bert.embeddings.LayerNorm", backbone.embeddings_layer_norm)]
    for i, block in enumerate(backbone.transformer_layers):
        prefix, attention = f"bert.encoder.layer.{i}", block._self_attention_layer
        for name, projection in (("query", attention.query_dense),
                                 ("key", attention.key_dense),
                                 ("value", attention.value_dense)):
            entries += attention_projection(f"{prefix}.attention.self.{name}", projection, True)
        entries += attention_projection(f"{prefix}.attention.output.dense",
                                        attention.output_dense, True, output=True)
        entries += layer_norm(f"{prefix}.attention.output.LayerNorm",
                              block._self_attention_layer_norm)
        entries += dense(f"{prefix}.intermediate.dense", block._feedforward_intermediate_dense)
        entries += dense(f"{prefix}.output.dense", block._feedforward_output_dense)
        entries += layer_norm(f"{prefix}.output.LayerNorm", block._feedforward_layer_norm)
    return entries + dense("bert.pooler.dense", backbone.pooler)


def read_hf_weights(model, tensors, source):
    return huggingface.assign(hf_entries(model), tensors, source)


def copy_hf_tokenizer(path, fmt, directory):
    """vocab.txt with its casing: tokenizer_config.json's, or read off a TF1 release's
    vocabulary (cased releases hold capitals)."""
    source = os.path.join(path, tokenizers.WORDPIECE_FILE)
    if not os.path.exists(source):
        raise ConfigError(f"{path} has no vocab.txt: BERT's tokenizer needs it; nothing was "
                          "converted.")
    with open(source, encoding="utf-8") as f:
        vocabulary = [line.rstrip("\n") for line in f]
    if fmt == "tf1":
        lowercase = not tf1_bert.is_cased(vocabulary)
        strip_accents = lowercase
    else:
        settings = {}
        settings_path = os.path.join(path, tokenizers.TOKENIZER_CONFIG_FILE)
        if os.path.exists(settings_path):
            with open(settings_path) as f:
                settings = json.load(f)
        lowercase = settings.get("do_lower_case", True)
        strip_accents = settings.get("strip_accents")
        strip_accents = lowercase if strip_accents is None else strip_accents
    model_dir.write_wordpiece(vocabulary, directory, lowercase, strip_accents)
    return tokenizers.WORDPIECE_FILE


def write_hf_tokenizer(model, tokenizer, directory):
    _require_wordpiece(tokenizer, "Hugging Face")
    shutil.copyfile(tokenizer.path, os.path.join(directory, tokenizers.WORDPIECE_FILE))
    settings = {"tokenizer_class": "BertTokenizer",
                "model_max_length": model.config.max_sequence_length,
                "do_lower_case": tokenizer.options["lowercase"],
                "strip_accents": tokenizer.options["strip_accents"],
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]"}
    with open(os.path.join(directory, tokenizers.TOKENIZER_CONFIG_FILE), "w") as f:
        json.dump(settings, f, indent=2)


def _require_wordpiece(tokenizer, target):
    if not tokenizer.path.endswith(tokenizers.WORDPIECE_FILE):
        raise ConfigError(f"This BERT model's tokenizer is {tokenizer.path}; {target}'s BERT "
                          "reads a WordPiece vocab.txt, so it cannot be exported there.")


def keras_hub_reads(config):
    """Whether keras-hub's Transformers loader reads this shape (two segments only)."""
    return config.type_vocab_size == 2


# --- keras-hub ------------------------------------------------------------------------

def _layer_pairs(keras_hub_backbone, tfllm_backbone):
    names = [("token_embedding", "token_embedding"), ("position_embedding", "position_embedding"),
             ("segment_embedding", "segment_embedding"),
             ("embeddings_layer_norm", "embeddings_layer_norm"), ("pooled_dense", "pooler")]
    return [(keras_hub_backbone.get_layer(a), tfllm_backbone.get_layer(b)) for a, b in names] + \
        list(zip(keras_hub_backbone.transformer_layers, tfllm_backbone.transformer_layers))


def _own_weights(head):
    """A MaskedLMHead's own weights (its projection is the tied token embedding,
    copied with the backbone)."""
    tied = {id(v) for v in head.token_embedding.weights}
    return [v for v in head.weights if id(v) not in tied]


def read_keras_hub(directory):
    """(tfllm model, keras-hub backbone) of a BertBackbone preset, with the BertMaskedLM
    head when the preset is that task."""
    head = None
    if os.path.exists(os.path.join(directory, "task.json")):
        task = keras_hub.models.BertMaskedLM.from_preset(directory, preprocessor=None)
        backbone, head = task.backbone, task.masked_lm_head
    else:
        backbone = keras_hub.models.Backbone.from_preset(directory)
    model = model_from_keras_hub(backbone)
    if head is not None:
        keras_hub_models.copy_variables(
            list(zip(_own_weights(head), _own_weights(model.mlm_head), strict=True)))
    return model, backbone


def model_from_keras_hub(backbone):
    config = configs.BertConfig(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers, num_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim,
        max_sequence_length=backbone.max_sequence_length, dropout=float(backbone.dropout),
        type_vocab_size=backbone.num_segments, **_KERAS_HUB_FIXED)
    model = BertPretrainer(BertEncoder(config))
    keras_hub_models.copy_layers(_layer_pairs(backbone, model.backbone), to_tfllm=True)
    return model


def write_keras_hub(model, tokenizer, directory):
    """A BertMaskedLM preset (BertTextClassifier for a classifier) with its tokenizer."""
    _require_wordpiece(tokenizer, "keras-hub")
    config = model.config
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_heads=config.num_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.dropout,
        max_sequence_length=config.max_sequence_length, num_segments=config.type_vocab_size)
    keras_hub_models.copy_layers(_layer_pairs(backbone, model.backbone), to_tfllm=False)
    if hasattr(model, "classifier_head"):
        task = keras_hub.models.BertTextClassifier(backbone=backbone,
                                                   num_classes=model.num_classes,
                                                   preprocessor=None)
        task.get_layer("logits").set_weights(model.classifier_head.get_weights())
    else:
        task = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
        keras_hub_models.copy_variables(list(zip(
            _own_weights(task.masked_lm_head), _own_weights(model.mlm_head), strict=True)),
            to_tfllm=False)
    task.save_to_preset(directory)
    keras_hub.models.BertTokenizer(vocabulary=tokenizer.keras_tokenizer.get_vocabulary(),
                                   **tokenizer.options).save_to_preset(directory)


def copy_keras_hub_tokenizer(keras_tokenizer, directory):
    if not isinstance(keras_tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        raise ConfigError(f"keras-hub tokenizer {type(keras_tokenizer).__name__} is not "
                          "BERT's WordPiece; nothing was converted.")
    model_dir.write_wordpiece(keras_tokenizer.get_vocabulary(), directory,
                              keras_tokenizer.lowercase, keras_tokenizer.strip_accents)
    return tokenizers.WORDPIECE_FILE
