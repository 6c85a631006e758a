"""The custom training loop: strategy-aware, with accumulation and global-norm clipping.

Why not `Model.fit`: on this stack it fails under MultiWorkerMirroredStrategy,
Keras's gradient accumulation fails under MirroredStrategy, and `clipnorm` clips
per replica before the cross-replica sum (see DESIGN.md). So, as Model Garden's
Orbit does, the trainer owns the loop and uses Keras models and optimizers.

One step, on every replica:
  1. count the loss normalisers (masked tokens, sequences, real tokens) of the
     replica's batch and all-reduce them, so every micro-batch loss is divided
     by the global count;
  2. run k micro-batches through an XLA-compilable function, summing gradients;
  3. all-reduce the summed gradients to get the true global gradient and its
     norm, and scale the local gradients by min(1, clipnorm / norm);
  4. `optimizer.apply_gradients`, which (Keras 3) sums the local gradients across
     replicas itself: the sum is exactly the clipped global gradient.
"""

import dataclasses
import json
import os
import shutil
import signal
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfllm.data import readers
from tfllm.errors import CheckpointError, ClusterError, ConfigError, InputError
from tfllm.models import lora
from tfllm.models.stats import model_stats
from tfllm.training import optimization, tasks
from tfllm.training.strategy import is_chief


# What a collective raises on the survivors when a peer worker dies (TF aborts the
# collectives once the peer's connection drops or its heartbeats stop).
_PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.AbortedError,
                  tf.errors.CancelledError, tf.errors.DeadlineExceededError)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    train_steps: int = 1000
    global_batch_size: int = 32
    grad_accum_steps: int = 1
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    lr_decay: str = "linear"
    weight_decay: float = 0.01
    clipnorm: float = 1.0
    jit_compile: bool = True
    seed: int = 0
    shuffle: bool = True
    deterministic: bool = False
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    eval_steps: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    peak_tflops: float = 0.0  # 0: measure a matmul peak at start for the MFU estimate
    skip_corrupt_files: bool = False  # train without truncated/corrupted shards (else: fail)
    # Fine-tuning.
    init_checkpoint: str = ""  # a tfllm model_dir (or checkpoint prefix) to start the backbone from
    lora_rank: int = 0  # >0: train only LoRA adapters (and the head)
    lora_alpha: float = 0.0  # 0: the rank
    lora_targets: str = "query,value"
    freeze_layers: int = 0  # freeze the embeddings and the first N transformer blocks
    encoder_lr_multiplier: float = 1.0  # <1: the backbone learns slower than the head


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


def write_run_config(model_dir, model_config, config, strategy):
    """Saves the resolved configs in `model_dir/config.json`; a model_dir belongs to
    one architecture, so resuming a different one is refused."""
    path = os.path.join(model_dir, "config.json")
    resolved = {"model": model_config.to_dict(), "train": dataclasses.asdict(config),
                "strategy": type(strategy).__name__,
                "replicas": strategy.num_replicas_in_sync}
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)["model"]
        if saved != resolved["model"]:
            changed = sorted(k for k in saved if saved.get(k) != resolved["model"].get(k))
            raise ConfigError(f"{model_dir} holds a model with a different architecture "
                              f"({', '.join(changed)} differ); use another --model_dir.")
    try:
        os.makedirs(model_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(resolved, f, indent=2, sort_keys=True)
    except OSError as error:
        raise ConfigError(f"Cannot write to --model_dir {model_dir}: {error.strerror}.") from None


_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                 "max_sequence_length", "family", "type_vocab_size")


