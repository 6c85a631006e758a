"""Input pipeline vs training: examples/s from the tf.data reader alone, next to what
a compiled train step of the same model consumes, in the same run.

    python -m benchmarks.input_pipeline [--data_dir=artifacts/data_gpt] [--preset=gpt_tiny]

Without --data_dir, it first runs the preprocessing job on the default corpus
(configs/data_gpt.flags) into a temporary directory. The ratio reader/train must
stay well above 1: the reader is never the bottleneck.
"""

import logging
import os
import tempfile
import time

import keras
import tensorflow as tf
from absl import app, flags

from benchmarks import save
from tfllm import tasks
from tfllm.data import readers
from tfllm.models import get_preset, override

flags.DEFINE_string("data_dir", "", "Preprocessed data (a directory with manifest.json).")
flags.DEFINE_string("preset", "", "Model preset; default gpt_tiny or bert_tiny by data kind.")
flags.DEFINE_integer("batch_size", 32, "Examples per batch.")
flags.DEFINE_integer("steps", 30, "Batches measured for each side.")
flags.DEFINE_string("output", "benchmarks/results/input_pipeline.json", "Where results go.")
FLAGS = flags.FLAGS


def _make_data():
    from tfllm import preprocess  # noqa: F401  (defines the preprocess flags)
    from tfllm.data import job

    FLAGS([__file__, "--flagfile=configs/data_gpt.flags"], known_only=True)
    directory = os.path.join(tempfile.mkdtemp(), "data_gpt")
    FLAGS.output_dir = directory
    job.run(preprocess.config_from_flags(), report=print)
    return directory


def _examples_per_second(iterator, steps, step_fn=None):
    batch = next(iterator)  # warm-up: tracing, compilation, buffers
    if step_fn:
        step_fn(*batch)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
        if step_fn:
            step_fn(*batch)
    return steps * FLAGS.batch_size / (time.perf_counter() - start)


def _train_step(model, task):
    """The task's own loss (its sums over their counts), compiled."""
    optimizer = keras.optimizers.AdamW(1e-3)

    @tf.function(jit_compile=True)
    def step(features, labels):
        with tf.GradientTape() as tape:
            loss_sums, _ = task.sums(model(features, training=True), labels)
            counts = task.counts(labels)
            loss = tf.add_n([loss_sums[name] / counts[name] for name in task.losses])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def main(argv):
    del argv
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    data_dir = FLAGS.data_dir or _make_data()
    manifest = readers.load_manifest(data_dir, "train")
    task = tasks.for_manifest(manifest)
    preset = FLAGS.preset or f"{task.model_families[0]}_tiny"
    length = task.sequence_length
    config = override(get_preset(preset), {
        "vocab_size": manifest.tokenizer.vocab_size,
        "max_sequence_length": max(length, get_preset(preset).max_sequence_length)})
    model = task.build_model(config)
    dataset = readers.make_dataset(data_dir, "train", FLAGS.batch_size)
    reader = _examples_per_second(iter(dataset), FLAGS.steps * 5)
    train = _examples_per_second(iter(dataset), FLAGS.steps, _train_step(model, task))
    result = {"data_dir": data_dir, "kind": manifest.kind, "preset": preset,
              "batch_size": FLAGS.batch_size, "sequence_length": length,
              "reader_examples_per_second": round(reader, 1),
              "train_examples_per_second": round(train, 1),
              "reader_over_train": round(reader / train, 2)}
    save(FLAGS.output, result)
    print(f"reader alone: {reader:,.0f} examples/s; training ({preset}, jit) consumes "
          f"{train:,.0f} examples/s; ratio {reader / train:.1f}x -> {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
