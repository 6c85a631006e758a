"""The custom training loop: strategy-aware, with accumulation and global-norm clipping.

Why not `Model.fit`: on this stack it fails under MultiWorkerMirroredStrategy,
Keras's gradient accumulation fails under MirroredStrategy, and `clipnorm` clips
per replica before the cross-replica sum (see docs/design.md). So, as Model Garden's
Orbit does, the trainer owns the loop and uses Keras models and optimizers. Its
parts live apart: the step (`steps`), fine-tuning set-up (`fine_tuning`),
checkpoints (`checkpoints`), input (`inputs`), logs (`monitoring`), stopping
(`preemption`) and the run's config (`run_config`); this module wires them and
runs the loop.
"""

import contextlib
import json
import os
import shutil
import sys

import tensorflow as tf

from tfllm.errors import ClusterError, ConfigError
from tfllm.models.stats import model_stats
from tfllm import tasks
from tfllm.training import (checkpoints, fine_tuning, inputs, monitoring, preemption,
                            run_config, steps)
from tfllm.training.strategy import is_chief

# What a collective raises on the survivors when a peer worker dies (TF aborts the
# collectives once the peer's connection drops or its heartbeats stop).
_PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.AbortedError,
                  tf.errors.CancelledError, tf.errors.DeadlineExceededError)


