"""`python -m tfllm.evaluate --model_dir artifacts/classify_tiny [--data DIR] [--split eval]`.

Evaluates a trained model on a split and, in the same run and on the same
examples, the baselines that give its numbers meaning (both chosen by the data's
task); writes metrics.json and PNG plots and prints a table.
"""

import json
import os

from absl import flags

from tfllm import cli, tasks
from tfllm.data import readers
from tfllm.errors import ConfigError
from tfllm.evaluation import plots
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A directory written by tfllm.train.")
flags.DEFINE_string("data", "", "Data to evaluate on (default: the data it trained on).")
flags.DEFINE_string("split", "eval", "Split of --data.")
flags.DEFINE_integer("batch_size", 32, "Examples per batch.")
flags.DEFINE_integer("max_answer_length", 30, "QA: the longest answer, in word pieces.")
flags.DEFINE_string("output_dir", "", "Where metrics.json and plots go (default MODEL_DIR/eval).")
FLAGS = flags.FLAGS


def _table(results):
    lines = []
    for name, metrics in results.items():
        shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
        lines.append(f"  {name:<28}" + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    return "\n".join(lines)


def main(argv):
    if not FLAGS.model_dir:
        raise ConfigError("--model_dir is required.")
    if FLAGS.max_answer_length < 1:
        raise ConfigError(f"--max_answer_length must be at least 1; got "
                          f"{FLAGS.max_answer_length}.")
    model, train_manifest, _ = load_trained(FLAGS.model_dir, with_tokenizer=False)
    with open(os.path.join(FLAGS.model_dir, "config.json")) as f:
        trained_on = json.load(f).get("train", {}).get("data_dir")
    data_dir = FLAGS.data or trained_on
    if not data_dir:
        raise ConfigError(f"{FLAGS.model_dir} was converted from a published checkpoint and "
                          "has no data of its own: give --data (made by tfllm.preprocess "
                          f"--tokenizer={FLAGS.model_dir}).")
    manifest = readers.load_manifest(data_dir, FLAGS.split)
    if manifest.kind != train_manifest.kind:
        raise ConfigError(f"{data_dir} holds {manifest.kind} data but the model was trained "
                          f"on {train_manifest.kind} data.")
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.model_dir, "eval")
    os.makedirs(output_dir, exist_ok=True)
    task = tasks.for_manifest(manifest)
    results = task.evaluate(model, data_dir, FLAGS.split, FLAGS.batch_size,
                            max_answer_length=FLAGS.max_answer_length)
    pictures = task.plots(results, output_dir)
    curves = plots.training_curves_png(os.path.join(FLAGS.model_dir, "tensorboard"),
                                       os.path.join(output_dir, "training_curves.png"))
    if curves:
        pictures["training_curves"] = curves
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump({"data": data_dir, "split": FLAGS.split, "results": results,
                   "plots": pictures}, f, indent=2)
    print(f"{manifest.kind} evaluation on {data_dir} ({FLAGS.split}):")
    print(_table(results))
    print(f"metrics and plots in {output_dir}")

if __name__ == "__main__":
    cli.run(main)
