"""Training throughput against what users run, in one run: tfllm's trainer (the loop
`tfllm.train` runs, one step per host call and `--steps_per_loop`) next to keras-hub's
task models (GPT2CausalLM, BertMaskedLM from scratch, `compile(jit_compile=True)`,
`fit`) on the same TFRecords through the same reader, at the same shape, batch,
precision and optimizer; a hand-written compiled step of each side's model (the
reference); and the cost of k=4 accumulation. MFU divides 6*N*tokens-style FLOPs
(tfllm.models.stats) by a matmul peak measured in the same run.

    python -m benchmarks.train [--cells=gpt_tiny,bert_tiny,gpt_small,bert_small]

`fit` runs on a finite dataset (`take`): on an infinite one with `steps_per_epoch`
it ran at a fixed ~0.5 s/step here. keras-hub's BertMaskedLM has no next-sentence
head, tfllm's BERT does (a little more work for tfllm). Only same-run ratios are
meaningful on a noisy machine.
"""

import logging
import os
import shutil
import tempfile
import time

import keras
import keras_hub
import tensorflow as tf
from absl import app, flags

from benchmarks import save, synthetic_records
from tfllm.data import readers
from tfllm.models import build_pretraining_model, configs
from tfllm.models.stats import model_stats
from tfllm.training import inputs
from tfllm.training.config import TrainConfig
from tfllm.training.monitoring import measure_peak_flops
from tfllm.training.trainer import Trainer

# name -> (family, preset, overrides, global batch). "small": the small presets at
# vocabulary 4,096 and sequence 128; "base": BERT-base and GPT-2 124M (big hosts).
CELLS = {
    "gpt_tiny": ("gpt", "gpt_tiny", {}, 32),
    "bert_tiny": ("bert", "bert_tiny", {}, 32),
    "gpt_small": ("gpt", "gpt_small", {"vocab_size": 4096, "max_sequence_length": 128}, 16),
    "bert_small": ("bert", "bert_small", {"vocab_size": 4096, "max_sequence_length": 128},
                   16),
    "gpt_base": ("gpt", "gpt2_small", {"max_sequence_length": 512}, 8),
    "bert_base": ("bert", "bert_base", {}, 8),
}
# Targets (issue 17): tfllm over keras-hub `fit` tokens/s per cell; k=4 over k=1.
FIT_TARGETS = {"gpt_tiny": 1.3, "gpt_small": 1.5, "bert_small": 1.5}
K4_TARGET = 0.95

flags.DEFINE_list("cells", ["gpt_tiny", "bert_tiny", "gpt_small", "bert_small"],
                  f"Shapes to measure, of {', '.join(CELLS)}.")
flags.DEFINE_integer("steps", 30, "Timed optimizer steps per measurement.")
flags.DEFINE_integer("steps_per_loop", 10, "tfllm's --steps_per_loop, and fit's "
                     "steps_per_execution, for the looped measurements.")
flags.DEFINE_string("precision", "float32", "float32, mixed_bfloat16 or mixed_float16.")
flags.DEFINE_boolean("jit_compile", True, "XLA for every side.")
flags.DEFINE_string("output", "benchmarks/results/train.json", "Where results go.")
FLAGS = flags.FLAGS


def _config(preset, overrides):
    return configs.override(configs.get_preset(preset), {**overrides, "dropout": 0.0,
                                                         "dtype": FLAGS.precision})


def _tokens(batch, config, steps):
    return steps * batch * config.max_sequence_length


def _tfllm_rate(config, batch, data_dir, manifest, per_loop, k=1):
    """Tokens/s of the trainer's own loop function, synchronised on its result after
    every loop as `Trainer.train` is (its progress reads the loop's token count)."""
    model_dir = tempfile.mkdtemp(dir=data_dir)
    trainer = Trainer(config, TrainConfig(
        data_dir=data_dir, model_dir=model_dir, global_batch_size=batch, grad_accum_steps=k,
        jit_compile=FLAGS.jit_compile, steps_per_loop=per_loop, learning_rate=1e-4,
        warmup_steps=0, peak_tflops=1.0), tf.distribute.OneDeviceStrategy("/cpu:0"),
        manifest, report=lambda line: None)
    iterator = inputs.train_iterator(trainer.strategy, trainer.config, 0, {})
    loop = tf.constant(per_loop, tf.int32)
    float(trainer._train_loop(iterator, loop)["tokens"])  # traces and compiles
    start = time.perf_counter()
    for _ in range(FLAGS.steps // per_loop):
        float(trainer._train_loop(iterator, loop)["tokens"])
    return _tokens(batch, config, FLAGS.steps // per_loop * per_loop) / (
        time.perf_counter() - start)


def _keras_hub_backbone(family, config):
    kwargs = dict(vocabulary_size=config.vocab_size, num_layers=config.num_layers,
                  num_heads=config.num_heads, hidden_dim=config.hidden_size,
                  intermediate_dim=config.intermediate_size, dropout=config.dropout,
                  max_sequence_length=config.max_sequence_length, dtype=config.dtype)
    if family == "gpt":
        return keras_hub.models.GPT2Backbone(**kwargs)
    return keras_hub.models.BertBackbone(**kwargs)


class _BatchClock(keras.callbacks.Callback):
    """Times `fit` from the end of its first execution to the end of its last: the
    iterator's start and the epoch's set-up are left out, as they are for tfllm."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def seconds(self):
        return self.ends[-1] - self.ends[0]


def _fit_rate(family, config, batch, data_dir, steps_per_execution):
    """Tokens/s of keras-hub's task model through `fit`, as its users train it."""
    backbone = _keras_hub_backbone(family, config)
    task = (keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
            if family == "gpt" else
            keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None))
    task.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
                 jit_compile=FLAGS.jit_compile, steps_per_execution=steps_per_execution)
    target = "lm" if family == "gpt" else "mlm"

    def dataset(steps):
        return readers.make_dataset(data_dir, "train", batch, seed=0).map(
            lambda features, labels: (features, labels[f"{target}_ids"],
                                      labels[f"{target}_weights"])).take(steps)

    task.fit(dataset(2 * steps_per_execution), epochs=1, verbose=0)  # compiles
    clock = _BatchClock()
    task.fit(dataset(FLAGS.steps + steps_per_execution), epochs=1, verbose=0,
             callbacks=[clock])
    return _tokens(batch, config, FLAGS.steps) / clock.seconds(), task


