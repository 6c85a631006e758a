"""Keras models: the BERT encoder, the GPT decoder, their configs and presets."""

from tfllm.models.bert import BertEncoder, BertPretrainer
from tfllm.models.configs import BertConfig, GptConfig, get_preset, override
from tfllm.models.gpt import GptBackbone, GptCausalLM


def build_backbone(config):
    """The bare encoder or decoder for a config."""
    return {"bert": BertEncoder, "gpt": GptBackbone}[config.family](config)


def build_pretraining_model(config):
    """The backbone with its pretraining heads: MLM + NSP for BERT, the LM head for GPT."""
    task = {"bert": BertPretrainer, "gpt": GptCausalLM}[config.family]
    return task(build_backbone(config))


__all__ = ["BertConfig", "BertEncoder", "BertPretrainer", "GptBackbone", "GptCausalLM",
           "GptConfig", "build_backbone", "build_pretraining_model", "get_preset", "override"]
