"""Shared test set-up: quiet TensorFlow, deterministic seeds, tiny models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
    # One pytest worker per core: TensorFlow in each worker (and in the processes the
    # tests start, which inherit this) computes an op on one thread instead of
    # oversubscribing the cores. Replicas and tf.data keep their own threads.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

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


# The longest modules (measured with --durations=0) start first, so that the parallel
# workers finish together instead of one running a long module alone at the end.
_LONGEST_FIRST = ("tests/test_main_job.py", "tests/serving/test_server.py",
                  "tests/training/test_real_tasks.py", "tests/training/test_real_tagging.py",
                  "tests/training/test_real_qa.py",
                  "tests/test_export.py", "tests/reliability/test_training_faults.py",
                  "tests/reliability/test_config_faults.py",
                  "tests/reliability/test_data_faults.py")


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
