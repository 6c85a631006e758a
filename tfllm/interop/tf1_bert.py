"""google-research/bert's TF1 releases: bert_config.json, bert_model.ckpt.* and
vocab.txt. The variables are renamed to Hugging Face names and read like an HF
directory; the casing is read off the vocabulary (cased releases hold capitals).
"""

import glob
import json
import os
import re

import numpy as np
import tensorflow as tf

from tfllm.errors import ConfigError


def checkpoint_prefix(directory):
    indexes = sorted(glob.glob(os.path.join(directory, "*.ckpt*.index")))
    if not indexes:
        raise ConfigError(f"{directory} has bert_config.json but no TF1 checkpoint "
                          "(bert_model.ckpt.index); nothing was converted.")
    return indexes[0][:-len(".index")]


def hf_config(directory):
    """bert_config.json is HF's BERT config without model_type (LayerNorm eps 1e-12)."""
    with open(os.path.join(directory, "bert_config.json")) as f:
        return {"model_type": "bert", "layer_norm_eps": 1e-12, **json.load(f)}


def read_tensors(directory):
    """{HF name: array} of the checkpoint's model variables (optimizer slots left out)."""
    prefix = checkpoint_prefix(directory)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        tensors = {}
        for name in shapes:
            mapped = tf1_to_hf_name(name)
            if mapped:
                hf_name, transposed = mapped
                value = reader.get_tensor(name)
                tensors[hf_name] = np.transpose(value) if transposed else value
    except (tf.errors.OpError, ValueError) as error:
        raise ConfigError(f"TF1 checkpoint {prefix} cannot be read ({str(error).splitlines()[0]}"
                          "); nothing was converted.") from None
    return tensors


def is_cased(vocabulary):
    """Uncased releases lowercase every token; cased ones keep capitals."""
    return any(token[:1] != "[" and token.lower() != token for token in vocabulary)


def tf1_to_hf_name(name):
    """google-research/bert's variable name as HF's BertForPreTraining name, and
    whether its layout is transposed ([in, out] kernels), or None (e.g. the optimizer's
    slots, global_step)."""
    if name in ("cls/predictions/output_bias",):
        return "cls.predictions.bias", False
    if name == "cls/seq_relationship/output_weights":
        return "cls.seq_relationship.weight", False  # [2, hidden] in both
    if name == "cls/seq_relationship/output_bias":
        return "cls.seq_relationship.bias", False
    if not name.startswith(("bert/", "cls/predictions/transform/")) or \
            name.endswith(("adam_m", "adam_v")):
        return None
    parts = re.sub(r"layer_(\d+)", r"layer.\1", name).split("/")
    leaf, transposed = parts[-1], parts[-1] == "kernel"
    leaf = {"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(leaf, leaf)
    if leaf.endswith("_embeddings"):
        return ".".join(parts) + ".weight", False
    return ".".join(parts[:-1] + [leaf]), transposed
