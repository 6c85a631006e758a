"""The batcher on its own: length buckets, allowed batch sizes, the config checks.
A recording `run` stands in for the model; the server tests run the real one."""

import threading

import numpy as np
import pytest
from google.protobuf import text_format

from tfllm.errors import ConfigError
from tfllm.serving.batching import Batcher, BatchingOptions, request_length
from tfllm.serving.config import BatchingParameters


def _options(text):
    return BatchingOptions(text_format.Parse(text, BatchingParameters()))


def _submit_together(batcher, requests):
    """Submits every request at once (one thread each); returns the answers in order."""
    answers = [None] * len(requests)

    def submit(index):
        answers[index] = batcher.submit(requests[index])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


class Recorder:
    """Doubles each id and records the batch shapes it ran."""

    def __init__(self):
        self.batches = []
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.batches.append({k: v.shape for k, v in inputs.items()})
        return {"doubled": inputs["ids"] * 2, "length": (inputs["ids"] > 0).sum(axis=1)}


def test_requests_are_grouped_by_length_bucket_and_padded_only_within_it():
    run = Recorder()
    batcher = Batcher(run, _options("""max_batch_size { value: 16 }
        batch_timeout_micros { value: 300000 } pad_variable_length_inputs: true
        tfllm_length_buckets: 8 tfllm_length_buckets: 32"""))
    widths = [3, 5, 30, 8, 20, 2]
    requests = [{"ids": np.arange(1, w + 1, dtype=np.int32)[None, :]} for w in widths]
    answers = _submit_together(batcher, requests)
    batcher.close()
    for request, answer in zip(requests, answers):
        np.testing.assert_array_equal(answer["doubled"][:, :request["ids"].shape[1]],
                                      request["ids"] * 2)
        assert answer["length"].tolist() == [request["ids"].shape[1]]
    # Widths <= 8 run together at width 8; 20 and 30 at width 30; never one batch of 30.
    shapes = sorted(batch["ids"] for batch in run.batches)
    assert shapes == [(2, 30), (4, 8)], shapes


def test_without_buckets_one_padded_batch_as_tf_serving():
    run = Recorder()
    batcher = Batcher(run, _options("""max_batch_size { value: 16 }
        batch_timeout_micros { value: 300000 } pad_variable_length_inputs: true"""))
    requests = [{"ids": np.ones((1, w), np.int32)} for w in (3, 30)]
    _submit_together(batcher, requests)
    batcher.close()
    assert [batch["ids"] for batch in run.batches] == [(2, 30)]


def test_batches_are_padded_to_the_next_allowed_size_and_trimmed_back():
    run = Recorder()
    batcher = Batcher(run, _options("""max_batch_size { value: 8 }
        batch_timeout_micros { value: 300000 }
        allowed_batch_sizes: 2 allowed_batch_sizes: 4 allowed_batch_sizes: 8"""))
    requests = [{"ids": np.full((1, 4), i + 1, np.int32)} for i in range(3)]
    answers = _submit_together(batcher, requests)
    batcher.close()
    assert [batch["ids"] for batch in run.batches] == [(4, 4)]  # 3 rows padded to 4
    for i, answer in enumerate(answers):
        np.testing.assert_array_equal(answer["doubled"], np.full((1, 4), 2 * (i + 1)))


def test_text_length_is_its_utf8_bytes():
    texts = np.array(["short".encode(), "a much longer text".encode()], object)
    assert request_length({"text": texts}) == len("a much longer text")
    assert request_length({"ids": np.zeros((2, 7), np.int32), "text": texts}) == 18


@pytest.mark.parametrize("text, message", [
    ("max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4",
     "end at max_batch_size"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 "
     "allowed_batch_sizes: 8", "must increase"),
    ("tfllm_length_buckets: 64 tfllm_length_buckets: 16", "tfllm_length_buckets"),
    ("tfllm_length_buckets: 0", "positive and increasing"),
])
def test_bad_batching_parameters_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        _options(text)
