"""The compiled training and evaluation steps.

One training step, on every replica:
  1. count the loss normalisers (masked tokens, sequences, real tokens) of the
     replica's batch and all-reduce them, so every micro-batch loss is divided
     by the global count;
  2. run k micro-batches through an XLA-compilable function, summing gradients;
  3. all-reduce the summed gradients to get the true global gradient and its
     norm, and scale the local gradients by min(1, clipnorm / norm);
  4. `optimizer.apply_gradients`, which (Keras 3) sums the local gradients across
     replicas itself: the sum is exactly the clipped global gradient.

Steps run in loops of up to --steps_per_loop inside one `tf.function` (Orbit's
host loop): one host call, and one input-to-device hand-off, per loop instead of
per step, which is what dominates on TPUs and for small models.
"""

import tensorflow as tf


def _counted(task, labels):
    """The task's counts, and labels that are only read once the counts (and the label
    checks they carry) ran: a bad label then fails the check, never the loss op first."""
    counts = task.counts(labels)
    with tf.control_dependencies(list(counts.values())):
        return counts, tf.nest.map_structure(tf.identity, labels)


def _micro_step(model, task, optimizer, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def micro_step(features, labels, global_counts):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            loss_sums, correct = task.sums(outputs, labels)
            loss = tf.add_n([loss_sums[n] / global_counts[n] for n in task.losses])
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        # IndexedSlices -> dense; zeros for weights the task leaves (a tagger, BERT's pooler).
        grads = [tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, model.trainable_variables)]
        return loss, grads, loss_sums, correct

    return micro_step


def make_train_loop(strategy, model, task, groups, grad_accum_steps, clipnorm, jit_compile,
                    examples_seen, global_batch_size):
    """A `tf.function(iterator, num_steps)` running `num_steps` optimizer steps (and
    counting their examples in `examples_seen`); returns the last step's summed loss,
    pre-clip global gradient norm and accuracy per task loss, and the tokens of all
    the loop's steps."""
    k = grad_accum_steps
    scaler = groups[0].optimizer  # holds the loss scale under mixed_float16
    micro_step = _micro_step(model, task, scaler, jit_compile)

    def replica_step(features, labels):
        context = tf.distribute.get_replica_context()
        counts, labels = _counted(task, labels)
        global_counts = context.all_reduce(tf.distribute.ReduceOp.SUM, counts)
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
        norm = tf.linalg.global_norm(global_grads) / scaler.scale_loss(1.0)
        factor = 1.0
        if clipnorm > 0:
            factor = tf.minimum(1.0, clipnorm / (norm + 1e-6))
        clipped = [g * factor for g in accumulated]
        for group in groups:
            group.optimizer.apply_gradients(
                zip([clipped[i] for i in group.indices], group.variables))
        return loss, norm, task.tokens(features), correct, global_counts

    if jit_compile and strategy.num_replicas_in_sync == 1:
        # One replica: XLA takes the whole step, clipping and optimizer update included.
        # With several, XLA refuses the CPU's ring all-reduce ("Only compiling
        # NCCL/auto collective is supported"), so only the micro-steps are compiled
        # (TPUStrategy compiles everything itself).
        replica_step = tf.function(replica_step, jit_compile=True)

    def train_step(iterator):
        features, labels = next(iterator)
        loss, norm, tokens, correct, counts = strategy.run(replica_step,
                                                           args=(features, labels))
        examples_seen.assign_add(global_batch_size)
        reduce = lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa: E731
        first = lambda v: strategy.experimental_local_results(v)[0]  # noqa: E731
        return {"loss": reduce(loss), "grad_norm": first(norm), "tokens": reduce(tokens),
                "accuracy": {n: reduce(correct[n]) / first(counts[n]) for n in correct}}

    @tf.function
    def train_loop(iterator, num_steps):
        result = train_step(iterator)
        tokens = result["tokens"]
        for _ in tf.range(num_steps - 1):
            result = train_step(iterator)
            tokens += result["tokens"]
        return {**result, "tokens": tokens}

    return train_loop


def make_eval_step(strategy, model, task):
    """A `tf.function(iterator)` returning the global (loss sums, correct, counts)."""

    def replica_eval(features, labels):
        counts, labels = _counted(task, labels)
        loss_sums, correct = task.sums(model(features, training=False), labels)
        return loss_sums, correct, counts

    @tf.function
    def eval_step(iterator):
        features, labels = next(iterator)
        results = strategy.run(replica_eval, args=(features, labels))
        return tf.nest.map_structure(
            lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), results)

    return eval_step
