"""Keras models: the BERT encoder, the GPT and Llama-family decoders, their configs and
presets."""

from tfllm.models.bert import BertEncoder, BertPretrainer
from tfllm.models.configs import BertConfig, GptConfig, LlamaConfig, get_preset, override
from tfllm.models.gpt import GptBackbone, GptCausalLM
from tfllm.models.llama import LlamaBackbone, LlamaCausalLM

BACKBONES = {"bert": BertEncoder, "gpt": GptBackbone, "llama": LlamaBackbone}
PRETRAINERS = {"bert": BertPretrainer, "gpt": GptCausalLM, "llama": LlamaCausalLM}
DECODER_FAMILIES = ("gpt", "llama")  # causal LMs: generation, the causal_lm task


def build_backbone(config):
    """The bare encoder or decoder for a config."""
    return BACKBONES[config.family](config)


def build_pretraining_model(config):
    """The backbone with its pretraining heads: MLM + NSP for BERT, the LM head for the
    decoders."""
    return PRETRAINERS[config.family](build_backbone(config))


__all__ = ["BertConfig", "BertEncoder", "BertPretrainer", "GptBackbone", "GptCausalLM",
           "GptConfig", "LlamaBackbone", "LlamaCausalLM", "LlamaConfig", "build_backbone",
           "build_pretraining_model", "get_preset", "override"]
