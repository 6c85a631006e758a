"""Sentence-pair tasks learned from real text Debian ships (WordNet's usage examples):
regression from GLUE's STS-B TSV layout and pair classification from a CSV, each
against its baselines on the same held-out split, then exported and checked."""

import json
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from tfllm import tasks
from tfllm.data import job, task_corpora
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.sources import SourceConfig
from tfllm.models import configs
from tfllm.training.artifacts import load_trained
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

pytestmark = pytest.mark.skipif(not os.path.exists(f"{task_corpora.WORDNET}/data.noun"),
                                reason="Debian's wordnet-base is installed by setup.sh")
EXAMPLES = 3000


@pytest.fixture(scope="module")
def examples():
    return task_corpora.wordnet_examples()[:EXAMPLES]


def prepare_and_train(tmp_path, kind, source, steps, length=48, examples=None):
    config = job.JobConfig(
        kind=kind, output_dir=str(tmp_path / "data"), source=source,
        filters=filter_config_from_overrides({}, ["all"]), scrub_pii=False,
        dedup=job.DedupConfig(lines=False, near=False),
        examples=examples or ClassifyExampleConfig(length),
        vocab_size=1000, num_shards=1, eval_fraction=0.15)
    manifest = job.run(config, report=lambda line: None)
    model_config = configs.override(configs.get_preset("bert_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size, "max_sequence_length": length})
    keras.utils.set_random_seed(0)
    model_dir = str(tmp_path / "model")
    Trainer(model_config, TrainConfig(
        data_dir=config.output_dir, model_dir=model_dir, train_steps=steps,
        global_batch_size=32, learning_rate=2e-3, warmup_steps=50, eval_steps=1,
        jit_compile=False, peak_tflops=1.0, log_every=10_000, checkpoint_every=10_000),
        tf.distribute.OneDeviceStrategy("/cpu:0"), manifest, report=lambda line: None).train()
    model, _, _ = load_trained(model_dir, with_tokenizer=False)
    return config.output_dir, manifest, model, model_dir


def test_similarity_regression_beats_the_mean_and_tfidf_ridge(tmp_path, examples):
    path = str(tmp_path / "similarity.tsv")
    task_corpora.write_similarity_tsv(path, task_corpora.similarity_rows(examples))
    source = SourceConfig(patterns=(path,), format="tsv", text_field="sentence1",
                          text_pair_field="sentence2", label_field="score", label_type="float")
    data_dir, manifest, model, model_dir = prepare_and_train(tmp_path, "regress", source, 400)
    results = tasks.for_manifest(manifest).evaluate(model, data_dir, "eval", 32)
    model_metrics = results["model"]
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items() if m != "scatter"}
                      for k, r in results.items()}))
    assert model_metrics["examples"] >= 320
    assert model_metrics["mse"] < results["mean"]["mse"]
    assert model_metrics["mse"] < results["tfidf_ridge_regression"]["mse"]
    assert model_metrics["pearson"] > results["tfidf_ridge_regression"]["pearson"]

    # Exported with text and text_pair in, a score out, verified in a fresh process.
    result = subprocess.run(
        [sys.executable, "-m", "tfllm.export", f"--model_dir={model_dir}", "--name=sts",
         f"--export_base={tmp_path / 'export'}"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = tf.saved_model.load(str(tmp_path / "export" / "sts" / "1"))
    first, second, _ = task_corpora.similarity_rows(examples[:4])[0]
    score = loaded.signatures["serving_default"](text=tf.constant([first]),
                                                 text_pair=tf.constant([second]))["score"]
    assert score.shape == (1,)


def test_paraphrase_pairs_beat_majority_and_tfidf_logistic_regression(tmp_path, examples):
    path = str(tmp_path / "paraphrase.csv")
    task_corpora.write_paraphrase_csv(path, task_corpora.paraphrase_rows(examples))
    source = SourceConfig(patterns=(path,), format="csv", text_field="sentence1",
                          text_pair_field="sentence2", label_field="label")
    data_dir, manifest, model, _ = prepare_and_train(tmp_path, "classify", source, 600)
    assert manifest.labels == ["different", "paraphrase"]
    results = tasks.for_manifest(manifest).evaluate(model, data_dir, "eval", 32)
    print(json.dumps({k: round(r["accuracy"], 4) for k, r in results.items()}))
    assert sum(results["model"]["confusion_matrix"][0]) + \
        sum(results["model"]["confusion_matrix"][1]) >= 320
    assert results["model"]["accuracy"] > results["majority_class"]["accuracy"]
    assert results["model"]["accuracy"] > results["tfidf_logistic_regression"]["accuracy"]
