"""Optimizers and learning-rate schedules (BERT/GPT recipes on Keras optimizers)."""

import keras

from tfllm.errors import ConfigError

# Not decayed: LayerNorm scales and offsets, and every bias (BERT, GPT-2 recipes).
NO_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="tfllm")
class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then linear or cosine decay to
    `peak * end_fraction` at `total_steps`. Steps are optimizer steps."""

    def __init__(self, peak, warmup_steps, total_steps, decay="linear", end_fraction=0.0):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.decay = decay
        self.end_fraction = end_fraction

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        decay_steps = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        progress = ops.clip((step - warmup) / decay_steps, 0.0, 1.0)
        if self.decay == "cosine":
            shape = 0.5 * (1.0 + ops.cos(3.141592653589793 * progress))
        else:
            shape = 1.0 - progress
        decayed = self.peak * (self.end_fraction + (1.0 - self.end_fraction) * shape)
        warming = self.peak * ops.minimum(step + 1.0, warmup) / warmup
        return ops.where(step < warmup, warming, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "decay": self.decay,
                "end_fraction": self.end_fraction}


def create_optimizer(name, learning_rate, warmup_steps, total_steps, decay="linear",
                     weight_decay=0.01, beta_2=0.999, epsilon=1e-6, loss_scale=False):
    """AdamW (or LAMB for large batches) with decay excluded from norms and biases."""
    if decay not in ("linear", "cosine"):
        raise ConfigError(f"--lr_decay must be linear or cosine; got {decay!r}.")
    if learning_rate <= 0 or total_steps < 1 or warmup_steps < 0:
        raise ConfigError("--learning_rate must be positive, --train_steps at least 1 and "
                          "--warmup_steps non-negative.")
    schedule = WarmupThenDecay(learning_rate, warmup_steps, total_steps, decay)
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay,
                                           beta_2=beta_2, epsilon=epsilon)
    elif name == "lamb":
        optimizer = keras.optimizers.Lamb(schedule, beta_2=beta_2, epsilon=epsilon,
                                          weight_decay=weight_decay)
    else:
        raise ConfigError(f"Unknown --optimizer={name!r}; choose adamw or lamb.")
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
