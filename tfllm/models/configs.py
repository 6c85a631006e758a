"""Model configs: one frozen dataclass per model family, named presets, and overrides.

A config fully determines an architecture. It is what gets saved next to every
artifact and what `get_config` of the models returns, so it stays plain data
(ints, floats, strings) that round-trips through JSON.
"""

import dataclasses
import typing

from tfllm.errors import ConfigError

DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16")
ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "silu")
ROPE_SCALINGS = ("", "linear", "llama3")


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
    tokenizer_family: typing.ClassVar[str] = ""  # the tokenizers its data is made with

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_sequence_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{self.family} config field '{name}' must be a positive "
                                  f"integer, got {value!r}.")
        if not self.explicit_head_size and self.hidden_size % self.num_heads:
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

    explicit_head_size: typing.ClassVar[bool] = False

    @property
    def head_size(self):
        return self.hidden_size // self.num_heads

    @property
    def key_value_heads(self):
        """Heads of the keys and values (a decoder's cache holds these)."""
        return self.num_heads

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
    tokenizer_family: typing.ClassVar[str] = "bert"

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
    tokenizer_family: typing.ClassVar[str] = "gpt"


@dataclasses.dataclass(frozen=True)
class LlamaConfig(TransformerConfig):
    """The modern open decoders as one family: pre-RMSNorm causal blocks with rotary
    positions, a gated feed-forward and grouped-query attention. Llama 2/3, TinyLlama,
    SmolLM2, Qwen2 (`attention_bias`), Mistral (`sliding_window`) and Gemma
    (`norm_scale_offset=1`, `scale_embeddings`, `head_dim`, GeGLU) are presets of it.
    `layer_norm_epsilon` is the RMSNorm epsilon."""

    num_key_value_heads: int = 0  # 0: as many as query heads (multi-head attention)
    head_dim: int = 0  # 0: hidden_size / num_heads
    rope_theta: float = 10000.0
    rope_scaling: str = ""  # "", "linear" or "llama3"
    rope_scaling_factor: float = 1.0
    rope_low_freq_factor: float = 1.0  # llama3: wavelengths past original/low are scaled
    rope_high_freq_factor: float = 4.0  # llama3: wavelengths under original/high are kept
    rope_original_max_length: int = 8192  # llama3: the pretraining context length
    attention_bias: bool = False  # biases on the query, key and value projections
    sliding_window: int = 0  # 0: every earlier position; else the last N, itself included
    tie_word_embeddings: bool = True
    scale_embeddings: bool = False  # multiply the token embeddings by sqrt(hidden_size)
    norm_scale_offset: float = 0.0  # RMSNorm multiplies by (offset + scale): Gemma's 1
    activation: str = "silu"  # of the gate: silu makes SwiGLU, gelu_approximate GeGLU
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5

    family: typing.ClassVar[str] = "llama"
    tokenizer_family: typing.ClassVar[str] = "gpt"  # SentencePiece or byte-level BPE
    explicit_head_size: typing.ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        for name in ("num_key_value_heads", "head_dim", "sliding_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"llama config field '{name}' must be a non-negative "
                                  f"integer, got {value!r}.")
        if self.num_heads % self.key_value_heads:
            raise ConfigError(f"llama config: num_heads={self.num_heads} is not a multiple of "
                              f"num_key_value_heads={self.num_key_value_heads}; each key/value "
                              "head serves the same number of query heads.")
        if self.head_dim == 0 and self.hidden_size % self.num_heads:
            raise ConfigError(f"llama config: hidden_size={self.hidden_size} is not divisible "
                              f"by num_heads={self.num_heads}; set head_dim.")
        if self.head_size % 2:
            raise ConfigError(f"llama config: the head size {self.head_size} must be even "
                              "(rotary positions turn pairs of features).")
        if self.rope_scaling not in ROPE_SCALINGS:
            raise ConfigError("llama config field 'rope_scaling' must be one of "
                              f"{', '.join(repr(s) for s in ROPE_SCALINGS)}; got "
                              f"{self.rope_scaling!r}.")
        if not (self.rope_theta > 0 and self.rope_scaling_factor > 0
                and self.rope_high_freq_factor > self.rope_low_freq_factor > 0):
            raise ConfigError("llama config: rope_theta and rope_scaling_factor must be "
                              "positive and rope_high_freq_factor > rope_low_freq_factor > 0.")

    @property
    def key_value_heads(self):
        return self.num_key_value_heads or self.num_heads

    @property
    def head_size(self):
        return self.head_dim or self.hidden_size // self.num_heads


