"""`tfllm.evaluate` on a fine-tuned classifier and a GPT model, as real processes."""

import json
import os
import subprocess
import sys

import keras
import tensorflow as tf

from tests.training.helpers import make_trainer, write_classify_data, write_gpt_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _evaluate(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "tfllm.evaluate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_classifier_evaluation_beats_the_majority_baseline(tmp_path):
    data = write_classify_data(tmp_path / "data", examples=256)
    keras.utils.set_random_seed(0)
    make_trainer(*data, tmp_path / "model", tf.distribute.OneDeviceStrategy("/cpu:0"),
                 train_steps=150, log_every=10).train()
    result = _evaluate(f"--model_dir={tmp_path / 'model'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "majority_class" in result.stdout and "tfidf_logistic_regression" in result.stdout
    metrics = json.load(open(tmp_path / "model" / "eval" / "metrics.json"))["results"]
    assert metrics["model"]["accuracy"] > metrics["majority_class"]["accuracy"] + 0.15
    assert sum(map(sum, metrics["model"]["confusion_matrix"])) == 32  # the whole eval split
    assert os.path.getsize(tmp_path / "model" / "eval" / "confusion_matrix.png") > 1000
    assert os.path.getsize(tmp_path / "model" / "eval" / "training_curves.png") > 1000

    gpt_data = write_gpt_data(tmp_path / "gpt")
    result = _evaluate(f"--model_dir={tmp_path / 'model'}", f"--data={gpt_data[0]}")
    assert result.returncode == 2
    assert "holds gpt data but the model was trained on classify data" in " ".join(
        result.stderr.split())


def test_language_model_evaluation_reports_the_bigram_baseline(tmp_path):
    data = write_gpt_data(tmp_path / "data")
    make_trainer(*data, tmp_path / "model", tf.distribute.OneDeviceStrategy("/cpu:0"),
                 train_steps=20).train()
    result = _evaluate(f"--model_dir={tmp_path / 'model'}", "--batch_size=8")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.load(open(tmp_path / "model" / "eval" / "metrics.json"))["results"]
    # The synthetic stream is perfectly predictable from the previous token.
    assert metrics["bigram"]["perplexity"] < 1.5
    assert metrics["model"]["perplexity"] > 1.0
