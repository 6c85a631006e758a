"""Conversion of published BERT, GPT-2 and Llama-family (Llama, Qwen2, Mistral, Gemma)
checkpoints into tfllm model directories, and back out (the library behind
`python -m tfllm.convert`)."""

import json
import os

import keras_hub
import numpy as np

from tfllm import tasks
from tfllm.errors import ConfigError
from tfllm.interop import exporting, families, huggingface, keras_hub_presets, model_dir
from tfllm.interop import tf1_bert
from tfllm.models import build_pretraining_model
from tfllm.training.artifacts import load_trained


def detect(path):
    """keras_hub, hf or tf1, from the files a directory holds."""
    if not os.path.isdir(path):
        raise ConfigError(f"--from={path} is not a directory.")
    if os.path.exists(os.path.join(path, "bert_config.json")):
        return "tf1"
    config = os.path.join(path, "config.json")
    if os.path.exists(config):
        try:
            with open(config) as f:
                fields = json.load(f)
        except (OSError, ValueError) as error:
            raise ConfigError(f"{config} is not readable JSON ({error}).") from None
        if "class_name" in fields and "registered_name" in fields:
            return "keras_hub"
        if "model_type" in fields:
            return "hf"
    raise ConfigError(f"--from={path} is no known checkpoint layout: expected a keras-hub "
                      "preset (config.json with class_name, metadata.json, model.weights.h5), "
                      "a Hugging Face directory (config.json with model_type, "
                      "model.safetensors) or a google-research/bert checkpoint "
                      "(bert_config.json, bert_model.ckpt.*, vocab.txt).")


def import_checkpoint(path, fmt, output, overwrite=False, report=print):
    """Converts `path`; returns (tfllm model, tokenizer, a line about the check against
    keras-hub's reading of the same files, or None)."""
    model_dir.check_output(output, overwrite)
    if fmt == "keras_hub":
        model, keras_tokenizer, reference, converter = keras_hub_presets.load(path)
        write_tokenizer = lambda d: converter.copy_keras_hub_tokenizer(keras_tokenizer, d)  # noqa: E731
    else:
        hf_fields = tf1_bert.hf_config(path) if fmt == "tf1" else huggingface.read_config(path)
        converter = families.for_hf(hf_fields.get("model_type"), path)
        try:
            config = converter.config_from_hf(hf_fields, path)
        except KeyError as error:
            raise ConfigError(f"{path}: config.json lacks {error}; nothing was "
                              "converted.") from None
        model = build_pretraining_model(config)
        tensors = tf1_bert.read_tensors(path) if fmt == "tf1" else huggingface.read_tensors(path)
        missing = converter.read_hf_weights(model, tensors, path)
        if missing:
            report(f"note: {path} has no {', '.join(sorted({m.split('.')[1] for m in missing}))}"
                   f" head weights ({len(missing)} tensors); they start from random values.")
        write_tokenizer = lambda d: converter.copy_hf_tokenizer(path, fmt, d)  # noqa: E731
        reference = _keras_hub_reading(path, config) if fmt == "hf" else None
    source = {"format": fmt, "path": path, "model": config_name(model.config)}
    tokenizer = model_dir.write(output, model, write_tokenizer, source, overwrite)
    check = None
    if fmt == "keras_hub":
        check = (f"outputs equal keras-hub's model on the same ids: max |difference| "
                 f"{_output_difference(model, reference):.2e}")
    elif reference is not None:
        check = (f"weights equal keras-hub's own reading of the same files: max |difference| "
                 f"{weight_difference(model, reference):.2e}")
    return model, tokenizer, check


def config_name(config):
    return (f"{config.family} {config.num_layers} layers x {config.hidden_size}, "
            f"{config.vocab_size:,} tokens, {config.max_sequence_length} positions")


def _keras_hub_reading(path, config):
    """keras-hub's own Transformers loader on the same directory: the independent
    reading of the weights the conversion is checked against."""
    if not families.for_config(config).keras_hub_reads(config):
        return None
    return keras_hub.models.Backbone.from_preset(path)


def weight_difference(model, reference):
    """keras-hub's backbone, mapped into a tfllm model, against the converted one."""
    twin = families.for_config(model.config).model_from_keras_hub(reference)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(model.backbone.weights, twin.backbone.weights, strict=True))


def _output_difference(model, reference):
    """Largest difference of the final hidden states on a few token ids."""
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (2, 16))
    inputs = {"token_ids": ids.astype(np.int32), "padding_mask": np.ones_like(ids, np.int32)}
    if "segment_ids" in reference.input:
        inputs["segment_ids"] = np.zeros_like(ids, np.int32)
    ours, theirs = model.backbone(inputs, training=False), reference(inputs, training=False)
    if isinstance(theirs, dict):
        ours, theirs = ours["sequence_output"], theirs["sequence_output"]
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(theirs))))


def export_model(model_dir_path, to, output, overwrite=False):
    """Writes a tfllm model directory in HF or keras-hub form at `output`."""
    model_dir.check_output(output, overwrite)
    model, manifest, tokenizer = load_trained(model_dir_path)
    labels = tasks.for_manifest(manifest).published_labels
    with model_dir.written_atomically(output, overwrite) as temporary:
        (exporting.write_hf if to == "hf" else exporting.write_keras_hub)(
            model, tokenizer, temporary, labels)