class Trainer:
    def __init__(self, model_config, config, strategy, manifest, report=print):
        self.config = config
        self.strategy = strategy
        self.report = report
        self.chief = is_chief(strategy)
        replicas = strategy.num_replicas_in_sync
        if config.global_batch_size % (replicas * config.grad_accum_steps):
            raise ConfigError(
                f"--global_batch_size={config.global_batch_size} is not divisible by "
                f"replicas ({replicas}) x --grad_accum_steps ({config.grad_accum_steps}).")
        self.task = tasks.for_manifest(manifest)
        self.task.check_model(model_config)
        self.task.check_training(config)
        self._run = run_config.resolved(model_config, config, strategy,
                                        inputs.input_pipelines(strategy))
        self._previous_run = run_config.write(config.model_dir, self._run) if self.chief else None
        self.model_config = model_config
        self.sequence_length = self.task.sequence_length
        with strategy.scope():
            self.model = self.task.build_model(model_config)
            self.groups = fine_tuning.prepare(self.model, config, model_config, report)
        self.optimizer = self.groups[0].optimizer
        if len(self.groups) > 1:
            self.encoder_optimizer = self.groups[1].optimizer
        # The data position in examples (not steps), so a resumed run may change its batch.
        self.examples_seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        optimizers = dict(zip(("optimizer", "encoder_optimizer"),
                              (g.optimizer for g in self.groups)))
        checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
        scratch_dir = None
        if not self.chief:  # collective saves: other workers write to a scratch dir
            scratch_dir = os.path.join(
                config.model_dir, f".worker-{strategy.cluster_resolver.task_id}", "checkpoints")
        self.checkpoints = checkpoints.Checkpoints(
            tf.train.Checkpoint(model=self.model, examples_seen=self.examples_seen,
                                **optimizers),
            scratch_dir or checkpoint_dir, config.keep_checkpoints, report,
            read_from=checkpoint_dir if scratch_dir else None)
        self._train_loop = steps.make_train_loop(
            strategy, self.model, self.task, self.groups, config.grad_accum_steps,
            config.clipnorm, config.jit_compile, self.examples_seen,
            config.global_batch_size)
        # Traced once: each evaluation only brings a fresh iterator of the same spec.
        self._eval_step = steps.make_eval_step(strategy, self.model, self.task)
        self._skipped = (inputs.corrupt_files_to_skip(config.data_dir, report)
                         if config.skip_corrupt_files else {})

    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def train(self):
        """Runs to `train_steps` (resuming from the newest intact checkpoint); returns a
        summary."""
        config = self.config
        restored = self.checkpoints.restore()
        multi_worker = preemption.multi_worker_handler(
            self.strategy, self.checkpoints.manager, self._exit_after_preemption)
        step, examples = self.step, self._examples_at_resume()
        if restored:
            self._report_resume(restored, step, examples)
        saved_at = step if restored else None  # the same on every worker (saves are collective)
        status, evaluation = "completed", {}
        with preemption.StopRequest().installed(enabled=multi_worker is None) as stop:
            iterator = inputs.train_iterator(self.strategy, config, examples, self._skipped,
                                             self.task)
            progress = monitoring.Progress(config, self.chief, self.optimizer, model_stats(
                self.model, self.sequence_length).training_flops_per_token, self.report)
            while step < config.train_steps and not stop.requested:
                num_steps = self._loop_length(step)
                with self._user_errors("train", step, multi_worker is not None):
                    result = self._one_loop(iterator, num_steps, multi_worker)
                step = self.step
                progress.step(step, result, num_steps)
                if config.eval_every and step % config.eval_every == 0:
                    evaluation = progress.evaluation(step, self.evaluate())
                if step % config.checkpoint_every == 0:
                    self.checkpoints.save(step)
                    saved_at = step
            if stop.requested:
                status = "stopped by signal"
        if saved_at != step:
            self.checkpoints.save(step)
        if status == "completed" and (not config.eval_every or step % config.eval_every):
            evaluation = progress.evaluation(step, self.evaluate())
        summary = {"status": status, "step": step, **progress.last, **evaluation,
                   "checkpoint": self.checkpoints.latest}
        if self._skipped:
            summary["skipped_corrupt_files"] = self._skipped
        if self.chief:
            summary.update(fine_tuning.save_outputs(self.model, config))
        self._finish(summary)
        return summary

    def evaluate(self):
        """Mean loss and accuracy per task loss on `eval_steps` batches of the eval split."""
        iterator = inputs.eval_iterator(self.strategy, self.config, self._skipped)
        totals = None
        for _ in range(self.config.eval_steps):
            with self._user_errors("eval", self.step):
                result = tf.nest.map_structure(lambda t: float(t.numpy()),
                                               self._eval_step(iterator))
            totals = result if totals is None else tf.nest.map_structure(
                lambda a, b: a + b, totals, result)
        loss_sums, correct, counts = totals
        metrics = {}
        for name in self.task.losses:
            metrics[f"eval/{name}_loss"] = loss_sums[name] / counts[name]
            if name in correct:  # regression has a loss and no accuracy
                metrics[f"eval/{name}_accuracy"] = correct[name] / counts[name]
        metrics.update(self.task.eval_metrics(metrics))
        return metrics

    # --- the loop's parts -----------------------------------------------------------

    def _loop_length(self, step):
        """Up to --steps_per_loop steps, ending at the next step that logs, evaluates,
        checkpoints or finishes."""
        config = self.config
        length = min(config.steps_per_loop, config.train_steps - step)
        for every in (config.log_every, config.eval_every, config.checkpoint_every):
            if every:
                length = min(length, every - step % every)
        return length

    def _one_loop(self, iterator, num_steps, multi_worker):
        num_steps = tf.constant(num_steps, tf.int32)  # a tensor: one trace for any length
        if multi_worker is None:
            return self._train_loop(iterator, num_steps)
        # Saves and exits when preempted. The handler counts calls, not steps; every
        # worker makes the same calls (loop lengths follow from the step), so the
        # workers still agree on the call to save after.
        return multi_worker.run(self._train_loop, iterator, num_steps)

    def _examples_at_resume(self):
        examples = int(self.examples_seen.numpy())
        if self.step and not examples:  # a checkpoint from before examples were counted
            previous = (self._previous_run or {}).get("train", {})
            examples = self.step * previous.get("global_batch_size",
                                                self.config.global_batch_size)
            self.examples_seen.assign(examples)
        return examples

    def _report_resume(self, restored, step, examples):
        self.report(f"resumed from {restored} at step {step} ({examples:,} examples seen)")
        changes = run_config.layout_changes(self._previous_run, self._run)
        if any(c.startswith("input_pipelines") for c in changes):
            self.report(f"resuming with {', '.join(changes)}: each worker now reads another "
                        "shard of the files, so the data position is approximate")
        elif changes:
            self.report(f"resuming with {', '.join(changes)}: the data position is restored "
                        f"in examples, so no example is skipped or repeated")

    @contextlib.contextmanager
    def _user_errors(self, split, step, multi_worker=False):
        """Turns what TF raises for a user-fixable cause into the user's error."""
        try:
            yield
        except tf.errors.DataLossError:
            raise inputs.corrupt_data_error(self.config.data_dir, split) from None
        except _PEER_FAILURES as error:
            if not multi_worker:
                raise
            latest = self.checkpoints.latest
            raise ClusterError(
                f"A worker of the multi-worker job stopped answering at step {step} "
                f"({type(error).__name__} in a collective); re-run every worker to "
                "resume from the last checkpoint" + (
                    f" ({latest})." if latest else
                    " (none was written yet: training starts over).")) from None
        except tf.errors.InvalidArgumentError as error:
            user_error = self.task.input_error(error.message, self.config.data_dir)
            if user_error is None:
                raise
            raise user_error from None

    def _exit_after_preemption(self):
        self._finish({"status": "preempted", "step": self.step,
                      "checkpoint": self.checkpoints.latest})
        sys.exit(0)

    def _finish(self, summary):
        if self.chief:
            with open(os.path.join(self.config.model_dir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=2, sort_keys=True)
        else:
            shutil.rmtree(os.path.dirname(self.checkpoints.directory), ignore_errors=True)
