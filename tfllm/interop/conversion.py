"""Conversion of published BERT, GPT-2 and Llama-family (Llama, Qwen2, Mistral, Gemma)
checkpoints into tfllm model directories, and back out (the library behind
`python -m tfllm.convert`)."""

import json
import os
import shutil

import keras_hub
import numpy as np

from tfllm import tasks
from tfllm.errors import ConfigError
from tfllm.interop import exporting, huggingface, keras_hub_models, keras_hub_presets
from tfllm.interop import hf_llama, model_dir, tf1_bert
from tfllm.models import build_pretraining_model
from tfllm.text import chat_templates, tokenizers
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
    reference = None
    if fmt == "keras_hub":
        model, keras_tokenizer, reference = keras_hub_presets.load(path)
        write_tokenizer = lambda d: model_dir.write_keras_hub_tokenizer(keras_tokenizer, d)  # noqa: E731
    elif fmt == "hf" and _hf_model_type(path) in hf_llama.MODEL_TYPES:
        model, reference = _import_hf_llama(path)
        write_tokenizer = lambda d: _llama_tokenizer(path, d)  # noqa: E731
    else:
        if fmt == "tf1":
            config = huggingface.config_from(tf1_bert.hf_config(path), path)
            tensors = tf1_bert.read_tensors(path)
        else:
            config = huggingface.read_config(path)
            tensors = huggingface.read_tensors(path)
        model = _empty_model(config)
        missing = huggingface.assign(model, tensors, path)
        if missing:
            report(f"note: {path} has no {', '.join(sorted({m.split('.')[1] for m in missing}))}"
                   f" head weights ({len(missing)} tensors); they start from random values.")
        write_tokenizer = lambda d: _published_tokenizer(path, fmt, config, d)  # noqa: E731
        if fmt == "hf":
            reference = _keras_hub_reading(path, config)
    source = {"format": fmt, "path": path, "model": config_name(model.config)}
    tokenizer = model_dir.write(output, model, write_tokenizer, source, overwrite)
    check = None
    if reference is not None and (fmt == "keras_hub" or model.config.family == "llama"):
        check = (f"outputs equal keras-hub's model on the same ids: max |difference| "
                 f"{_output_difference(model, reference):.2e}")
    elif reference is not None:
        check = (f"weights equal keras-hub's own reading of the same files: max |difference| "
                 f"{weight_difference(model, reference):.2e}")
    return model, tokenizer, check


def config_name(config):
    return (f"{config.family} {config.num_layers} layers x {config.hidden_size}, "
            f"{config.vocab_size:,} tokens, {config.max_sequence_length} positions")


def _empty_model(config):
    return build_pretraining_model(config)


def _hf_model_type(path):
    with open(os.path.join(path, "config.json")) as f:
        return json.load(f).get("model_type")


def _import_hf_llama(path):
    """(the converted model, keras-hub's own reading of the same directory: the
    independent implementation the conversion is checked against)."""
    with open(os.path.join(path, "config.json")) as f:
        config = hf_llama.config_from(json.load(f), path)
    model = build_pretraining_model(config)
    hf_llama.assign(model, huggingface.read_tensors(path), path)
    return model, keras_hub.models.Backbone.from_preset(path)


def _llama_tokenizer(path, directory):
    """Copies a Llama-family tokenizer: SentencePiece tokenizer.model (Llama 2,
    TinyLlama, Mistral, Gemma) or, without one, byte-level BPE tokenizer.json (Llama 3,
    Qwen2, SmolLM2) with its special tokens and stop ids; keeps the chat template."""
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
    if os.path.exists(settings_path):  # the model's own chat template, kept for export
        with open(settings_path, encoding="utf-8") as f:
            chat = chat_templates.from_tokenizer_config(json.load(f))
        if chat is not None:
            with open(os.path.join(directory, chat_templates.KEPT_FILE), "w") as f:
                f.write(chat.to_json())
    return names[0]


def _published_tokenizer(path, fmt, config, directory):
    """Copies an HF / TF1 vocabulary with its casing; returns the vocabulary's name."""
    if config.family == "gpt":
        for name in (tokenizers.BPE_VOCABULARY_FILE, tokenizers.BPE_MERGES_FILE):
            if not os.path.exists(os.path.join(path, name)):
                raise ConfigError(f"{path} has no {name}: GPT-2's tokenizer needs vocab.json "
                                  "and merges.txt; nothing was converted.")
        with open(os.path.join(path, tokenizers.BPE_VOCABULARY_FILE), encoding="utf-8") as f:
            vocabulary = json.load(f)
        with open(os.path.join(directory, tokenizers.BPE_VOCABULARY_FILE), "w",
                  encoding="utf-8") as f:
            json.dump(vocabulary, f, ensure_ascii=False)
        with open(os.path.join(path, tokenizers.BPE_MERGES_FILE), encoding="utf-8") as f:
            merges = [line for line in f if line.strip() and not line.startswith("#version")]
        with open(os.path.join(directory, tokenizers.BPE_MERGES_FILE), "w",
                  encoding="utf-8") as f:
            f.writelines(merges)
        return tokenizers.BPE_VOCABULARY_FILE
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
        settings_path = os.path.join(path, "tokenizer_config.json")
        if os.path.exists(settings_path):
            with open(settings_path) as f:
                settings = json.load(f)
        lowercase = settings.get("do_lower_case", True)
        strip_accents = settings.get("strip_accents")
        strip_accents = lowercase if strip_accents is None else strip_accents
    model_dir.write_wordpiece(vocabulary, directory, lowercase, strip_accents)
    return tokenizers.WORDPIECE_FILE


def _keras_hub_reading(path, config):
    """keras-hub's own Transformers loader on the same directory: the independent
    reading of the weights the conversion is checked against."""
    if (config.family == "gpt" and config.intermediate_size != 4 * config.hidden_size) or (
            config.family == "bert" and config.type_vocab_size != 2):
        return None  # shapes keras-hub's converter does not read
    return keras_hub.models.Backbone.from_preset(path)


def weight_difference(model, reference):
    """keras-hub's backbone, mapped into a tfllm model, against the converted one."""
    twin = _empty_model(model.config)
    keras_hub_models.copy_backbone(reference, twin.backbone, to_tfllm=True)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(model.backbone.weights, twin.backbone.weights, strict=True))


def _output_difference(model, reference):
    """Largest difference of the final hidden states on a few token ids."""
    config = model.config
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (2, 16)).astype(np.int32)
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    if config.family == "bert":
        inputs["segment_ids"] = np.zeros_like(ids)
    ours, theirs = model.backbone(inputs, training=False), reference(inputs, training=False)
    if config.family == "bert":
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
