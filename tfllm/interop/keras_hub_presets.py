"""keras-hub preset directories (what `save_to_preset` and Kaggle downloads hold:
config.json, metadata.json, model.weights.h5, tokenizer.json and assets), read and
written through keras-hub's own preset API and the family's converter."""

import json
import os

import keras_hub

from tfllm.interop import families


def read_class_name(directory):
    with open(os.path.join(directory, "config.json")) as f:
        return json.load(f).get("class_name", "")


def load(directory):
    """(tfllm model, keras-hub tokenizer, keras-hub backbone, converter) of a preset."""
    converter = families.for_keras_hub(read_class_name(directory), directory)
    model, backbone = converter.read_keras_hub(directory)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(directory)
    return model, tokenizer, backbone, converter


def write(model, tokenizer, directory):
    """A preset of the tfllm model (with its task where keras-hub has one) and tokenizer."""
    families.for_config(model.config).write_keras_hub(model, tokenizer, directory)
