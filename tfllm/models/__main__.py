"""`python -m tfllm.models --preset bert_base`: architecture, parameters, FLOPs/token."""

from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.models import build_pretraining_model, config_flags
from tfllm.models.stats import describe, describe_unbuilt, llama_parameter_count, model_stats

config_flags.define_flags()
flags.DEFINE_integer("sequence_length", None,
                     "Length used for the attention FLOPs (default: max_sequence_length).")
flags.DEFINE_boolean("summary", False, "Also print Keras's layer-by-layer summary.")
FLAGS = flags.FLAGS
BUILD_LIMIT = 600_000_000  # parameters; larger decoders are counted from the config


def main(argv):
    config = config_flags.config_from_flags()
    length = FLAGS.sequence_length
    if length is not None and not 0 < length <= config.max_sequence_length:
        raise ConfigError(f"--sequence_length={FLAGS.sequence_length} must be between 1 and "
                          f"the model's max_sequence_length, {config.max_sequence_length}.")
    if config.family == "llama" and llama_parameter_count(config) > BUILD_LIMIT:
        print(describe_unbuilt(FLAGS.preset, config))
        return
    model = build_pretraining_model(config)
    if FLAGS.summary:
        model.summary(expand_nested=True)
    print(describe(FLAGS.preset, model, model_stats(model, FLAGS.sequence_length)))


if __name__ == "__main__":
    cli.run(main)
