"""`python -m pipelines.gpt_pretrain --flagfile configs/pipeline_gpt.flags`.

corpus -> GPT data -> GPT pretraining -> evaluation -> infra validation -> push as
`gpt_generator`.
"""

from absl import flags

from pipelines.common import read_flagfile, run_and_report
from tfllm import cli
from tfllm.components import (
    Evaluator,
    ExampleGen,
    ExampleValidator,
    InfraValidator,
    Pipeline,
    Pusher,
    StatisticsGen,
    Trainer,
)

NAME = "gpt_generator"
REQUESTS = ["Computers are", "Work is"]


def create_pipeline(root, destination, data, pretrain, metric="perplexity", threshold=None,
                    baseline=None, min_examples=100, export_flags=(), beam_args=(), gates=()):
    examples = ExampleGen(data, beam_args)
    statistics = StatisticsGen(examples.outputs["examples"])
    validated = ExampleValidator(statistics.outputs["statistics"], examples.outputs["examples"],
                                 {"train": min_examples, "eval": 1})
    trainer = Trainer(examples.outputs["examples"], pretrain,
                      anomalies=validated.outputs["anomalies"])
    evaluator = Evaluator(trainer.outputs["model"], metric, threshold, baseline,
                          push_name=NAME, gates=gates)
    infra = InfraValidator(trainer.outputs["model"], NAME, REQUESTS, export_flags)
    pusher = Pusher(evaluator.outputs["evaluation"], infra.outputs["infra_blessing"],
                    destination)
    return Pipeline("gpt_pretrain", root, [pusher])


flags.DEFINE_string("pipeline_root", "artifacts/pipelines/gpt_pretrain",
                    "Artifacts and the lineage store.")
flags.DEFINE_string("push_destination", "export", "TF Serving base directory.")
flags.DEFINE_string("data_flagfile", "configs/data_gpt.flags", "ExampleGen flags.")
flags.DEFINE_string("pretrain_flagfile", "configs/gpt_tiny.flags", "Pretraining flags.")
flags.DEFINE_multi_string("data_arg", [], "Extra preprocessing flag (repeat).")
flags.DEFINE_multi_string("pretrain_arg", [], "Extra pretraining flag (repeat).")
flags.DEFINE_float("max_perplexity", None, "Evaluator: absolute perplexity threshold.")
flags.DEFINE_string("baseline", "", "Evaluator: a baseline to beat, e.g. bigram ('' none).")
flags.DEFINE_multi_string("gate", [], "Evaluator: a quality gate the model must pass, e.g. "
                          "'perplexity <= 0.75 * bigram' (repeat; see tfllm/evaluation/gates.py).")
flags.DEFINE_integer("max_new_tokens", 32, "Tokens the exported generator's default makes.")
flags.DEFINE_integer("min_examples", 100, "ExampleValidator: fewest train examples.")
flags.DEFINE_multi_string("beam_arg", [], "Beam pipeline option for the data job.")
FLAGS = flags.FLAGS


def main(argv):
    pipeline = create_pipeline(
        FLAGS.pipeline_root, FLAGS.push_destination,
        read_flagfile(FLAGS.data_flagfile, *FLAGS.data_arg),
        read_flagfile(FLAGS.pretrain_flagfile, *FLAGS.pretrain_arg),
        threshold=FLAGS.max_perplexity, baseline=FLAGS.baseline or None,
        min_examples=FLAGS.min_examples, gates=FLAGS.gate,
        export_flags=[f"--max_new_tokens={FLAGS.max_new_tokens}"], beam_args=FLAGS.beam_arg)
    run_and_report(pipeline)


if __name__ == "__main__":
    cli.run(main)
