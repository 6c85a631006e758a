"""What a run reports: a line every --log_every steps, TensorBoard scalars, and MFU
against a matmul peak measured on the same device in the same run."""

import os
import time

import keras
import tensorflow as tf


def measure_peak_flops(size=1024, repeats=8):
    """FLOP/s of an XLA float32 matmul on this device: the MFU denominator."""
    a = tf.random.normal([size, size])
    matmul = tf.function(lambda x: tf.linalg.matmul(x, x), jit_compile=True)
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = matmul(a)
    out.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


class Progress:
    """Throughput windows between log lines, and the summaries of train and eval."""

    def __init__(self, config, chief, optimizer, flops_per_token, report):
        self.config = config
        self.optimizer = optimizer
        self.flops_per_token = flops_per_token
        self.report = report
        self.writer = (tf.summary.create_file_writer(os.path.join(config.model_dir,
                                                                  "tensorboard"))
                       if chief else tf.summary.create_noop_writer())
        self.peak = config.peak_tflops * 1e12 or measure_peak_flops()
        self._start_window()
        self.last = {}

    def _start_window(self):
        self._window_start, self._examples, self._tokens = time.perf_counter(), 0, 0.0

    def step(self, step, result, num_steps):
        """Counts a finished loop of `num_steps` steps ending at `step`; on logging
        steps, logs its last step's values (kept in `last`)."""
        self._examples += self.config.global_batch_size * num_steps
        self._tokens += float(result["tokens"])
        if step % self.config.log_every and step != self.config.train_steps:
            return
        elapsed = time.perf_counter() - self._window_start
        examples_per_second, tokens_per_second = self._examples / elapsed, self._tokens / elapsed
        learning_rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        values = {"loss": float(result["loss"]), "learning_rate": learning_rate,
                  "grad_norm": float(result["grad_norm"]),
                  "examples_per_second": examples_per_second,
                  "tokens_per_second": tokens_per_second,
                  "mfu": tokens_per_second * self.flops_per_token / self.peak}
        values.update({f"{n}_accuracy": float(v) for n, v in result["accuracy"].items()})
        self._write(step, {f"train/{name}": value for name, value in values.items()})
        self.report(f"step {step:>6}/{self.config.train_steps}  loss {values['loss']:.4f}  "
                    f"lr {learning_rate:.2e}  grad_norm {values['grad_norm']:.3f}  "
                    f"{examples_per_second:,.1f} ex/s  {tokens_per_second:,.0f} tok/s  "
                    f"MFU {values['mfu']:.1%}")
        self.last = values
        self._start_window()

    def evaluation(self, step, metrics):
        self._write(step, metrics)
        self.report(f"eval at step {step}: " + "  ".join(
            f"{name.split('/', 1)[1]} {value:.4f}" for name, value in metrics.items()))
        return metrics

    def _write(self, step, scalars):
        with self.writer.as_default(step=step):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
