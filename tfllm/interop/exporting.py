"""A tfllm model written as a Hugging Face directory or a keras-hub preset, with its
tokenizer in that ecosystem's files."""

import json
import os
import shutil

import keras_hub

from tfllm.errors import ConfigError
from tfllm.interop import hf_llama, huggingface, keras_hub_presets
from tfllm.text import chat_templates, tokenizers


def _require_published_family(tokenizer, target):
    if tokenizer.family == "gpt" and not tokenizer.path.endswith(tokenizers.BPE_VOCABULARY_FILE):
        raise ConfigError(f"This GPT model uses a SentencePiece tokenizer; {target}'s GPT-2 "
                          "reads byte-level BPE (vocab.json + merges.txt), so it cannot be "
                          "exported there. Models converted from GPT-2 can.")


def _bpe_files(tokenizer):
    with open(tokenizer.path, encoding="utf-8") as f:
        vocabulary = json.load(f)
    with open(os.path.join(os.path.dirname(tokenizer.path), tokenizers.BPE_MERGES_FILE),
              encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip()]
    return vocabulary, merges


def write_hf(model, tokenizer, directory, labels=None):
    """config.json, model.safetensors and the tokenizer files Transformers reads (a
    classifier's `labels` become id2label)."""
    if model.config.family == "llama":
        return _write_hf_llama(model, tokenizer, directory)
    _require_published_family(tokenizer, "Hugging Face")
    huggingface.write(model, directory, labels)
    length = model.config.max_sequence_length
    if tokenizer.family == "bert":
        shutil.copyfile(tokenizer.path, os.path.join(directory, tokenizers.WORDPIECE_FILE))
        settings = {"tokenizer_class": "BertTokenizer", "model_max_length": length,
                    "do_lower_case": tokenizer.options["lowercase"],
                    "strip_accents": tokenizer.options["strip_accents"],
                    "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                    "cls_token": "[CLS]", "mask_token": "[MASK]"}
    else:
        vocabulary, merges = _bpe_files(tokenizer)
        with open(os.path.join(directory, tokenizers.BPE_VOCABULARY_FILE), "w",
                  encoding="utf-8") as f:
            json.dump(vocabulary, f, ensure_ascii=False)
        with open(os.path.join(directory, tokenizers.BPE_MERGES_FILE), "w",
                  encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{m}\n" for m in merges))
        settings = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": length,
                    "bos_token": tokenizers.END_OF_TEXT, "eos_token": tokenizers.END_OF_TEXT,
                    "unk_token": tokenizers.END_OF_TEXT}
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(settings, f, indent=2)


def _write_hf_llama(model, tokenizer, directory):
    """A Llama-family model with its tokenizer as it came: SentencePiece tokenizer.model,
    or tokenizer.json with its tokenizer_config.json and generation_config.json."""
    hf_llama.write(model, directory)
    if tokenizer.path.endswith(tokenizers.BYTE_LEVEL_FILE):
        for source in tokenizers.tokenizer_files(tokenizer.path):
            if not source.endswith(chat_templates.KEPT_FILE):
                shutil.copyfile(source, os.path.join(directory, os.path.basename(source)))
        return
    if not tokenizer.path.endswith(tokenizers.SENTENCEPIECE_FILE):
        raise ConfigError("Llama-family models are exported with a SentencePiece "
                          f"tokenizer.model or a tokenizer.json; this one's tokenizer is "
                          f"{tokenizer.path}.")
    shutil.copyfile(tokenizer.path, os.path.join(directory, tokenizers.SENTENCEPIECE_FILE))
    settings = {"tokenizer_class": "LlamaTokenizer",
                "model_max_length": model.config.max_sequence_length,
                "add_bos_token": False, "add_eos_token": False}
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(settings, f, indent=2)


def write_keras_hub(model, tokenizer, directory, labels=None):
    """A keras-hub preset: the backbone (BERT with its BertMaskedLM head, or a
    classifier as BertTextClassifier) and the tokenizer."""
    if model.config.family == "llama":
        raise ConfigError("Writing Llama-family models as keras-hub presets is not built yet; "
                          "--to=hf writes them in the layout keras-hub's own loader reads.")
    _require_published_family(tokenizer, "keras-hub")
    if tokenizer.family == "bert":
        keras_tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=tokenizer.keras_tokenizer.get_vocabulary(), **tokenizer.options)
    else:
        vocabulary, merges = _bpe_files(tokenizer)
        keras_tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges)
    keras_hub_presets.write(model, keras_tokenizer, directory)
