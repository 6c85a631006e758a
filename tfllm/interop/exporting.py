"""A tfllm model written as a Hugging Face directory or a keras-hub preset, with its
tokenizer in that ecosystem's files, by the family's converter."""

from tfllm.interop import families, huggingface, keras_hub_presets


def write_hf(model, tokenizer, directory, labels=None):
    """config.json, model.safetensors and the tokenizer files Transformers reads (a
    classifier's `labels` become id2label)."""
    converter = families.for_config(model.config)
    write_hf_model(model, directory, labels)
    converter.write_hf_tokenizer(model, tokenizer, directory)


def write_hf_model(model, directory, labels=None):
    """config.json and model.safetensors alone."""
    converter = families.for_config(model.config)
    huggingface.write(directory, converter.hf_config(model, labels),
                      converter.hf_entries(model))


def write_keras_hub(model, tokenizer, directory, labels=None):
    keras_hub_presets.write(model, tokenizer, directory)
