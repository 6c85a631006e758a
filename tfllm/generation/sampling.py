"""Next-token choice: greedy, temperature, top-k and top-p (nucleus) sampling.

Written with plain TF ops so the whole decoding loop compiles with XLA and the
same function can be exported in a SavedModel.
"""

import dataclasses

import tensorflow as tf

from tfllm.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    method: str = "greedy"  # or "sample"
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1: no nucleus cut
    max_new_tokens: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.method not in ("greedy", "sample"):
            raise ConfigError(f"--method must be greedy or sample; got {self.method!r}.")
        if self.temperature <= 0:
            raise ConfigError(f"--temperature must be positive; got {self.temperature}.")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("--top_k must be >= 0 and --top_p in (0, 1].")
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1; got {self.max_new_tokens}.")


def filter_logits(logits, top_k=0, top_p=1.0):
    """Sets logits outside the top-k and outside the top-p nucleus to -inf."""
    logits = tf.cast(logits, tf.float32)
    very_negative = tf.fill(tf.shape(logits), float("-inf"))
    if top_k:
        kth = tf.math.top_k(logits, k=top_k).values[..., -1:]
        logits = tf.where(logits < kth, very_negative, logits)
    if top_p < 1.0:
        sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
        probabilities = tf.nn.softmax(sorted_logits, axis=-1)
        # Keep the smallest prefix whose mass reaches top_p (always the first token).
        mass_before = tf.math.cumsum(probabilities, axis=-1, exclusive=True)
        kept = tf.where(mass_before < top_p, sorted_logits, tf.fill(tf.shape(sorted_logits),
                                                                     float("inf")))
        threshold = tf.reduce_min(kept, axis=-1, keepdims=True)
        logits = tf.where(logits < threshold, very_negative, logits)
    return logits


def next_tokens(logits, config, seed):
    """Token ids [batch] from last-position logits [batch, vocab]; `seed` is [2] int32."""
    if config.method == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = filter_logits(logits / config.temperature, config.top_k, config.top_p)
    return tf.cast(tf.squeeze(tf.random.stateless_categorical(logits, 1, seed), -1), tf.int32)
