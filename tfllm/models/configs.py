"""Model configs: one frozen dataclass per model family, named presets, and overrides.

A config fully determines an architecture. It is what gets saved next to every
artifact and what `get_config` of the models returns, so it stays plain data
(ints, floats, strings) that round-trips through JSON.
"""

import dataclasses
import typing

from tfllm.errors import ConfigError

DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16")
ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Fields shared by the encoder and the decoder."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_sequence_length: int
    dropout: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    activation: str = "gelu"
    dtype: str = "float32"

    family: typing.ClassVar[str] = ""

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_sequence_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{self.family} config field '{name}' must be a positive "
                                  f"integer, got {value!r}.")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"{self.family} config: hidden_size={self.hidden_size} is not divisible by "
                f"num_heads={self.num_heads}; every head needs the same width.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{self.family} config field 'dropout' must be in [0, 1), "
                              f"got {self.dropout!r}.")
        if not self.layer_norm_epsilon > 0 or not self.initializer_range > 0:
            raise ConfigError(f"{self.family} config: layer_norm_epsilon and "
                              "initializer_range must be positive.")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"{self.family} config field 'activation' must be one of "
                              f"{', '.join(ACTIVATIONS)}; got {self.activation!r}.")
        if self.dtype not in DTYPE_POLICIES:
            raise ConfigError(f"{self.family} config field 'dtype' must be a Keras dtype "
                              f"policy among {', '.join(DTYPE_POLICIES)}; got {self.dtype!r}.")

    @property
    def head_size(self):
        return self.hidden_size // self.num_heads

    def to_dict(self):
        return {"family": self.family, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class BertConfig(TransformerConfig):
    """A post-LN BERT encoder (Devlin et al. 2018)."""

    type_vocab_size: int = 2
    layer_norm_epsilon: float = 1e-12
    # The MLM head's own settings where a published model's differ from its encoder's
    # (keras-hub's BertMaskedLM: exact GELU and epsilon 1e-5 over a tanh-GELU encoder);
    # empty / 0: the encoder's.
    mlm_head_activation: str = ""
    mlm_head_layer_norm_epsilon: float = 0.0

    family: typing.ClassVar[str] = "bert"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.type_vocab_size, int) or self.type_vocab_size <= 0:
            raise ConfigError("bert config field 'type_vocab_size' must be a positive "
                              f"integer, got {self.type_vocab_size!r}.")
        if self.mlm_head_activation not in ("", *ACTIVATIONS):
            raise ConfigError("bert config field 'mlm_head_activation' must be empty or one of "
                              f"{', '.join(ACTIVATIONS)}; got {self.mlm_head_activation!r}.")
        if not self.mlm_head_layer_norm_epsilon >= 0:
            raise ConfigError("bert config field 'mlm_head_layer_norm_epsilon' must be >= 0.")


@dataclasses.dataclass(frozen=True)
class GptConfig(TransformerConfig):
    """A pre-LN causal decoder (GPT-2, Radford et al. 2019)."""

    activation: str = "gelu_approximate"

    family: typing.ClassVar[str] = "gpt"


CONFIG_CLASSES = {cls.family: cls for cls in (BertConfig, GptConfig)}

_CPU_TINY = dict(vocab_size=4096, hidden_size=64, num_layers=2, num_heads=2,
                 intermediate_size=256, max_sequence_length=128)
_CPU_SMALL = dict(vocab_size=8192, hidden_size=256, num_layers=4, num_heads=4,
                  intermediate_size=1024, max_sequence_length=256)

PRESETS = {
    # A few hundred thousand parameters: tests and the CPU demo.
    "bert_tiny": BertConfig(**_CPU_TINY),
    "gpt_tiny": GptConfig(**_CPU_TINY),
    # A few million parameters: real CPU pretraining runs in tens of minutes.
    "bert_small": BertConfig(**_CPU_SMALL),
    "gpt_small": GptConfig(**_CPU_SMALL),
    # The published architectures, parameter for parameter.
    "bert_base": BertConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                            intermediate_size=3072, max_sequence_length=512),
    "gpt2_small": GptConfig(vocab_size=50257, hidden_size=768, num_layers=12, num_heads=12,
                            intermediate_size=3072, max_sequence_length=1024),
}

# Parameter counts of the published checkpoints (BERT-base uncased with its pooler;
# GPT-2 124M with the LM head tied to the token embeddings).
PUBLISHED_PARAMETER_COUNTS = {"bert_base": 109_482_240, "gpt2_small": 124_439_808}


def get_preset(name):
    """Returns the config of a named preset."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown model preset {name!r}. Known presets: "
                          f"{', '.join(sorted(PRESETS))}.") from None


def _coerce(field, value, family):
    """Converts a flag string (or a JSON value) to the type of a config field."""
    field_type = field.type
    if isinstance(value, field_type) and not isinstance(value, bool):
        return value
    try:
        if field_type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value)) if isinstance(value, str) else int(value)
        if field_type is float:
            return float(value)
        return field_type(value)
    except (TypeError, ValueError):
        kind = {int: "an integer", float: "a number"}.get(field_type, "a string")
        raise ConfigError(f"{family} config field '{field.name}' (--{field.name}) expects "
                          f"{kind}, got {value!r}.") from None


def override(config, overrides):
    """Returns `config` with some fields replaced; values may be flag strings."""
    fields = {field.name: field for field in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown {config.family} config field(s) {', '.join(unknown)}. "
                          f"Valid fields: {', '.join(fields)}.")
    values = {name: _coerce(fields[name], value, config.family)
              for name, value in overrides.items()}
    return dataclasses.replace(config, **values)


def from_dict(data):
    """Rebuilds a config from `to_dict()` output (e.g. a saved config JSON)."""
    data = dict(data)
    family = data.pop("family", None)
    if family not in CONFIG_CLASSES:
        raise ConfigError(f"Config has unknown model family {family!r}; expected one of "
                          f"{', '.join(CONFIG_CLASSES)}.")
    cls = CONFIG_CLASSES[family]
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"Unknown {family} config field(s) {', '.join(unknown)}.")
    try:
        return cls(**data)
    except TypeError as error:
        raise ConfigError(f"Incomplete {family} config: {error}.") from None
