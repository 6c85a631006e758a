"""The task registry: every kind has one home, and a new kind needs no other module.

`SequenceLength`, a toy kind defined only here (how many words a text has), is
installed the way a user's package installs one (an entry point in the `tfllm.tasks`
group) and goes through every command: preprocess -> train -> evaluate -> export ->
serve, with no change to tfllm.
"""

import json
import os
import random
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from tfllm import tasks
from tfllm.client import RestClient
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.tokenize import TokenizeDocuments
from tfllm.export.modules import TaskModule
from tfllm.models import build_backbone
from tfllm.models.classifier import SequenceClassifier
from tfllm.serving.process import ServerProcess
from tfllm.tasks.base import Task, encoder_features, encoder_inputs, read_split
from tfllm.text.packing import pack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


class _LengthExamples(beam.DoFn):
    def __init__(self, sequence_length, special):
        self._length, self._special = sequence_length, special

    def process(self, element):
        document, tokens = element
        ids, mask, segment_ids = pack([tokens], self._length, self._special)
        yield document.doc_id, {"input_ids": ids, "input_mask": mask,
                                "segment_ids": segment_ids,
                                "words": [float(len(document.text.split()))],
                                "text": [document.text]}


class _MakeLengthExamples(beam.PTransform):
    def __init__(self, sequence_length, tokenizer_path, special):
        super().__init__()
        self._args = sequence_length, tokenizer_path, special

    def expand(self, documents):
        length, path, special = self._args
        return (documents | TokenizeDocuments(path)
                | beam.ParDo(_LengthExamples(length, special)))


@tasks.register
class SequenceLength(Task):
    """Regression of a text's word count: squared error over the number of texts."""

    kind = "seq_length"
    losses = ("mse",)
    examples_config = ClassifyExampleConfig

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return _MakeLengthExamples(examples.sequence_length, tokenizer.path,
                                   tokenizer.special_ids)

    def feature_schema(self, examples):
        return {**encoder_features(examples.sequence_length), "words": ("float32", 1),
                "text": ("string", 1)}

    def inputs(self, parsed, masker=None):
        return encoder_inputs(parsed), {"words": parsed["words"][:, 0]}

    def build_model(self, config):
        return SequenceClassifier(build_backbone(config), 1)

    def counts(self, labels):
        return {"mse": tf.cast(tf.shape(labels["words"])[0], tf.float32)}

    def sums(self, outputs, labels):
        error = tf.cast(outputs[:, 0], tf.float32) - labels["words"]
        return {"mse": tf.reduce_sum(tf.square(error))}, {}

    def evaluate(self, model, data_dir, split, batch_size, **options):
        targets, predictions = [], []
        for features, labels in self.batches(data_dir, split, batch_size):
            predictions += model(features, training=False).numpy()[:, 0].tolist()
            targets += labels["words"].numpy().tolist()
        train = [label for _, labels in self.batches(data_dir, "train", batch_size)
                 for label in labels["words"].numpy()]
        targets = np.array(targets)
        return {"model": {"mse": float(np.mean((np.array(predictions) - targets) ** 2))},
                "train_mean": {"mse": float(np.mean((np.mean(train) - targets) ** 2))}}

    def serving_module(self, model, tokenizer, **options):
        return TaskModule(model, tokenizer)

    def sample_inputs(self, data_dir, count=4):
        spec = {"text": tf.io.FixedLenFeature([1], tf.string)}
        batch = next(read_split(data_dir, "eval", spec))
        return [text.decode() for text in batch["text"][:count, 0]]


def _installed(tmp_path):
    """An environment where `seq_length` is installed as a package's entry point."""
    site = tmp_path / "site"
    info = site / "tfllm_toy_task-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tfllm-toy-task\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[{tasks.ENTRY_POINTS}]\nseq_length = tests.test_task_registry:SequenceLength\n")
    path = os.pathsep.join([str(site), REPO, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(module, args, env):
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_kind_defined_outside_tfllm_goes_through_every_command(tmp_path):
    rng = random.Random(0)
    with open(tmp_path / "texts.jsonl", "w") as f:
        for i in range(400):
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
            f.write(json.dumps({"text": f"{' '.join(words)} {i}"}) + "\n")
    env = _installed(tmp_path)
    data, model = str(tmp_path / "data"), str(tmp_path / "model")
    _run("tfllm.preprocess", [
        "--kind=seq_length", f"--input={tmp_path / 'texts.jsonl'}", "--input_format=jsonl",
        f"--output_dir={data}", "--disable_filters=all", "--noscrub_pii",
        "--nodedup_lines", "--nonear_dedup", "--vocab_size=120", "--sequence_length=16",
        "--num_shards=1", "--eval_fraction=0.2"], env)
    _run("tfllm.train", [
        f"--data_dir={data}", f"--model_dir={model}", "--preset=bert_tiny",
        "--hidden_size=32", "--intermediate_size=64", "--num_layers=1", "--dropout=0",
        "--max_sequence_length=16", "--global_batch_size=32", "--train_steps=300",
        "--learning_rate=3e-3", "--warmup_steps=20", "--eval_every=0", "--log_every=100",
        "--nojit_compile", "--peak_tflops=1"], env)
    printed = _run("tfllm.evaluate", [f"--model_dir={model}"], env)
    assert "seq_length evaluation" in printed
    with open(os.path.join(model, "eval", "metrics.json")) as f:
        results = json.load(f)["results"]
    print(json.dumps(results))
    assert results["model"]["mse"] < 0.5 * results["train_mean"]["mse"]
    _run("tfllm.export", [f"--model_dir={model}", "--name=words",
                          f"--export_base={tmp_path / 'export'}"], env)

    server = ServerProcess(f"--model_base_path={tmp_path / 'export' / 'words'}",
                           "--model_name=words")
    try:
        texts = ["alpha beta", "alpha beta gamma delta epsilon zeta eta theta iota kappa"]
        scores = RestClient(f"127.0.0.1:{server.rest_port}").predict(
            "words", {"text": texts})["score"]
    finally:
        server.stop()
    assert scores[0] < scores[1]  # served from the SavedModel alone, no task code


def test_unknown_kinds_are_refused_naming_the_known_ones():
    with pytest.raises(tasks.ConfigError, match="Unknown task kind 'chat'; expected one of "
                                                "bert, gpt, classify, regress, tag, qa"):
        tasks.get("chat")


def test_no_kind_is_decided_outside_the_tasks():
    """A branch on the kind belongs in the kind's task (tfllm/tasks/)."""
    found = subprocess.run(["grep", "-rn", "kind ==", os.path.join(REPO, "tfllm")],
                           capture_output=True, text=True).stdout.splitlines()
    assert [line for line in found if f"{os.sep}tfllm{os.sep}tasks{os.sep}" not in line] == []
