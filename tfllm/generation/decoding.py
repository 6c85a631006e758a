"""Batched autoregressive decoding over the key/value cache.

Prompts are left-aligned and right-padded (keras-hub's scheme): decoding starts
at the shortest prompt's end, and rows whose prompt is longer keep their own
tokens until it ends, so every token sits at its true position. The loop is one
`tf.while_loop`: XLA-compiled for `tfllm.generate`, plain graph in the exported
SavedModel (TF Serving runs without XLA).
"""

import time

import numpy as np
import tensorflow as tf

from tfllm.errors import InputError
from tfllm.generation.sampling import next_tokens


class Generator:
    """Generates continuations of token-id prompts with a `GptCausalLM`."""

    def __init__(self, lm, end_of_text_id, jit_compile=True):
        self.lm = lm
        self.end_of_text_id = end_of_text_id
        self._decode = tf.function(self.decode, jit_compile=jit_compile)

    def decode(self, tokens, prompt_mask, params):
        """tokens/prompt_mask [batch, total]: prompts right-padded to the total length.
        `params`: per-row sampling tensors (see `next_tokens`) and `max_new_tokens`.
        Returns (tokens with continuations written in, generated count per row)."""
        lm, eot = self.lm, self.end_of_text_id
        batch, total = tf.shape(tokens)[0], tf.shape(tokens)[1]
        start = tf.reduce_min(tf.reduce_sum(prompt_mask, axis=1))
        cache = lm.empty_cache(batch, tokens.shape[1] or total)  # static when known (XLA)
        # Prefill every position at once; positions past a row's prompt are
        # rewritten, token by token, before anything attends to them.
        logits, _, cache = lm.call_with_cache(tokens, cache, 0)
        logits = tf.gather(logits, start - 1, axis=1)
        done = tf.zeros([batch], tf.bool)
        generated = tf.zeros([batch], tf.int32)
        limit = params["max_new_tokens"]

        def body(index, tokens, cache, logits, done, generated):
            sampled = next_tokens(logits, params, index)
            from_prompt = prompt_mask[:, index] > 0
            new = ~from_prompt & ~done
            token = tf.where(from_prompt, tokens[:, index],
                             tf.where(done, tf.zeros_like(sampled), sampled))
            tokens = tf.tensor_scatter_nd_update(
                tokens, tf.stack([tf.range(batch), tf.fill([batch], index)], axis=1), token)
            generated += tf.cast(new, tf.int32)
            done = done | (new & tf.equal(token, eot)) | (~from_prompt & (generated >= limit))
            logits, _, cache = lm.call_with_cache(token[:, None], cache, index)
            return index + 1, tokens, cache, logits[:, 0], done, generated

        def not_finished(index, tokens, cache, logits, done, generated):
            return (index < total) & ~tf.reduce_all(done)

        _, tokens, _, _, _, generated = tf.while_loop(
            not_finished, body, (start, tokens, cache, logits, done, generated))
        return tokens, generated

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
        tokens = np.zeros((len(prompts), total), np.int32)
        prompt_mask = np.zeros_like(tokens)
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
