"""The converters, one module per published family (keras-hub's
`utils/transformers/convert_<family>.py` layout): a family is added by writing its module
and listing it here. Each module names what it reads (`HF_MODEL_TYPES`,
`KERAS_HUB_BACKBONES`), says which tfllm configs it writes (`describes`), and provides
config_from_hf, hf_config, hf_entries, read_hf_weights, copy_hf_tokenizer,
write_hf_tokenizer, keras_hub_reads, read_keras_hub, model_from_keras_hub, write_keras_hub and
copy_keras_hub_tokenizer."""

from tfllm.errors import ConfigError
from tfllm.interop import (convert_bert, convert_gemma, convert_gpt2, convert_llama,
                           convert_mistral, convert_qwen2)

# Checked in order for a tfllm config: Llama takes the Llama-architecture configs its
# relatives do not.
CONVERTERS = (convert_bert, convert_gpt2, convert_gemma, convert_mistral, convert_qwen2,
              convert_llama)


def for_hf(model_type, directory):
    for converter in CONVERTERS:
        if model_type in converter.HF_MODEL_TYPES:
            return converter
    known = ", ".join(repr(t) for c in CONVERTERS for t in c.HF_MODEL_TYPES)
    raise ConfigError(f"{directory}: config.json has model_type {model_type!r}; tfllm converts "
                      f"{known} (RoBERTa, DistilBERT, mixtures of experts and others differ "
                      "in their layers); nothing was converted.")


def for_keras_hub(class_name, directory):
    for converter in CONVERTERS:
        if class_name in converter.KERAS_HUB_BACKBONES:
            return converter
    known = ", ".join(n for c in CONVERTERS for n in c.KERAS_HUB_BACKBONES)
    raise ConfigError(f"{directory} is a keras-hub preset of {class_name or 'an unknown class'}"
                      f"; tfllm converts presets of {known} (with or without their task); "
                      "nothing was converted.")


def for_config(config):
    return next(c for c in CONVERTERS if c.describes(config))
