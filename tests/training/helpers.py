"""Tiny datasets and trainers for training tests."""

import dataclasses
import os

import apache_beam as beam
import numpy as np

from tfllm.data import output
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.write import WriteTFRecords
from tfllm.models import configs
from tfllm.tasks.causal_lm import CausalLanguageModeling
from tfllm.tasks.classification import Classification
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

VOCAB = 64
LENGTH = 16
GPT_TOKENIZER = output.TokenizerInfo("gpt", VOCAB, {"pad": 0, "unk": 1, "end_of_text": 2})


def write_gpt_data(directory, examples=256, seed=0, train_shards=2):
    """Synthetic token windows with learnable structure (each token follows its predecessor
    by +1 mod vocab, from a random start), some padded at the end."""
    rng = np.random.default_rng(seed)
    features = CausalLanguageModeling().feature_schema(GptExampleConfig(LENGTH))
    rows = []
    for i in range(examples):
        start = int(rng.integers(3, VOCAB))
        ids = [3 + (start + j) % (VOCAB - 3) for j in range(LENGTH + 1)]
        real = LENGTH + 1 if i % 4 else int(rng.integers(4, LENGTH))
        mask = [1] * real + [0] * (LENGTH + 1 - real)
        rows.append((f"k{i:05d}", {"input_ids": [t * m for t, m in zip(ids, mask)],
                                   "input_mask": mask}))
    files = {}
    for split, subset, shards in (("train", rows, train_shards), ("eval", rows[:64], 1)):
        with beam.Pipeline() as pipeline:
            _ = pipeline | beam.Create(subset) | WriteTFRecords(str(directory), split, shards,
                                                               features)
        files[split] = sorted(f for f in os.listdir(directory) if f.startswith(f"{split}-"))
    return _write_manifest(directory, output.Manifest(
        kind="gpt", schema=features, splits={s: output.Split(f, 0) for s, f in files.items()},
        tokenizer=GPT_TOKENIZER))


def _write_manifest(directory, manifest):
    directory = str(directory)
    manifest = dataclasses.replace(manifest, directory=directory)
    output.write_manifest(directory, manifest)
    return directory, manifest


def tiny_gpt_config(**overrides):
    return configs.override(configs.get_preset("gpt_tiny"), {
        "vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2,
        "max_sequence_length": LENGTH, "dropout": 0.0, **overrides})


def make_trainer(data_dir, manifest, model_dir, strategy, model_config=None, **train):
    settings = dict(jit_compile=False, log_every=1000, checkpoint_every=1000, eval_steps=2,
                    peak_tflops=1.0, learning_rate=1e-2, warmup_steps=0, global_batch_size=16)
    config = TrainConfig(data_dir=data_dir, model_dir=str(model_dir), **{**settings, **train})
    return Trainer(model_config or tiny_gpt_config(), config, strategy, manifest,
                   report=lambda line: None)


def write_classify_data(directory, examples=128, seed=0):
    """Sequences labelled 1 when their first token is even: a rule a model can learn."""
    rng = np.random.default_rng(seed)
    features = Classification().feature_schema(ClassifyExampleConfig(LENGTH))
    rows = []
    for i in range(examples):
        ids = rng.integers(3, VOCAB, LENGTH).tolist()
        rows.append((f"k{i:05d}", {"input_ids": ids, "input_mask": [1] * LENGTH,
                                   "segment_ids": [0] * LENGTH,
                                   "label_ids": [int(ids[0] % 2 == 0)], "text": [f"t{i}"],
                                   "text_pair": [""]}))
    for split, subset in (("train", rows), ("eval", rows[:32])):
        with beam.Pipeline() as pipeline:
            _ = pipeline | beam.Create(subset) | WriteTFRecords(str(directory), split, 1,
                                                               features)
    return _write_manifest(directory, output.Manifest(
        kind="classify", schema=features, labels=["odd", "even"],
        splits={s: output.Split([f"{s}-00000-of-00001.tfrecord.gz"], 0)
                for s in ("train", "eval")}, tokenizer=GPT_TOKENIZER))
