"""`python -m tfllm.train --flagfile configs/gpt_tiny.flags [--any_flag=value]`.

Pretrains BERT (MLM + NSP) or GPT (causal LM) on the TFRecords written by
`tfllm.preprocess`, under the tf.distribute strategy named by --strategy.
Re-running the same command resumes from the latest checkpoint in --model_dir.
"""

import dataclasses
import os

import keras
import tensorflow as tf
from absl import flags

from tfllm import cli
from tfllm.data import readers
from tfllm.errors import ConfigError
from tfllm.models import config_flags, configs
from tfllm.training import strategy as strategies
from tfllm.training.artifacts import pretrained_architecture
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

config_flags.define_flags()
flags.DEFINE_string("data_dir", None, "Output of tfllm.preprocess (has manifest.json).")
flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs, config and summary.")
flags.DEFINE_enum("precision", None, ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Keras dtype policy (overrides the preset's dtype).")
flags.DEFINE_string("strategy", "auto", "auto, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address, for --strategy=tpu.")
flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into N logical devices (mirrored).")
_TRAIN_FLAGS = {field.name: field for field in dataclasses.fields(TrainConfig)
                if field.name not in ("data_dir", "model_dir")}
for _name, _field in _TRAIN_FLAGS.items():
    _define = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
               bool: flags.DEFINE_boolean, str: flags.DEFINE_string}[_field.type]
    _define(_name, _field.default, f"Training: {_name.replace('_', ' ')}.")
FLAGS = flags.FLAGS


def model_config_from_flags(manifest):
    """The preset with flag overrides, or the --init_checkpoint model's architecture
    (fine-tuning keeps it); vocab size taken from the data unless set or pretrained."""
    pretrained = pretrained_architecture(FLAGS.init_checkpoint)
    config = config_flags.config_from_flags(base=pretrained)
    if pretrained is not None and FLAGS["preset"].present:
        print(f"architecture from --init_checkpoint {FLAGS.init_checkpoint} "
              f"(--preset={FLAGS.preset} is not used)")
    if FLAGS["vocab_size"].value is None and pretrained is None:
        config = configs.override(config, {"vocab_size": manifest.tokenizer.vocab_size})
    if FLAGS.precision:
        config = configs.override(config, {"dtype": FLAGS.precision})
    return config


def main(argv):
    for name in ("data_dir", "model_dir"):
        if not FLAGS[name].value:
            raise ConfigError(f"--{name} is required.")
    # The strategy flags are checked (and the devices split) before anything reads data.
    strategy = strategies.create_strategy(FLAGS.strategy, FLAGS.tpu, FLAGS.cpu_replicas)
    manifest = readers.load_manifest(FLAGS.data_dir, "train")
    model_config = model_config_from_flags(manifest)
    train_config = TrainConfig(data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir,
                               **{name: FLAGS[name].value for name in _TRAIN_FLAGS})
    if train_config.deterministic:
        keras.utils.set_random_seed(train_config.seed)
        tf.config.experimental.enable_op_determinism()
    trainer = Trainer(model_config, train_config, strategy, manifest)
    print(f"training {FLAGS.preset} ({model_config.family}) on {FLAGS.data_dir} with "
          f"{type(strategy).__name__} x{strategy.num_replicas_in_sync}, global batch "
          f"{train_config.global_batch_size} = replicas x {train_config.grad_accum_steps} "
          "micro-batches")
    summary = trainer.train()
    print(f"{summary['status']} at step {summary['step']}; summary in "
          f"{os.path.join(FLAGS.model_dir, 'summary.json')}")


if __name__ == "__main__":
    cli.run(main)
