"""Batched autoregressive decoding over the key/value cache.

Prompts are left-aligned and right-padded (keras-hub's scheme): decoding starts
at the shortest prompt's end, and rows whose prompt is longer keep their own
tokens until it ends, so every token sits at its true position. The prompts are
prefilled in one pass at their own length into a cache sized for prompt plus new
tokens. Decoding is a state that `step` advances one position: `decode` runs the
steps as one `tf.while_loop` (XLA-compiled for `tfllm.generate`, plain graph in
the exported SavedModel: TF Serving runs without XLA), and the server's streamed
generation calls the same `begin` and `step` one position at a time, so both give
the same tokens.
"""

import collections
import time

import numpy as np
import tensorflow as tf

from tfllm.errors import InputError
from tfllm.generation.sampling import next_tokens

DecodingState = collections.namedtuple(
    "DecodingState", ["index", "tokens", "cache", "logits", "done", "generated"])


class Generator:
    """Generates continuations of token-id prompts with a decoder (GPT or Llama family).
    A row stops at any of `stop_ids` (the end-of-text id, or generation_config.json's
    eos_token_id list; -1: never)."""

    def __init__(self, lm, stop_ids, jit_compile=True):
        self.lm = lm
        self.stop_ids = tf.constant(np.atleast_1d(stop_ids), tf.int32)
        self._decode = tf.function(self.decode, jit_compile=jit_compile)

    def begin(self, prompts, prompt_mask):
        """prompts [batch, longest prompt], right-padded; prompt_mask [batch, total]:
        1 on prompt tokens, total = prompt + new tokens (the cache's size). Prefills
        the prompts; returns the state at the shortest prompt's end."""
        batch, total = tf.shape(prompt_mask)[0], tf.shape(prompt_mask)[1]
        start = tf.reduce_min(tf.reduce_sum(prompt_mask, axis=1))
        cache = self.lm.empty_cache(batch, prompt_mask.shape[1] or total)  # static for XLA
        # Positions past a row's prompt are rewritten, token by token, before
        # anything attends to them.
        logits, _, cache = self.lm.call_with_cache(prompts, cache, 0)
        tokens = tf.pad(prompts, [[0, 0], [0, total - tf.shape(prompts)[1]]])
        zeros = tf.zeros([batch], tf.int32)
        return DecodingState(start, tokens, cache, tf.gather(logits, start - 1, axis=1),
                             tf.zeros([batch], tf.bool), zeros)

    def running(self, state):
        return (state.index < tf.shape(state.tokens)[1]) & ~tf.reduce_all(state.done)

    def step(self, state, prompt_mask, params):
        """Chooses the token at `state.index` (the prompt's own, or a sampled one) and
        runs it through the model. `params`: per-row sampling tensors (`next_tokens`)
        and `max_new_tokens`."""
        index, tokens, cache, logits, done, generated = state
        batch = tf.shape(tokens)[0]
        sampled = next_tokens(logits, params, index, tokens)
        from_prompt = prompt_mask[:, index] > 0
        new = ~from_prompt & ~done
        token = tf.where(from_prompt, tokens[:, index],
                         tf.where(done, tf.zeros_like(sampled), sampled))
        tokens = tf.tensor_scatter_nd_update(
            tokens, tf.stack([tf.range(batch), tf.fill([batch], index)], axis=1), token)
        generated += tf.cast(new, tf.int32)
        stopped = tf.reduce_any(tf.equal(token[:, None], self.stop_ids[None, :]), axis=1)
        done = done | (new & stopped) | (
            ~from_prompt & (generated >= params["max_new_tokens"]))
        logits, _, cache = self.lm.call_with_cache(token[:, None], cache, index)
        return DecodingState(index + 1, tokens, cache, logits[:, 0], done, generated)

    def decode(self, prompts, prompt_mask, params):
        """Runs `begin` and every `step`; returns (tokens [batch, total] with the
        continuations written in, generated count per row)."""
        state = tf.while_loop(lambda *state: self.running(DecodingState(*state)),
                              lambda *state: self.step(DecodingState(*state), prompt_mask,
                                                       params),
                              tuple(self.begin(prompts, prompt_mask)))
        return state[1], state[5]

    def generate(self, prompts, config):
        """Prompts (lists of ids) and a `SamplingConfig` -> (continuations as lists of
        ids, tokens per second of the decoding call)."""
        if not prompts or any(len(p) == 0 for p in prompts):
            raise InputError("Every prompt needs at least one token; got an empty prompt.")
        context = self.lm.config.max_sequence_length
        longest = max(len(p) for p in prompts)
        if longest >= context:
            raise InputError(f"A prompt of {longest} tokens leaves no room in the model's "
                             f"context of {context} tokens.")
        total = min(context, longest + config.max_new_tokens)
        tokens = np.zeros((len(prompts), longest), np.int32)
        prompt_mask = np.zeros((len(prompts), total), np.int32)
        for row, prompt in enumerate(prompts):
            tokens[row, :len(prompt)] = prompt
            prompt_mask[row, :len(prompt)] = 1
        params = {k: tf.constant(v) for k, v in config.rows(len(prompts)).items()}
        start_time = time.perf_counter()
        out, generated = self._decode(tf.constant(tokens), tf.constant(prompt_mask), params)
        out, generated = out.numpy(), generated.numpy()
        elapsed = time.perf_counter() - start_time
        continuations = [out[row, len(p):len(p) + generated[row]].tolist()
                         for row, p in enumerate(prompts)]
        return continuations, int(generated.sum()) / elapsed
