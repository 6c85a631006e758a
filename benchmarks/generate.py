"""Generation tokens/s with the key/value cache (`tfllm.generation.Generator`) next to
greedy decoding that recomputes the whole prefix at every step, in the same run.

    python -m benchmarks.generate [--preset=gpt_small --batch=4 --prompt=16 --new=112]

Both run as TF graphs without XLA (what TF Serving runs; the uncached prefix grows
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
        generator = Generator(lm, end_of_text_id=-1, jit_compile=jit)  # never stops early
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
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
