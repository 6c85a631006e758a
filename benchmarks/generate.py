"""Generation tokens/s with the key/value cache (`tfllm.generation.Generator`) next to
greedy decoding that recomputes the whole prefix at every step, in the same run.

    python -m benchmarks.generate [--preset=gpt_small --batch=4 --prompt=16 --new=112]

Then tokens/s for a short and a long prompt, prefilled at their own length and over the
whole cache. Both run as TF graphs without XLA (what TF Serving runs; the uncached prefix grows
every step, which XLA would recompile for); the cached loop under XLA
(`tfllm.generate`'s default) is reported beside them. Greedy tokens must agree.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import save
from tfllm.generation.decoding import Generator
from tfllm.generation.sampling import SamplingConfig
from tfllm.models import build_pretraining_model, get_preset

flags.DEFINE_string("preset", "gpt_small", "GPT preset (random weights).")
flags.DEFINE_integer("batch", 4, "Prompts per call.")
flags.DEFINE_integer("prompt", 16, "Prompt tokens.")
flags.DEFINE_integer("new", 112, "Tokens generated per prompt.")
flags.DEFINE_integer("prompt_new", 32, "New tokens in the short/long prompt comparison.")
flags.DEFINE_string("output", "benchmarks/results/generate.json", "Where results go.")
FLAGS = flags.FLAGS


def _uncached(lm):
    """Greedy decoding that runs the model over the whole prefix for every token."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def next_token(prefix):
        logits = lm({"token_ids": prefix, "padding_mask": tf.ones_like(prefix)}, training=False)
        return tf.argmax(logits[:, -1], axis=-1, output_type=tf.int32)

    def generate(prompts, new_tokens):
        tokens = tf.constant(prompts)
        for _ in range(new_tokens):
            tokens = tf.concat([tokens, next_token(tokens)[:, None]], axis=1)
        return tokens.numpy()[:, prompts.shape[1]:]

    return generate


def _timed(function, *args):
    function(*args)  # tracing / compilation
    start = time.perf_counter()
    out = function(*args)
    return out, FLAGS.batch * FLAGS.new / (time.perf_counter() - start)


def main(argv):
    del argv
    lm = build_pretraining_model(get_preset(FLAGS.preset))
    prompts = np.random.default_rng(0).integers(
        3, lm.config.vocab_size, (FLAGS.batch, FLAGS.prompt)).astype(np.int32)
    sampling = SamplingConfig(max_new_tokens=FLAGS.new)
    results = {"preset": FLAGS.preset, "batch": FLAGS.batch, "prompt_tokens": FLAGS.prompt,
               "new_tokens": FLAGS.new}
    rates, outputs = {}, {}
    for name, jit in (("cache_graph", False), ("cache_xla", True)):
        generator = Generator(lm, stop_ids=-1, jit_compile=jit)  # never stops early
        outputs[name], rates[name] = _timed(
            lambda: np.array(generator.generate(prompts.tolist(), sampling)[0]))
    outputs["no_cache_graph"], rates["no_cache_graph"] = _timed(_uncached(lm), prompts,
                                                                FLAGS.new)
    agree = float(np.mean(outputs["cache_graph"] == outputs["no_cache_graph"]))
    results.update({f"{name}_tokens_per_second": round(rate, 1) for name, rate in rates.items()})
    results["cache_over_no_cache"] = round(rates["cache_graph"] / rates["no_cache_graph"], 2)
    results["greedy_tokens_agreeing"] = agree
    print(f"{FLAGS.preset}, batch {FLAGS.batch}, {FLAGS.prompt}+{FLAGS.new} tokens: KV cache "
          f"{rates['cache_graph']:,.0f} tok/s, no cache {rates['no_cache_graph']:,.0f} tok/s "
          f"({results['cache_over_no_cache']:.1f}x); cache under XLA "
          f"{rates['cache_xla']:,.0f} tok/s; greedy tokens agreeing {agree:.1%}")
    results["prompt_lengths"] = _prompt_lengths(lm)
    save(FLAGS.output, results)


def _prompt_lengths(lm):
    """Tokens/s for a short and a long prompt (graph, as served), with the prompts
    prefilled at their own length and, as before this change, over the whole cache
    (prompt + new tokens): the same `decode`, given prompts padded to either width."""
    generator = Generator(lm, stop_ids=-1, jit_compile=False)
    decode = tf.function(generator.decode)
    new, context = FLAGS.prompt_new, lm.config.max_sequence_length
    params = {k: tf.constant(v) for k, v in
              SamplingConfig(max_new_tokens=new).rows(FLAGS.batch).items()}
    rng, results = np.random.default_rng(1), {}
    for name, length in (("short", 8), ("long", context - new)):
        prompts = rng.integers(3, lm.config.vocab_size, (FLAGS.batch, length)).astype(np.int32)
        mask = np.zeros((FLAGS.batch, length + new), np.int32)
        mask[:, :length] = 1
        rates = {}
        for how, width in (("prompt_length", length), ("whole_cache", length + new)):
            padded = tf.constant(np.pad(prompts, ((0, 0), (0, width - length))))
            decode(padded, tf.constant(mask), params)  # tracing
            started = time.perf_counter()
            decode(padded, tf.constant(mask), params)
            rates[how] = FLAGS.batch * new / (time.perf_counter() - started)
        results[name] = {"prompt_tokens": length, "new_tokens": new,
                         **{f"{how}_prefill_tokens_per_second": round(rate, 1)
                            for how, rate in rates.items()},
                         "prompt_length_over_whole_cache": round(
                             rates["prompt_length"] / rates["whole_cache"], 2)}
        print(f"{name} prompt ({length} tokens) + {new} new: {rates['prompt_length']:,.0f} "
              f"tok/s prefilled at its length, {rates['whole_cache']:,.0f} tok/s over the "
              "whole cache", flush=True)
    return results


if __name__ == "__main__":
    app.run(main)
