"""Chat templates render conversations as Transformers' apply_chat_template does (the same
jinja2 sandbox and variables), refuse what their template refuses, and travel as JSON."""

import pytest

from tfllm.errors import ConfigError
from tfllm.text import chat_templates
from tfllm.text.chat_templates import ChatFormat, TemplateError

MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": " Hello. "},
            {"role": "user", "content": "Bye"}]
# TinyLlama-Chat's template (its tokenizer_config.json), with bos/eos given as AddedToken
# dicts as some files do.
ZEPHYR = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
          "{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + "
          "eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + "
          "message['content'] + eos_token }}\n{% endif %}\n"
          "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
          "{% endfor %}")


def test_built_in_formats_render_the_published_layouts():
    assert chat_templates.named("chatml").render(MESSAGES) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n Hello. <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n")
    llama3 = chat_templates.ChatFormat(chat_templates.BUILT_IN["llama3"][0],
                                       bos_token="<|begin_of_text|>")
    assert llama3.render(MESSAGES[1:2]) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert chat_templates.named("gemma").render(MESSAGES[1:], add_generation_prompt=False) == (
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n")


def test_a_templates_own_refusals_and_bad_messages_are_template_errors():
    gemma = chat_templates.named("gemma")
    with pytest.raises(TemplateError, match="System role not supported"):
        gemma.render(MESSAGES)
    with pytest.raises(TemplateError, match="must alternate"):
        gemma.render([MESSAGES[1], MESSAGES[1]])
    with pytest.raises(TemplateError, match="needs a role"):
        gemma.render([{"role": "user", "content": ["an", "image"]}])


def test_a_published_tokenizer_config_and_json_round_trip():
    chat = chat_templates.from_tokenizer_config({
        "chat_template": ZEPHYR, "bos_token": {"content": "<s>"}, "eos_token": "</s>"})
    assert chat.stop == ("</s>",) and chat.bos_token == "<s>"
    assert chat.render(MESSAGES[:2]) == (
        "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n")
    assert ChatFormat.from_json(chat.to_json()) == chat
    assert chat_templates.from_tokenizer_config({"eos_token": "</s>"}) is None
    with pytest.raises(ConfigError, match="does not compile"):
        ChatFormat("{% for m in messages %}")
    with pytest.raises(ConfigError, match="Unknown chat template 'vicuna'"):
        chat_templates.named("vicuna")
