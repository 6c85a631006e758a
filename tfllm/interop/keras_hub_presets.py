"""keras-hub preset directories (what `save_to_preset` and Kaggle downloads hold:
config.json, metadata.json, model.weights.h5, tokenizer.json and assets), read
and written through keras-hub's own preset API."""

import json
import os

import keras_hub

from tfllm.errors import ConfigError
from tfllm.interop import keras_hub_models


def read_class_name(directory):
    with open(os.path.join(directory, "config.json")) as f:
        return json.load(f).get("class_name", "")


def load(directory):
    """(tfllm model, keras-hub tokenizer, keras-hub backbone) of a preset directory."""
    class_name = read_class_name(directory)
    if class_name not in ("BertBackbone", "GPT2Backbone"):
        described = class_name or "an unknown class"
        raise ConfigError(f"{directory} is a keras-hub preset of {described}; tfllm converts "
                          "BertBackbone and GPT2Backbone presets "
                          "(with or without their BertMaskedLM / GPT2CausalLM task); nothing "
                          "was converted.")
    family = "bert" if class_name == "BertBackbone" else "gpt"
    head = None
    if os.path.exists(os.path.join(directory, "task.json")) and family == "bert":
        task = keras_hub.models.BertMaskedLM.from_preset(directory, preprocessor=None)
        backbone, head = task.backbone, task.masked_lm_head
    else:
        backbone = keras_hub.models.Backbone.from_preset(directory)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(directory)
    return keras_hub_models.tfllm_model(backbone, head), tokenizer, backbone


def write(model, tokenizer, directory):
    """A preset of the tfllm model's backbone (BERT: with its BertMaskedLM head; a
    BERT classifier: as BertTextClassifier)."""
    backbone = keras_hub_models.keras_hub_backbone(model.config)
    keras_hub_models.copy_backbone(model.backbone, backbone, to_tfllm=False)
    if hasattr(model, "classifier_head"):
        if model.config.family != "bert":
            raise ConfigError("keras-hub's GPT-2 has no classifier task; export BERT "
                              "classifiers or pretrained models.")
        task = keras_hub.models.BertTextClassifier(backbone=backbone,
                                                   num_classes=model.num_classes,
                                                   preprocessor=None)
        task.get_layer("logits").set_weights(model.classifier_head.get_weights())
        task.save_to_preset(directory)
    elif model.config.family == "bert":
        task = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
        keras_hub_models.copy_mlm_head(model.mlm_head, task.masked_lm_head)
        task.save_to_preset(directory)
    else:
        backbone.save_to_preset(directory)
    tokenizer.save_to_preset(directory)
