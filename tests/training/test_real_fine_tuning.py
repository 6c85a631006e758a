"""Fine-tuning a classifier on a small real sample (two fortune categories) beats the
majority baseline on held-out quotes."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfllm.data import job, readers
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.sources import SourceConfig
from tfllm.evaluation.baselines import majority_class
from tfllm.models import configs
from tfllm.training.artifacts import load_trained
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

FORTUNES = "/usr/share/games/fortunes"
CATEGORIES = ("startrek", "zippy")  # 227 and 548 quotes


@pytest.mark.skipif(not os.path.exists(f"{FORTUNES}/zippy"),
                    reason="Debian's fortunes package is installed by setup.sh")
def test_fine_tuned_classifier_beats_the_majority_baseline(tmp_path):
    config = job.JobConfig(
        kind="classify", output_dir=str(tmp_path / "data"),
        source=SourceConfig(patterns=tuple(f"{FORTUNES}/{c}" for c in CATEGORIES),
                            split="delimiter", label_from_filename=True),
        filters=filter_config_from_overrides(
            {"min_words": "3", "min_stop_words": "0"},
            ["curly_brace", "top_ngrams", "c4_lines", "fineweb"]),
        dedup=job.DedupConfig(lines=False), examples=ClassifyExampleConfig(48),
        vocab_size=600, num_shards=1, eval_fraction=0.2)
    manifest = job.run(config, report=lambda line: None)
    model_config = configs.override(configs.get_preset("bert_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size})
    keras.utils.set_random_seed(0)
    Trainer(model_config, TrainConfig(
        data_dir=config.output_dir, model_dir=str(tmp_path / "model"), train_steps=120,
        global_batch_size=32, learning_rate=2e-3, warmup_steps=10, eval_steps=1,
        jit_compile=False, peak_tflops=1.0, log_every=1000, checkpoint_every=1000),
        tf.distribute.OneDeviceStrategy("/cpu:0"), manifest, report=lambda line: None).train()
    model, _, _ = load_trained(str(tmp_path / "model"), with_tokenizer=False)
    labels, predictions = [], []
    for features, batch in readers.make_dataset(config.output_dir, "eval", 16, shuffle=False,
                                                repeat=False):
        predictions.extend(np.argmax(model(features, training=False), -1).tolist())
        labels.extend(batch["labels"].numpy().tolist())
    train_labels = [int(b["labels"][i]) for _, b in readers.make_dataset(
        config.output_dir, "train", 16, shuffle=False, repeat=False) for i in range(16)]
    majority = np.mean(majority_class(train_labels, labels) == np.array(labels))
    accuracy = np.mean(np.array(predictions) == np.array(labels))
    assert len(labels) >= 96
    assert accuracy > majority + 0.1, (accuracy, majority)
