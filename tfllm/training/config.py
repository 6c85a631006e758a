"""The settings of one training run, validated where they are built.

Everything that can be checked without the model or the devices is checked
here, so a bad flag fails before any data is read; the checks that need the
strategy (batch split across replicas) or the model (layers to freeze) stay
with the code that has them.
"""

import dataclasses

from tfllm.errors import ConfigError

OPTIMIZERS = ("adamw", "lamb")
LR_DECAYS = ("linear", "cosine")
_AT_LEAST_ONE = ("train_steps", "global_batch_size", "grad_accum_steps", "steps_per_loop",
                 "log_every", "eval_steps", "checkpoint_every", "keep_checkpoints")
_NON_NEGATIVE = ("warmup_steps", "eval_every", "weight_decay", "clipnorm", "peak_tflops",
                 "lora_rank", "lora_alpha", "freeze_layers", "mlm_max_predictions")


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
    # Steps per host call (one tf.function loop); loops end at every logging,
    # evaluation and checkpoint step, so those fall on the same steps whatever N is.
    steps_per_loop: int = 1
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
    # BERT pretraining: >0 masks each training batch anew at this rate (dynamic masking,
    # also over statically masked data); evaluation keeps the masks the data was written with.
    mlm_mask_rate: float = 0.0
    mlm_max_predictions: int = 0  # masked positions per sequence; 0: the data's
    # Fine-tuning.
    init_checkpoint: str = ""  # a tfllm model_dir (or checkpoint prefix) to start the backbone from
    lora_rank: int = 0  # >0: train only LoRA adapters (and the head)
    lora_alpha: float = 0.0  # 0: the rank
    lora_targets: str = "query,value"
    freeze_layers: int = 0  # freeze the embeddings and the first N transformer blocks
    encoder_lr_multiplier: float = 1.0  # <1: the backbone learns slower than the head

    def __post_init__(self):
        problems = [f"--{name} must be at least 1 (got {getattr(self, name)})"
                    for name in _AT_LEAST_ONE if getattr(self, name) < 1]
        problems += [f"--{name} must not be negative (got {getattr(self, name)})"
                     for name in _NON_NEGATIVE if getattr(self, name) < 0]
        if not self.learning_rate > 0:
            problems.append(f"--learning_rate must be positive (got {self.learning_rate})")
        if not self.encoder_lr_multiplier > 0:
            problems.append("--encoder_lr_multiplier must be positive "
                            f"(got {self.encoder_lr_multiplier})")
        if not 0 <= self.mlm_mask_rate < 1:
            problems.append(f"--mlm_mask_rate must be in [0, 1) (got {self.mlm_mask_rate})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown --optimizer={self.optimizer!r} (choose "
                            f"{' or '.join(OPTIMIZERS)})")
        if self.lr_decay not in LR_DECAYS:
            problems.append(f"--lr_decay must be {' or '.join(LR_DECAYS)} "
                            f"(got {self.lr_decay!r})")
        if self.lora_rank and not [t for t in self.lora_targets.split(",") if t.strip()]:
            problems.append("--lora_rank needs at least one --lora_targets layer")
        if problems:
            raise ConfigError("Invalid training settings: " + "; ".join(problems) + ".")

    @property
    def lora_target_names(self):
        return tuple(t.strip() for t in self.lora_targets.split(",") if t.strip())
