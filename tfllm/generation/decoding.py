"""Batched autoregressive decoding over the key/value cache, compiled with XLA.

Prompts are left-aligned and right-padded (keras-hub's scheme): decoding starts
at the shortest prompt's end, and rows whose prompt is longer keep their own
tokens until it ends, so every token sits at its true position.
"""

import time

import numpy as np
import tensorflow as tf

from tfllm.errors import InputError
from tfllm.generation.sampling import next_tokens


class Generator:
    """Generates continuations of token-id prompts with a `GptCausalLM`."""

    def __init__(self, lm, end_of_text_id, config, jit_compile=True):
        self.lm = lm
        self.end_of_text_id = end_of_text_id
        self.config = config
        self._decode = tf.function(self._decode_loop, jit_compile=jit_compile)

    def _decode_loop(self, tokens, prompt_mask, start, limit):
        lm, config, eot = self.lm, self.config, self.end_of_text_id
        batch, total = tf.shape(tokens)[0], tf.shape(tokens)[1]
        cache = lm.empty_cache(batch, tokens.shape[1])
        # Prefill every position at once (static shapes for XLA); positions past a
        # row's prompt are rewritten, token by token, before anything attends to them.
        logits, _, cache = lm.call_with_cache(tokens, cache, 0)
        logits = tf.gather(logits, start - 1, axis=1)
        done = tf.zeros([batch], tf.bool)
        generated = tf.zeros([batch], tf.int32)

        def body(index, tokens, cache, logits, done, generated):
            seed = tf.stack([tf.constant(config.seed, tf.int32), index])
            sampled = next_tokens(logits, config, seed)
            from_prompt = prompt_mask[:, index] > 0
            new = ~from_prompt & ~done
            token = tf.where(from_prompt, tokens[:, index],
                             tf.where(done, tf.zeros_like(sampled), sampled))
            tokens = tf.tensor_scatter_nd_update(
                tokens, tf.stack([tf.range(batch), tf.fill([batch], index)], axis=1), token)
            generated += tf.cast(new, tf.int32)
            done = done | (new & tf.equal(token, eot)) | (generated >= limit)
            logits, _, cache = lm.call_with_cache(token[:, None], cache, index)
            return index + 1, tokens, cache, logits[:, 0], done, generated

        def not_finished(index, tokens, cache, logits, done, generated):
            return (index < total) & ~tf.reduce_all(done)

        _, tokens, _, _, _, generated = tf.while_loop(
            not_finished, body, (start, tokens, cache, logits, done, generated))
        return tokens, generated

    def generate(self, prompts):
        """Prompts (lists of ids) -> (continuations as lists of ids, tokens per second)."""
        if not prompts or any(len(p) == 0 for p in prompts):
            raise InputError("Every prompt needs at least one token; got an empty prompt.")
        context = self.lm.config.max_sequence_length
        longest = max(len(p) for p in prompts)
        if longest >= context:
            raise InputError(f"A prompt of {longest} tokens leaves no room in the model's "
                             f"context of {context} tokens.")
        total = min(context, longest + self.config.max_new_tokens)
        tokens = np.zeros((len(prompts), total), np.int32)
        prompt_mask = np.zeros_like(tokens)
        for row, prompt in enumerate(prompts):
            tokens[row, :len(prompt)] = prompt
            prompt_mask[row, :len(prompt)] = 1
        start_time = time.perf_counter()
        out, generated = self._decode(tf.constant(tokens), tf.constant(prompt_mask),
                                      tf.constant(min(len(p) for p in prompts)),
                                      tf.constant(self.config.max_new_tokens))
        out, generated = out.numpy(), generated.numpy()
        elapsed = time.perf_counter() - start_time
        continuations = [out[row, len(p):len(p) + generated[row]].tolist()
                         for row, p in enumerate(prompts)]
        return continuations, int(generated.sum()) / elapsed
