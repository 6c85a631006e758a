"""Chat templates: conversations rendered to a decoder's prompt text.

A template is a jinja2 string rendered with the variables Hugging Face Transformers'
`apply_chat_template` passes (`messages`, `add_generation_prompt`, `bos_token`,
`eos_token`, `raise_exception`) in the same sandboxed environment, so a published
model's own template (its tokenizer_config.json's `chat_template`) renders as it does
there. Models trained here use a named built-in. A `ChatFormat` also carries the
strings that end an assistant turn, which the server stops generation at.
"""

import dataclasses
import json

import jinja2
import jinja2.sandbox

from tfllm.errors import ConfigError

BUILT_IN = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ["<|im_end|>"]),
    "llama3": (
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + "
        "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
        "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        ["<|eot_id|>"]),
    "gemma": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for message in messages %}{% if (message['role'] == 'user') != "
        "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
        "user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
        "{% else %}{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
        "'<end_of_turn>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
        ["<end_of_turn>"]),
}
ROLES = ("system", "user", "assistant")
KEPT_FILE = "chat_format.json"  # a converted model's own format, beside its tokenizer


class TemplateError(ValueError):
    """A conversation the template refuses (its `raise_exception`) or cannot render."""


def _raise(message):
    raise TemplateError(message)


@dataclasses.dataclass(frozen=True)
class ChatFormat:
    template: str
    stop: tuple = ()  # strings that end an assistant turn
    bos_token: str = ""
    eos_token: str = ""

    def __post_init__(self):
        try:
            self._compiled()
        except jinja2.TemplateError as error:
            raise ConfigError(f"The chat template does not compile: {error}.") from None

    def _compiled(self):
        environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise
        return environment.from_string(self.template)

    def render(self, messages, add_generation_prompt=True):
        """The prompt text of `messages` ([{"role", "content"}]); TemplateError when the
        conversation is not one the template accepts."""
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES or \
                    not isinstance(message.get("content"), str):
                raise TemplateError("Each message needs a role (system, user or assistant) "
                                    "and text content.")
        try:
            return self._compiled().render(
                messages=messages, add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token, eos_token=self.eos_token)
        except jinja2.TemplateError as error:
            raise TemplateError(f"The chat template failed: {error}.") from None

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text):
        fields = json.loads(text)
        return cls(fields["template"], tuple(fields.get("stop", ())),
                   fields.get("bos_token", ""), fields.get("eos_token", ""))


def named(name):
    """A built-in format by name."""
    if name not in BUILT_IN:
        raise ConfigError(f"Unknown chat template {name!r}; the built-in ones are "
                          f"{', '.join(BUILT_IN)} (or give a file).")
    template, stop = BUILT_IN[name]
    return ChatFormat(template, tuple(stop))


def from_tokenizer_config(settings):
    """The format a Hugging Face tokenizer_config.json describes, or None."""
    template = settings.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template:
        return None

    def token(name):
        value = settings.get(name) or ""
        return value.get("content", "") if isinstance(value, dict) else value

    eos = token("eos_token")
    return ChatFormat(template, (eos,) if eos else (), token("bos_token"), eos)