CONFIG_CLASSES = {cls.family: cls for cls in (BertConfig, GptConfig, LlamaConfig)}

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
    # The Llama family on the CPU: grouped-query attention; llama_small's feed-forward
    # (3 x 256 x 768 per block) makes it about gpt_small's size.
    "llama_tiny": LlamaConfig(**_CPU_TINY, num_key_value_heads=1),
    "llama_small": LlamaConfig(**{**_CPU_SMALL, "intermediate_size": 768},
                               num_key_value_heads=2),
    # Published open decoders, shape for shape (their config.json on the Hugging Face Hub).
    "smollm2_135m": LlamaConfig(
        vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9,
        num_key_value_heads=3, intermediate_size=1536, max_sequence_length=8192,
        rope_theta=100000.0),
    "qwen2_5_0_5b": LlamaConfig(
        vocab_size=151936, hidden_size=896, num_layers=24, num_heads=14,
        num_key_value_heads=2, intermediate_size=4864, max_sequence_length=32768,
        rope_theta=1000000.0, layer_norm_epsilon=1e-6, attention_bias=True),
    "tinyllama_1_1b": LlamaConfig(
        vocab_size=32000, hidden_size=2048, num_layers=22, num_heads=32,
        num_key_value_heads=4, intermediate_size=5632, max_sequence_length=2048,
        tie_word_embeddings=False),
    "llama3_2_1b": LlamaConfig(
        vocab_size=128256, hidden_size=2048, num_layers=16, num_heads=32,
        num_key_value_heads=8, intermediate_size=8192, max_sequence_length=131072,
        rope_theta=500000.0, rope_scaling="llama3", rope_scaling_factor=32.0,
        rope_low_freq_factor=1.0, rope_high_freq_factor=4.0, rope_original_max_length=8192),
    "mistral_7b": LlamaConfig(
        vocab_size=32000, hidden_size=4096, num_layers=32, num_heads=32,
        num_key_value_heads=8, intermediate_size=14336, max_sequence_length=32768,
        sliding_window=4096, tie_word_embeddings=False),
    "gemma_2b": LlamaConfig(
        vocab_size=256000, hidden_size=2048, num_layers=18, num_heads=8,
        num_key_value_heads=1, head_dim=256, intermediate_size=16384,
        max_sequence_length=8192, layer_norm_epsilon=1e-6, activation="gelu_approximate",
        scale_embeddings=True, norm_scale_offset=1.0),
}

# Parameter counts of the published checkpoints (BERT-base uncased with its pooler;
# GPT-2 124M with the LM head tied to the token embeddings; the decoders as their model
# cards and keras-hub's gemma_presets.py give them, with the LM head when untied).
PUBLISHED_PARAMETER_COUNTS = {
    "bert_base": 109_482_240, "gpt2_small": 124_439_808, "smollm2_135m": 134_515_008,
    "qwen2_5_0_5b": 494_032_768, "tinyllama_1_1b": 1_100_048_384,
    "llama3_2_1b": 1_235_814_400, "mistral_7b": 7_241_732_096, "gemma_2b": 2_506_172_416}


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
    if field_type is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "false", "0"):
            return str(value).lower() in ("true", "1")
        raise ConfigError(f"{family} config field '{field.name}' (--{field.name}) expects "
                          f"true or false, got {value!r}.")
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