def _compiled_step_rate(model, family, config, batch, data_dir):
    """Tokens/s of a hand-written XLA step on one batch held in memory: what a loop
    without input, logging or host calls reaches with this model."""
    optimizer = keras.optimizers.AdamW(1e-4)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    features, labels = next(iter(readers.make_dataset(data_dir, "train", batch, seed=0)))

    @tf.function(jit_compile=FLAGS.jit_compile)
    def step(features, labels):
        with tf.GradientTape() as tape:
            out = model(features, training=True)
            if family == "gpt":
                loss = xent(labels["lm_ids"], out)
            else:
                logits = out["mlm_logits"] if isinstance(out, dict) else out
                loss = xent(labels["mlm_ids"], logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step(features, labels).numpy()
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        loss = step(features, labels)
    loss.numpy()
    return _tokens(batch, config, FLAGS.steps) / (time.perf_counter() - start)


def _cell(name, peak, scratch):
    family, preset, overrides, batch = CELLS[name]
    config = _config(preset, overrides)
    data_dir = os.path.join(scratch, name)
    manifest = synthetic_records.write(family, config, batch * 8, data_dir)
    per_loop = FLAGS.steps_per_loop
    rates = {"tfllm_1_step_per_call": _tfllm_rate(config, batch, data_dir, manifest, 1),
             "tfllm_steps_per_loop": _tfllm_rate(config, batch, data_dir, manifest, per_loop),
             "tfllm_steps_per_loop_k4": _tfllm_rate(config, batch, data_dir, manifest,
                                                    per_loop, k=4)}
    rates["keras_hub_fit"], task = _fit_rate(family, config, batch, data_dir, 1)
    rates["keras_hub_fit_steps_per_execution"], _ = _fit_rate(family, config, batch,
                                                              data_dir, per_loop)
    ours = build_pretraining_model(config)
    rates["tfllm_model_compiled_step"] = _compiled_step_rate(ours, family, config, batch,
                                                             data_dir)
    rates["keras_hub_model_compiled_step"] = _compiled_step_rate(task, family, config, batch,
                                                                 data_dir)
    flops = model_stats(ours, config.max_sequence_length).training_flops_per_token
    fit = rates["keras_hub_fit"]
    best = rates["tfllm_steps_per_loop"]
    target = FIT_TARGETS.get(name)
    return {
        "family": family, "preset": preset, "global_batch_size": batch,
        "sequence_length": config.max_sequence_length, "vocab_size": config.vocab_size,
        "parameters": {"tfllm": ours.count_params(), "keras_hub": task.count_params()},
        "tokens_per_second": {side: round(rate) for side, rate in rates.items()},
        "mfu": {side: round(rate * flops / peak, 3) for side, rate in rates.items()},
        "tfllm_over_keras_hub_fit": round(best / fit, 3),
        "tfllm_over_keras_hub_fit_like_for_like": {
            "1_step_per_call": round(rates["tfllm_1_step_per_call"] / fit, 3),
            "looped": round(best / rates["keras_hub_fit_steps_per_execution"], 3)},
        "k4_over_k1": round(rates["tfllm_steps_per_loop_k4"] / best, 3),
        "target_over_fit": target,
        "met": {"over_fit": None if target is None else best / fit >= target,
                "k4": rates["tfllm_steps_per_loop_k4"] / best >= K4_TARGET}}


def main(argv):
    del argv
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    unknown = [c for c in FLAGS.cells if c not in CELLS]
    if unknown:
        raise app.UsageError(f"Unknown --cells {', '.join(unknown)} (of {', '.join(CELLS)}).")
    if FLAGS.steps % FLAGS.steps_per_loop:
        raise app.UsageError("--steps must be a multiple of --steps_per_loop.")
    peak = measure_peak_flops(2048, 4)
    results = {"config": {"steps": FLAGS.steps, "steps_per_loop": FLAGS.steps_per_loop,
                          "precision": FLAGS.precision, "jit_compile": FLAGS.jit_compile},
               "peak_gflops": round(peak / 1e9, 1),
               "targets": {"over_keras_hub_fit": FIT_TARGETS, "k4_over_k1": K4_TARGET},
               "cells": {}}
    scratch = tempfile.mkdtemp(prefix="tfllm-bench-train-")
    try:
        for name in FLAGS.cells:
            results["cells"][name] = r = _cell(name, peak, scratch)
            rates, mfu = r["tokens_per_second"], r["mfu"]
            print(f"{name} (batch {r['global_batch_size']}, seq {r['sequence_length']}): "
                  + ", ".join(f"{side} {rate:,} tok/s (MFU {mfu[side]:.0%})"
                              for side, rate in rates.items())
                  + f"; tfllm / keras-hub fit {r['tfllm_over_keras_hub_fit']:.2f}x"
                  + (f" (target {r['target_over_fit']}x)" if r["target_over_fit"] else "")
                  + f", k=4 / k=1 {r['k4_over_k1']:.2f}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"matmul peak {peak / 1e9:,.0f} GFLOP/s")
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
