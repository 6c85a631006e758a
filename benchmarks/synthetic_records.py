"""Random-token TFRecords in tfllm's format, with the manifest its reader needs: data of
any shape for `benchmarks.train` without a tokenizer or a corpus. Kept apart from the
benchmark's absl flags so that tests can import it next to other flag-defining modules."""

import json
import os

import apache_beam as beam
import numpy as np

from tfllm.data import schema
from tfllm.data.write import WriteTFRecords

BERT_SPECIAL_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
# Masked positions per BERT sequence (google-research/bert's 20 at sequence length 128).
MAX_PREDICTIONS = 20


def write(family, config, num_records, directory):
    """Random-token TFRecords in tfllm's format, with the manifest its reader needs."""
    seq, vocab = config.max_sequence_length, config.vocab_size
    features = schema.feature_lengths(family, seq)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(num_records):
        length = seq + 1 if family == "gpt" else seq
        row = {"input_ids": rng.integers(5, vocab, length).tolist(), "input_mask": [1] * length}
        if family == "bert":
            row.update(segment_ids=[0] * (seq // 2) + [1] * (seq - seq // 2),
                       next_sentence_labels=[int(rng.integers(2))])
        rows.append((f"r{i}", row))
    with beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create(rows) | WriteTFRecords(directory, "train", 1, features)
    manifest = {"kind": family, "schema": schema.to_manifest(features),
                "tokenizer": {"vocab_size": vocab, "special_ids": BERT_SPECIAL_IDS},
                # BERT rows are written unmasked: the reader masks them at this rate,
                # as it does data written with `--dynamic_masking`.
                "config": {"examples": {"masked_lm_prob": 0.15,
                                        "max_predictions_per_seq": MAX_PREDICTIONS}},
                "splits": {"train": {"files": ["train-00000-of-00001.tfrecord.gz"]},
                           "eval": {"files": ["train-00000-of-00001.tfrecord.gz"]}}}
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return manifest
