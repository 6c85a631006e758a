"""Reading a trained model directory back: architecture, weights and tokenizer."""

import json
import os

import tensorflow as tf

from tfllm.data import output
from tfllm.errors import ConfigError
from tfllm.models import build_pretraining_model, configs
from tfllm.text.tokenizers import load_tokenizer


def load_trained(model_dir):
    """(task model with the latest checkpoint's weights, data manifest, tokenizer)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"{model_dir} has no config.json: it is not a tfllm model directory.")
    with open(path) as f:
        saved = json.load(f)
    model = build_pretraining_model(configs.from_dict(saved["model"]))
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if checkpoint is None:
        raise ConfigError(f"{model_dir} has no checkpoint yet; train it first.")
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    data_dir = saved["train"]["data_dir"]
    manifest = output.read_manifest(data_dir)
    tokenizer = load_tokenizer(os.path.join(data_dir, manifest["tokenizer"]["file"]))
    return model, manifest, tokenizer
