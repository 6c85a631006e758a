"""The records `benchmarks.train` measures on (`benchmarks.synthetic_records`) read
through the trainer's reader, as they must for its numbers to mean anything (their
hand-written manifest once lacked what the reader needs, and the benchmark stopped at its
first BERT cell)."""

import dataclasses

import numpy as np
import pytest

from benchmarks import synthetic_records
from tfllm.data import readers
from tfllm.models import configs


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_benchmark_records_read_as_training_batches(tmp_path, family):
    config = dataclasses.replace(configs.PRESETS[f"{family}_tiny"], max_sequence_length=16)
    synthetic_records.write(family, config, 8, str(tmp_path))
    features, labels = next(iter(readers.make_dataset(str(tmp_path), "train", 4)))
    assert features["token_ids"].shape == (4, 16)
    if family == "bert":
        # masked by the reader with the positions the manifest records
        assert features["mask_positions"].shape == (4, synthetic_records.MAX_PREDICTIONS)
        assert np.all(np.asarray(labels["mlm_weights"]) <= 1)
