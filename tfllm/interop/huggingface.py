"""Hugging Face Transformers directories, whatever the family: config.json, the
weights in model.safetensors (or shards listed by model.safetensors.index.json), and
a converter's name table applied each way."""

import json
import os

import numpy as np
import safetensors
import safetensors.numpy

from tfllm.errors import ConfigError
from tfllm.interop import tensor_names

CONFIG_FILE = "config.json"
WEIGHTS_FILE, INDEX_FILE = "model.safetensors", "model.safetensors.index.json"


def refuse(directory, field, value, why):
    raise ConfigError(f"{directory}: config field {field}={value!r} cannot be represented by "
                      f"tfllm's models ({why}); nothing was converted.")


def read_config(directory):
    path = os.path.join(directory, CONFIG_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path} is not readable JSON ({error}).") from None


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


def find(tensors, entry):
    return next((tensors[n] for n in (entry.name, *entry.aliases) if n in tensors), None)


def assign(entries, tensors, source):
    """Writes published tensors into the entries' variables; returns the names of the
    optional ones the file lacks (left at their initial values), refusing a missing or
    misshapen required one."""
    absent = [e for e in entries if find(tensors, e) is None]
    required = [e.name for e in absent if not e.optional]
    if required:
        raise ConfigError(f"{source} lacks {len(required)} of the model's tensors (the first: "
                          f"{required[0]}); nothing was converted.")
    for entry in entries:
        value = find(tensors, entry)
        if value is None:
            continue
        value = np.asarray(value, np.float32)
        if isinstance(entry, tensor_names.Fused):
            parts = entry.split(value)
            if parts is None:
                _misshapen(source, entry, value)
            for variable, part in zip(entry.variables, parts):
                variable.assign(part)
            continue
        try:
            converted = entry.to_tfllm(value)
        except ValueError:
            converted = None
        if converted is None or converted.shape != tuple(entry.variable.shape):
            _misshapen(source, entry, value)
        entry.variable.assign(converted)
    return [e.name for e in absent]


def _misshapen(source, entry, value):
    raise ConfigError(f"{source}: tensor {entry.name} has shape {value.shape}, which does not "
                      "match config.json (it does not fit the model that file describes); "
                      "nothing was converted.")


def tensors_of(entries):
    """{published name: numpy array} of the entries' variables."""
    tensors = {}
    for entry in entries:
        if isinstance(entry, tensor_names.Fused):
            tensors[entry.name] = entry.join([np.asarray(v) for v in entry.variables])
        else:
            tensors[entry.name] = np.ascontiguousarray(
                entry.to_published(np.asarray(entry.variable)))
    return tensors


def write(directory, fields, entries):
    """config.json (`fields`) and model.safetensors (the entries' variables)."""
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
        json.dump(fields, f, indent=2)
    safetensors.numpy.save_file(tensors_of(entries), os.path.join(directory, WEIGHTS_FILE),
                                metadata={"format": "pt"})
