"""`python -m tfllm.export --model_dir artifacts/classify_tiny --name bert_classifier`.

Writes `EXPORT_BASE/NAME/VERSION/`, a SavedModel TF Serving can load, with in-graph
tokenization; the version appears only once complete and verified.
"""

import os

from absl import flags

from tfllm import cli
from tfllm.data import readers
from tfllm.errors import ConfigError
from tfllm.serving.export import export_classifier
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A fine-tuned classifier written by tfllm.train.")
flags.DEFINE_string("name", None, "Model name under the export base.")
flags.DEFINE_string("export_base", "export", "TF Serving base directory.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
    if not FLAGS.model_dir or not FLAGS.name:
        raise ConfigError("--model_dir and --name are required.")
    model, manifest, tokenizer = load_trained(FLAGS.model_dir)
    if manifest["kind"] != "classify":
        raise ConfigError(f"{FLAGS.model_dir} holds a {manifest['kind']} model; this export "
                          "writes classifiers (the GPT generator export is not there yet).")
    data_dir = os.path.dirname(tokenizer.path)
    samples = _sample_texts(data_dir)
    path = export_classifier(model, tokenizer, manifest["labels"], FLAGS.export_base,
                             FLAGS.name, samples)
    print(f"exported {path} (signatures: serving_default, classify, token_ids)")


def _sample_texts(data_dir, count=4):
    """A few eval texts: the verification inputs and the warmup requests."""
    split = "eval" if readers.load_manifest(data_dir, "train")["splits"]["eval"]["files"] \
        else "train"
    return readers.split_texts(data_dir, split)[0][:count]


if __name__ == "__main__":
    cli.run(main)
