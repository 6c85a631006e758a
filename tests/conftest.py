"""Shared test set-up: quiet TensorFlow, deterministic seeds, tiny models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfllm.training.strategy import split_cpu  # noqa: E402

# Two logical CPUs before TensorFlow initialises its devices, so MirroredStrategy
# tests run two real replicas; everything else keeps using /cpu:0.
split_cpu(2)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
