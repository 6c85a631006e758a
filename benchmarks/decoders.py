"""The Llama-family decoder next to GPT at about the same parameter count, in one run:
training tokens/s and MFU of a compiled step, cached generation tokens/s, and the bytes of
the key/value cache (grouped-query attention keeps only the key/value heads).

    python -m benchmarks.decoders [--presets=gpt_small,llama_small --batch=8 --length=128]

Random weights and tokens; the training step is the trainer's loss (the task's sums over
their counts) under XLA with AdamW; generation is `tfllm.generate`'s cached loop under XLA.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import save
from tfllm.generation.decoding import Generator
from tfllm.generation.sampling import SamplingConfig
from tfllm.models import build_pretraining_model, get_preset
from tfllm.models.stats import model_stats
from tfllm.tasks.causal_lm import CausalLanguageModeling
from tfllm.training.monitoring import measure_peak_flops

flags.DEFINE_list("presets", ["gpt_small", "llama_small"], "Decoder presets to compare.")
flags.DEFINE_integer("batch", 8, "Sequences per training step and prompts per generation.")
flags.DEFINE_integer("length", 128, "Training sequence length.")
flags.DEFINE_integer("steps", 20, "Timed training steps.")
flags.DEFINE_integer("new", 64, "Generated tokens per prompt.")
flags.DEFINE_string("output", "benchmarks/results/decoders.json", "Where results go.")
FLAGS = flags.FLAGS


def _train_rate(lm):
    task, optimizer = CausalLanguageModeling(), keras.optimizers.AdamW(1e-4)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, lm.config.vocab_size, (FLAGS.batch, FLAGS.length)).astype(np.int32)
    features = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    labels = {"lm_ids": np.roll(ids, -1, axis=1), "lm_weights": np.ones(ids.shape, np.float32)}

    @tf.function(jit_compile=True)
    def step(features, labels):
        with tf.GradientTape() as tape:
            sums, _ = task.sums(lm(features, training=True), labels)
            loss = sums["lm"] / task.counts(labels)["lm"]
        optimizer.apply_gradients(zip(tape.gradient(loss, lm.trainable_variables),
                                      lm.trainable_variables))
        return loss

    step(features, labels).numpy()  # compilation
    started = time.perf_counter()
    for _ in range(FLAGS.steps):
        loss = step(features, labels)
    loss.numpy()
    return FLAGS.batch * FLAGS.length * FLAGS.steps / (time.perf_counter() - started)


def _generate_rate(lm):
    prompts = np.random.default_rng(1).integers(3, lm.config.vocab_size, (FLAGS.batch, 16))
    generator = Generator(lm, stop_ids=-1, jit_compile=True)  # never stops early
    sampling = SamplingConfig(max_new_tokens=FLAGS.new)
    generator.generate(prompts.tolist(), sampling)  # compilation
    started = time.perf_counter()
    generator.generate(prompts.tolist(), sampling)
    return FLAGS.batch * FLAGS.new / (time.perf_counter() - started)


def main(argv):
    del argv
    peak = measure_peak_flops()
    results = {"batch": FLAGS.batch, "length": FLAGS.length, "new_tokens": FLAGS.new,
               "peak_flops": round(peak), "presets": {}}
    for preset in FLAGS.presets:
        config = get_preset(preset)
        keras.utils.set_random_seed(0)
        lm = build_pretraining_model(config)
        stats = model_stats(lm, FLAGS.length)
        train = _train_rate(lm)
        results["presets"][preset] = {
            "parameters": stats.total_parameters,
            "train_tokens_per_second": round(train, 1),
            "mfu": round(train * stats.training_flops_per_token / peak, 3),
            "generate_tokens_per_second": round(_generate_rate(lm), 1),
            "cache_bytes": int(np.asarray(lm.empty_cache(
                FLAGS.batch, config.max_sequence_length)).nbytes)}
        row = results["presets"][preset]
        print(f"{preset}: {row['parameters']:,} parameters; training {row['train_tokens_per_second']:,.0f}"
              f" tok/s (MFU {row['mfu']:.0%}); generation {row['generate_tokens_per_second']:,.0f}"
              f" tok/s; cache {row['cache_bytes'] / 2**20:.1f} MiB", flush=True)
    if len(FLAGS.presets) == 2:
        first, second = (results["presets"][p] for p in FLAGS.presets)
        results["second_over_first"] = {
            key: round(second[key] / first[key], 3)
            for key in ("parameters", "train_tokens_per_second", "generate_tokens_per_second",
                        "cache_bytes")}
        print(f"{FLAGS.presets[1]} / {FLAGS.presets[0]}: {results['second_over_first']}")
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