def restore_backbone(backbone, init_checkpoint, model_config):
    """Loads the backbone of a pretrained tfllm model into `backbone` (heads are left)."""
    path = init_checkpoint
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                saved = json.load(f)["model"]
            current = model_config.to_dict()
            differ = [f"{k} {saved.get(k)} vs {current.get(k)}" for k in _SHAPE_FIELDS
                      if saved.get(k) != current.get(k)]
            if differ:
                raise ConfigError(f"--init_checkpoint {init_checkpoint} does not match the "
                                  f"model: {'; '.join(differ)}.")
        path = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    if not path:
        raise ConfigError(f"--init_checkpoint {init_checkpoint} holds no checkpoint.")
    try:
        tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone)).restore(
            path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ConfigError(f"--init_checkpoint {init_checkpoint} does not fit this model's "
                          f"backbone: {str(error).splitlines()[0]}") from None


class Trainer:
    def __init__(self, model_config, config, strategy, manifest, report=print):
        self.config = config
        self.strategy = strategy
        self.report = report
        self.chief = is_chief(strategy)
        replicas = strategy.num_replicas_in_sync
        per_step = replicas * config.grad_accum_steps
        if config.global_batch_size % per_step:
            raise ConfigError(
                f"--global_batch_size={config.global_batch_size} is not divisible by "
                f"replicas ({replicas}) x --grad_accum_steps ({config.grad_accum_steps}).")
        self.task = tasks.task_for(manifest, model_config)
        if self.chief:
            write_run_config(config.model_dir, model_config, config, strategy)
        self.model_config = model_config
        self.sequence_length = manifest["schema"]["input_ids"]["length"] - (
            1 if manifest["kind"] == "gpt" else 0)
        with strategy.scope():
            self.model = self.task.build_model(model_config)
            if config.init_checkpoint:
                restore_backbone(self.model.backbone, config.init_checkpoint, model_config)
            self._adapt(self.model)
            self.optimizer = optimization.create_optimizer(
                config.optimizer, config.learning_rate, config.warmup_steps,
                config.train_steps, config.lr_decay, config.weight_decay,
                loss_scale=model_config.dtype == "mixed_float16")
            self._variable_groups = self._split_encoder_variables(model_config)
            self.optimizer.build(self._variable_groups[0][1])
            if len(self._variable_groups) > 1:
                self.encoder_optimizer = optimization.create_optimizer(
                    config.optimizer, config.learning_rate * config.encoder_lr_multiplier,
                    config.warmup_steps, config.train_steps, config.lr_decay,
                    config.weight_decay)
                self.encoder_optimizer.build(self._variable_groups[1][1])
        optimizers = {"optimizer": self.optimizer}
        if len(self._variable_groups) > 1:
            optimizers["encoder_optimizer"] = self.encoder_optimizer
        self.checkpoint = tf.train.Checkpoint(model=self.model, **optimizers)
        self._checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
        if not self.chief:  # collective saves: other workers write to a scratch dir
            self._checkpoint_dir = os.path.join(
                config.model_dir, f".worker-{strategy.cluster_resolver.task_id}", "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self._checkpoint_dir,
                                                  max_to_keep=config.keep_checkpoints)
        self._train_step = self._make_train_step()
        self._stop_requested = False
        self._skipped = self._find_skipped_files() if config.skip_corrupt_files else {}

    def _find_skipped_files(self):
        """The corrupt shards to leave out, each reported; every shard of a split
        being corrupt is still an error."""
        skipped = {}
        for split in ("train", "eval"):
            files = readers.split_files(self.config.data_dir, split)
            bad = readers.corrupt_files(files)
            if len(bad) == len(files):
                raise InputError(f"Every {split} file of {self.config.data_dir} is corrupt: "
                                 + "; ".join(f"{p}: {r}" for p, r in bad.items()) + ".")
            for path, reason in bad.items():
                self.report(f"skipping corrupt {split} file {path}: {reason}")
            skipped.update(bad)
        return skipped

    def _corrupt_data_error(self, split):
        bad = readers.corrupt_files(readers.split_files(self.config.data_dir, split))
        where = "; ".join(f"{path}: {reason}" for path, reason in bad.items()) or (
            f"a {split} file of {self.config.data_dir}")
        return InputError(f"The {split} data is corrupt ({where}). Re-create it with "
                          "tfllm.preprocess, or pass --skip_corrupt_files to train without "
                          "the corrupt files.")

    def _split_encoder_variables(self, model_config):
        """[(indices, variables)] per optimizer: one group, or head then backbone when
        the backbone gets a different learning rate."""
        variables = self.model.trainable_variables
        everything = [(list(range(len(variables))), variables)]
        multiplier = self.config.encoder_lr_multiplier
        if multiplier == 1.0:
            return everything
        if not 0 < multiplier or model_config.dtype == "mixed_float16":
            raise ConfigError("--encoder_lr_multiplier must be positive, and cannot be combined "
                              "with mixed_float16 (one loss scale per optimizer).")
        backbone = {id(v) for v in self.model.backbone.trainable_variables}
        head = [i for i, v in enumerate(variables) if id(v) not in backbone]
        encoder = [i for i, v in enumerate(variables) if id(v) in backbone]
        return [(head, [variables[i] for i in head]),
                (encoder, [variables[i] for i in encoder])]

    def _adapt(self, model):
        """LoRA and layer freezing; reports trainable and frozen parameter counts."""
        config = self.config
        if config.lora_rank:
            lora.apply_lora(model.backbone, config.lora_rank, config.lora_alpha or None,
                            tuple(t.strip() for t in config.lora_targets.split(",")))
        if config.freeze_layers:
            blocks = model.backbone.transformer_layers
            if config.freeze_layers > len(blocks):
                raise ConfigError(f"--freeze_layers={config.freeze_layers} exceeds the model's "
                                  f"{len(blocks)} transformer blocks.")
            frozen = [model.backbone.token_embedding, model.backbone.position_embedding,
                      *blocks[:config.freeze_layers]]
            for layer in frozen:
                for variable in layer.weights:
                    variable.trainable = False
        count = lambda weights: sum(int(np.prod(v.shape)) for v in weights)  # noqa: E731
        self.report(f"parameters: {count(model.trainable_weights):,} trainable, "
                    f"{count(model.non_trainable_weights):,} frozen")

    # --- the step -----------------------------------------------------------------

    def _micro_step(self):
        model, task, optimizer = self.model, self.task, self.optimizer

        @tf.function(jit_compile=self.config.jit_compile)
        def micro_step(features, labels, global_counts):
            with tf.GradientTape() as tape:
                outputs = model(features, training=True)
                loss_sums, correct = task.sums(outputs, labels)
                loss = tf.add_n([loss_sums[n] / global_counts[n] for n in task.losses])
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            grads = [tf.convert_to_tensor(g) for g in grads]  # IndexedSlices -> dense
            return loss, grads, loss_sums, correct

        return micro_step

    def _make_train_step(self):
        strategy, task, optimizer = self.strategy, self.task, self.optimizer
        groups = self._variable_groups
        optimizers = [self.optimizer] + ([self.encoder_optimizer] if len(groups) > 1 else [])
        k, clipnorm = self.config.grad_accum_steps, self.config.clipnorm
        micro_step = self._micro_step()

        def replica_step(features, labels):
            context = tf.distribute.get_replica_context()
            global_counts = context.all_reduce(tf.distribute.ReduceOp.SUM, task.counts(labels))
            global_counts = {n: tf.maximum(c, 1.0) for n, c in global_counts.items()}
            split = lambda t: tf.reshape(t, tf.concat([[k, -1], tf.shape(t)[1:]], 0))  # noqa: E731
            features_k = tf.nest.map_structure(split, features)
            labels_k = tf.nest.map_structure(split, labels)
            accumulated, loss, sums, correct = None, 0.0, None, None
            for i in range(k):
                pick = lambda t, i=i: t[i]  # noqa: E731  (micro-batch i of the replica batch)
                loss_i, grads, sums_i, correct_i = micro_step(
                    tf.nest.map_structure(pick, features_k),
                    tf.nest.map_structure(pick, labels_k), global_counts)
                if accumulated is None:
                    accumulated, sums, correct = grads, sums_i, correct_i
                else:
                    accumulated = [a + g for a, g in zip(accumulated, grads)]
                    sums = {n: sums[n] + sums_i[n] for n in sums}
                    correct = {n: correct[n] + correct_i[n] for n in correct}
                loss += loss_i
            global_grads = context.all_reduce(tf.distribute.ReduceOp.SUM, accumulated)
            scale = optimizer.scale_loss(1.0)
            norm = tf.linalg.global_norm(global_grads) / scale
            factor = 1.0
            if clipnorm > 0:
                factor = tf.minimum(1.0, clipnorm / (norm + 1e-6))
            clipped = [g * factor for g in accumulated]
            for (indices, group), group_optimizer in zip(groups, optimizers):
                group_optimizer.apply_gradients(zip([clipped[i] for i in indices], group))
            tokens = task.tokens(features)
            return loss, norm, tokens, correct, global_counts

        @tf.function
        def train_step(iterator):
            features, labels = next(iterator)
            loss, norm, tokens, correct, counts = strategy.run(replica_step,
                                                               args=(features, labels))
            reduce = lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa: E731
            first = lambda v: strategy.experimental_local_results(v)[0]  # noqa: E731
            return {"loss": reduce(loss), "grad_norm": first(norm), "tokens": reduce(tokens),
                    "accuracy": {n: reduce(correct[n]) / first(counts[n]) for n in correct}}

        return train_step

    def _make_eval_step(self):
        strategy, task, model = self.strategy, self.task, self.model

        def replica_eval(features, labels):
            loss_sums, correct = task.sums(model(features, training=False), labels)
            return loss_sums, correct, task.counts(labels)

        @tf.function
        def eval_step(iterator):
            features, labels = next(iterator)
            results = strategy.run(replica_eval, args=(features, labels))
            return tf.nest.map_structure(
                lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), results)

        return eval_step

    # --- the loop -----------------------------------------------------------------

    def _train_iterator(self, start_step):
        """The training input, positioned after the `start_step` batches already used.

        Distributed iterators cannot be checkpointed here, but the input is a pure
        function of the seed, so skipping the consumed batches restores the exact
        position (reading is hundreds of times faster than training).
        """
        config = self.config
        return iter(self.strategy.distribute_datasets_from_function(
            lambda ctx: readers.make_dataset(
                config.data_dir, "train", ctx.get_per_replica_batch_size(
                    config.global_batch_size), input_context=ctx, shuffle=config.shuffle,
                seed=config.seed, exclude_files=self._skipped).skip(start_step)))

    def evaluate(self):
        """Mean loss and accuracy per task loss on `eval_steps` batches of the eval split."""
        config = self.config
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: readers.make_dataset(
                config.data_dir, "eval", ctx.get_per_replica_batch_size(
                    config.global_batch_size), input_context=ctx, shuffle=False, repeat=True,
                exclude_files=self._skipped))
        iterator, step = iter(dataset), self._make_eval_step()
        totals = None
        for _ in range(config.eval_steps):
            try:
                result = tf.nest.map_structure(lambda t: float(t.numpy()), step(iterator))
            except tf.errors.DataLossError:
                raise self._corrupt_data_error("eval") from None
            totals = result if totals is None else tf.nest.map_structure(
                lambda a, b: a + b, totals, result)
        loss_sums, correct, counts = totals
        metrics = {}
        for name in self.task.losses:
            metrics[f"eval/{name}_loss"] = loss_sums[name] / counts[name]
            metrics[f"eval/{name}_accuracy"] = correct[name] / counts[name]
        if "lm" in self.task.losses:
            metrics["eval/perplexity"] = float(np.exp(min(metrics["eval/lm_loss"], 50.0)))
        return metrics

    def _request_stop(self, signum, frame):
        del frame
        logging.warning("signal %d: saving a checkpoint and stopping", signum)
        self._stop_requested = True

    def _preemption_handler(self):
        """TF's coordinated handler for multi-worker jobs, where one worker stopping
        alone would leave the others blocked in a collective."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return None

        def exit_after_save():
            step = int(self.optimizer.iterations.numpy())
            self._finish({"status": "preempted", "step": step,
                          "checkpoint": self.manager.latest_checkpoint})
            sys.exit(0)

        return tf.distribute.experimental.PreemptionCheckpointHandler(
            self.strategy.cluster_resolver, self.manager,
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=exit_after_save))

    def _flops_per_token(self):
        return model_stats(self.model, self.sequence_length).training_flops_per_token

    def train(self):
        """Runs to `train_steps` (resuming from the latest checkpoint); returns a summary."""
        config = self.config
        restored = self.manager.restore_or_initialize()
        step = int(self.optimizer.iterations.numpy())
        if restored:
            self.report(f"resumed from {restored} at step {step}")
        iterator = self._train_iterator(step)
        preemption = self._preemption_handler()
        previous = signal.getsignal(signal.SIGTERM)
        if preemption is None:
            signal.signal(signal.SIGTERM, self._request_stop)
        writer = (tf.summary.create_file_writer(os.path.join(config.model_dir, "tensorboard"))
                  if self.chief else tf.summary.create_noop_writer())
        peak = config.peak_tflops * 1e12 or measure_peak_flops()
        flops_per_token = self._flops_per_token()
        window_start, window_examples, window_tokens = time.perf_counter(), 0, 0.0
        last, evaluation, status = {}, {}, "completed"
        try:
            while step < config.train_steps:
                try:
                    if preemption is None:
                        result = self._train_step(iterator)
                    else:  # saves on every worker, then exits, when any is preempted
                        result = preemption.run(self._train_step, iterator)
                except tf.errors.DataLossError:
                    raise self._corrupt_data_error("train") from None
                except _PEER_FAILURES as error:
                    if preemption is None:
                        raise
                    latest = self.manager.latest_checkpoint
                    raise ClusterError(
                        f"A worker of the multi-worker job stopped answering at step {step} "
                        f"({type(error).__name__} in a collective); re-run every worker to "
                        "resume from the last checkpoint" + (
                            f" ({latest})." if latest else
                            " (none was written yet: training starts over).")) from None
                except tf.errors.InvalidArgumentError as error:
                    if tasks.LABEL_OUT_OF_RANGE not in error.message:
                        raise
                    raise InputError(
                        f"{config.data_dir} has a {tasks.LABEL_OUT_OF_RANGE} "
                        f"({self.task.num_classes} labels in its manifest).") from None
                step = int(self.optimizer.iterations.numpy())
                window_examples += config.global_batch_size
                window_tokens += float(result["tokens"])
                if step % config.log_every == 0 or step == config.train_steps:
                    elapsed = time.perf_counter() - window_start
                    last = self._log(step, result, window_examples / elapsed,
                                     window_tokens / elapsed, flops_per_token, peak, writer)
                    window_start, window_examples, window_tokens = time.perf_counter(), 0, 0.0
                if config.eval_every and step % config.eval_every == 0:
                    evaluation = self._log_eval(step, writer)
                if step % config.checkpoint_every == 0:
                    self._save(step)
                if self._stop_requested:
                    status = "stopped by signal"
                    break
        finally:
            signal.signal(signal.SIGTERM, previous)
        self._save(step)
        if status == "completed" and (not config.eval_every or step % config.eval_every):
            evaluation = self._log_eval(step, writer)
        summary = {"status": status, "step": step, **last, **evaluation,
                   "checkpoint": self.manager.latest_checkpoint}
        if self._skipped:
            summary["skipped_corrupt_files"] = self._skipped
        if config.lora_rank and self.chief:
            lora.save_adapter(self.model, os.path.join(config.model_dir, "adapter.npz"))
            summary["merged_weights"] = lora.merged_weights_path(
                self.model, os.path.join(config.model_dir, "merged.weights.h5"))
        self._finish(summary)
        return summary

    def _save(self, step):
        """A checkpoint, or a clear error (disk full, directory gone) that leaves the
        previous checkpoints as they were and no half-written one beside them."""
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            shutil.rmtree(os.path.join(self._checkpoint_dir, f"ckpt-{step}_temp"),
                          ignore_errors=True)
            reason = getattr(error, "message", None) or str(error)
            raise CheckpointError(
                f"Cannot write a checkpoint to {self._checkpoint_dir} at step {step}: "
                f"{reason.rsplit(';', 1)[-1].split('[Op:')[0].strip()}. The previous "
                f"checkpoints are intact (latest: {self.manager.latest_checkpoint}); free "
                "space and re-run the same command to resume from it.") from None

    def _log(self, step, result, examples_per_second, tokens_per_second, flops_per_token,
             peak, writer):
        learning_rate = float(keras.ops.convert_to_numpy(
            self.optimizer.learning_rate))
        values = {"loss": float(result["loss"]), "learning_rate": learning_rate,
                  "grad_norm": float(result["grad_norm"]),
                  "examples_per_second": examples_per_second,
                  "tokens_per_second": tokens_per_second,
                  "mfu": tokens_per_second * flops_per_token / peak}
        values.update({f"{n}_accuracy": float(v) for n, v in result["accuracy"].items()})
        with writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"train/{name}", value)
        self.report(f"step {step:>6}/{self.config.train_steps}  loss {values['loss']:.4f}  "
                    f"lr {learning_rate:.2e}  grad_norm {values['grad_norm']:.3f}  "
                    f"{examples_per_second:,.1f} ex/s  {tokens_per_second:,.0f} tok/s  "
                    f"MFU {values['mfu']:.1%}")
        return values

    def _log_eval(self, step, writer):
        metrics = self.evaluate()
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        self.report(f"eval at step {step}: " + "  ".join(
            f"{name.split('/', 1)[1]} {value:.4f}" for name, value in metrics.items()))
        return metrics

    def _finish(self, summary):
        if self.chief:
            with open(os.path.join(self.config.model_dir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=2, sort_keys=True)
        else:
            shutil.rmtree(os.path.dirname(self._checkpoint_dir), ignore_errors=True)
