"""Random-token TFRecords in tfllm's format, with the manifest its reader needs: data of
any shape for `benchmarks.train` without a tokenizer or a corpus. Kept apart from the
benchmark's absl flags so that tests can import it next to other flag-defining modules."""

import dataclasses

import apache_beam as beam
import numpy as np

from tfllm import tasks
from tfllm.data import output
from tfllm.data.bert_examples import BertExampleConfig
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.write import WriteTFRecords

BERT_SPECIAL_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
# Masked positions per BERT sequence (google-research/bert's 20 at sequence length 128).
MAX_PREDICTIONS = 20


def write(family, config, num_records, directory):
    """Random-token TFRecords in tfllm's format, with the manifest its reader needs."""
    seq, vocab = config.max_sequence_length, config.vocab_size
    # BERT rows are written unmasked: the reader masks them at this rate, as it does data
    # written with `--dynamic_masking`.
    examples = (BertExampleConfig(seq, masked_lm_prob=0.15,
                                  max_predictions_per_seq=MAX_PREDICTIONS, static_masking=False)
                if family == "bert" else GptExampleConfig(seq))
    features = tasks.get(family)().feature_schema(examples)
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
    files = ["train-00000-of-00001.tfrecord.gz"]
    manifest = output.Manifest(
        kind=family, schema=features,
        tokenizer=output.TokenizerInfo(family, vocab, BERT_SPECIAL_IDS),
        config={"examples": dataclasses.asdict(examples)},
        splits={"train": output.Split(files, num_records),
                "eval": output.Split(files, num_records)}, directory=directory)
    output.write_manifest(directory, manifest)
    return manifest
