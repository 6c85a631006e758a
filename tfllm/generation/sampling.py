"""Next-token choice: greedy, temperature, top-k and top-p (nucleus) sampling, with an
optional repetition penalty.

Every setting is a per-row tensor, so one batch can mix requests (the server
batches concurrent clients) and a row's tokens never depend on its neighbours:
each row draws its own Gumbel noise from its own seed. Plain TF ops, so the loop
compiles with XLA and exports in a SavedModel.
"""

import dataclasses

import numpy as np
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
    repetition_penalty: float = 1.0  # 1: off; Transformers' (CTRL's) penalty otherwise

    def __post_init__(self):
        if self.method not in ("greedy", "sample"):
            raise ConfigError(f"--method must be greedy or sample; got {self.method!r}.")
        if self.temperature <= 0:
            raise ConfigError(f"--temperature must be positive; got {self.temperature}.")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("--top_k must be >= 0 and --top_p in (0, 1].")
        if self.repetition_penalty <= 0:
            raise ConfigError("--repetition_penalty must be positive (1: off); got "
                              f"{self.repetition_penalty}.")
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1; got {self.max_new_tokens}.")

    def rows(self, batch_size):
        """The per-row parameter arrays `next_tokens` takes; temperature 0 means greedy."""
        temperature = self.temperature if self.method == "sample" else 0.0
        full = lambda value, dtype: np.full([batch_size], value, dtype)  # noqa: E731
        rows = {"temperature": full(temperature, np.float32), "top_k": full(self.top_k, np.int32),
                "top_p": full(self.top_p, np.float32), "seed": full(self.seed, np.int32),
                "max_new_tokens": full(self.max_new_tokens, np.int32)}
        if self.repetition_penalty != 1.0:  # off: not computed at all
            rows["repetition_penalty"] = full(self.repetition_penalty, np.float32)
        return rows


def filter_logits(logits, top_k, top_p):
    """Sets logits outside each row's top-k ([batch] ints, 0: no cut) and outside its
    top-p nucleus ([batch] floats, 1: no cut) to -inf."""
    logits = tf.cast(logits, tf.float32)
    vocab = tf.shape(logits)[-1]
    sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    kth = tf.gather(sorted_logits, k - 1, axis=1, batch_dims=1)[:, None]
    # Keep the smallest prefix whose mass reaches top_p (always the first token).
    mass_before = tf.math.cumsum(tf.nn.softmax(sorted_logits, axis=-1), axis=-1, exclusive=True)
    top_p = tf.cast(top_p, tf.float32)[:, None]
    kept = tf.where(mass_before < top_p, sorted_logits, float("inf"))
    nucleus = tf.where(top_p < 1.0, tf.reduce_min(kept, axis=-1, keepdims=True), float("-inf"))
    return tf.where(logits < tf.maximum(kth, nucleus), float("-inf"), logits)


def penalize_repetitions(logits, penalty, tokens, step):
    """Transformers' repetition penalty (Keskar et al. 2019): the logit of every token
    already in the row (prompt or generated, positions before `step` of `tokens`
    [batch, total]) is divided by `penalty` [batch] if positive, multiplied if not."""
    logits = tf.cast(logits, tf.float32)
    batch, total = tf.shape(tokens)[0], tf.shape(tokens)[1]
    rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, total])
    seen = tf.tensor_scatter_nd_max(
        tf.zeros(tf.shape(logits), tf.int32), tf.stack([rows, tokens], axis=-1),
        tf.broadcast_to(tf.cast(tf.range(total) < step, tf.int32)[None, :], [batch, total]))
    penalty = tf.cast(penalty, tf.float32)[:, None]
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(seen > 0, penalized, logits)


def next_tokens(logits, params, step, tokens=None):
    """Token ids [batch] from last-position logits [batch, vocab].

    `params` holds [batch] tensors `temperature` (0: greedy), `top_k`, `top_p` and
    `seed`, and optionally `repetition_penalty` (applied first, over `tokens`' first
    `step` positions); `step` (the position) varies the noise from one token to the next.
    """
    if "repetition_penalty" in params and tokens is not None:
        logits = penalize_repetitions(logits, params["repetition_penalty"], tokens, step)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    temperature = tf.cast(params["temperature"], tf.float32)
    sampling = temperature > 0

    def sample():
        scaled = logits / tf.where(sampling, temperature, 1.0)[:, None]
        filtered = filter_logits(scaled, params["top_k"], params["top_p"])
        seeds = tf.stack([params["seed"], tf.fill(tf.shape(params["seed"]), step)], axis=1)
        vocab = tf.shape(logits)[-1]
        uniform = tf.map_fn(  # one stream per row: batch-independent samples
            lambda seed: tf.random.stateless_uniform([vocab], seed, minval=1e-20, maxval=1.0),
            seeds, fn_output_signature=tf.float32)
        # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits).
        return tf.argmax(filtered - tf.math.log(-tf.math.log(uniform)), axis=-1,
                         output_type=tf.int32)

    sampled = tf.cond(tf.reduce_any(sampling), sample, lambda: greedy)
    return tf.where(sampling, sampled, greedy)
