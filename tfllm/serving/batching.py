"""Server-side dynamic batching of concurrent requests, as TF Serving's
`--enable_batching` does: requests to one signature wait up to
`batch_timeout_micros` for others, run as one batch of at most `max_batch_size`
rows (padded up to the next of `allowed_batch_sizes`, when given), and each gets
its own rows back.

Requests are grouped by length before they are merged (`tfllm_length_buckets`),
so a batch of short texts is not run at the length of one long text: the text
signatures run at their call's longest row, and id inputs are padded to it
(`pad_variable_length_inputs`). A request's length is the width of its widest
id input, or the UTF-8 bytes of its longest text (the server does not tokenize;
English WordPiece averages about 4-5 bytes a token).

Hand-written because no library of this stack batches across independent
requests in a Python server (tf.data and Keras batch within one caller).
"""

import bisect
import queue
import threading
import time

import grpc
import numpy as np

from tfllm.errors import ConfigError
from tfllm.serving.status import ServingError


def _increasing(values):
    return all(0 < a < b for a, b in zip(values, values[1:])) and (not values or values[0] > 0)


class BatchingOptions:
    """The fields of a BatchingParameters proto that this batcher uses, checked."""

    def __init__(self, parameters):
        def value(field, default):
            return getattr(parameters, field).value if parameters.HasField(field) else default

        self.max_batch_size = value("max_batch_size", 1000)
        self.timeout_seconds = value("batch_timeout_micros", 0) / 1e6
        self.max_enqueued_batches = value("max_enqueued_batches", 1000000)
        self.num_batch_threads = max(1, value("num_batch_threads", 1))
        self.pad_variable_length_inputs = parameters.pad_variable_length_inputs
        self.allowed_batch_sizes = list(parameters.allowed_batch_sizes)
        self.length_buckets = list(parameters.tfllm_length_buckets)
        if not _increasing(self.allowed_batch_sizes) or (
                self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch_size):
            raise ConfigError(f"allowed_batch_sizes {self.allowed_batch_sizes} must increase "
                              f"and end at max_batch_size ({self.max_batch_size}), as TF "
                              "Serving requires.")
        if not _increasing(self.length_buckets):
            raise ConfigError(f"tfllm_length_buckets {self.length_buckets} must be positive "
                              "and increasing.")

    def padded_size(self, rows):
        """The allowed batch size a batch of `rows` runs at."""
        index = bisect.bisect_left(self.allowed_batch_sizes, rows)
        return self.allowed_batch_sizes[index] if index < len(self.allowed_batch_sizes) else rows

    def bucket(self, inputs):
        """The length bucket of a request (0 when no buckets are configured)."""
        return bisect.bisect_left(self.length_buckets, request_length(inputs))


def request_length(inputs):
    """The width of the widest 2-D id input or the bytes of the longest text."""
    length = 0
    for value in inputs.values():
        if value.dtype == object and value.size:
            length = max(length, max(len(v) for v in value.flat))
        elif value.ndim == 2:
            length = max(length, value.shape[1])
    return length


class _Task:
    __slots__ = ("inputs", "rows", "done", "outputs", "error")

    def __init__(self, inputs, rows):
        self.inputs, self.rows = inputs, rows
        self.done = threading.Event()
        self.outputs = self.error = None


def batch_rows(inputs):
    """The batch size every input shares along its first axis, or None."""
    sizes = {np.shape(value)[0] if np.ndim(value) else None for value in inputs.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _merge(tasks, pad, rows):
    """Concatenates the tasks' inputs; pads axis 1 of numeric inputs when allowed, and
    the batch to `rows` with copies of its first row (as TF Serving pads batches)."""
    merged = {}
    for key in tasks[0].inputs:
        parts = [task.inputs[key] for task in tasks]
        if pad and parts[0].ndim == 2 and parts[0].dtype != object:
            width = max(part.shape[1] for part in parts)
            parts = [np.pad(part, ((0, 0), (0, width - part.shape[1]))) for part in parts]
        merged[key] = np.concatenate(parts, axis=0)
        extra = rows - merged[key].shape[0]
        if extra:
            merged[key] = np.concatenate([merged[key], np.repeat(merged[key][:1], extra, 0)])
    return merged


def _compatible_key(inputs, pad):
    """Tasks with equal keys can share a batch: same input names, dtypes and shapes
    past the batch axis (axis 1 may differ when padding is on)."""
    return tuple((key, value.dtype.str, value.shape[2:] if pad and value.ndim == 2 else
                  value.shape[1:]) for key, value in sorted(inputs.items()))


class Batcher:
    """Batches calls of `run(inputs) -> outputs` (dicts of numpy arrays)."""

    def __init__(self, run, options, on_batch=None):
        self._run = run
        self._options = options
        self._on_batch = on_batch
        self._queue = queue.Queue(options.max_enqueued_batches * options.max_batch_size)
        self._closed = False
        self._threads = [threading.Thread(target=self._loop, daemon=True, name="tfllm-batch")
                         for _ in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs):
        rows = batch_rows(inputs)
        if self._closed or rows is None or rows > self._options.max_batch_size:
            return self._run(inputs)  # not batchable (or being unloaded): run alone
        task = _Task(inputs, rows)
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise ServingError(grpc.StatusCode.UNAVAILABLE,
                               "The batch queue is full; retry later.") from None
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def close(self):
        """Stops the threads once the queued tasks are done."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)

    def _loop(self):
        carried = None
        while True:
            first = carried or self._queue.get()
            carried = None
            if first is None:
                return
            tasks, rows = [first], first.rows
            deadline = time.monotonic() + self._options.timeout_seconds
            while rows < self._options.max_batch_size:
                try:
                    task = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if task is None or rows + task.rows > self._options.max_batch_size:
                    carried = task  # starts the next batch (or ends this thread)
                    if task is None:
                        self._process(tasks)
                        return
                    break
                tasks.append(task)
                rows += task.rows
            self._process(tasks)

    def _process(self, tasks):
        options = self._options
        pad = options.pad_variable_length_inputs
        groups = {}
        for task in tasks:
            key = (_compatible_key(task.inputs, pad), options.bucket(task.inputs))
            groups.setdefault(key, []).append(task)
        for group in groups.values():
            try:
                total = sum(task.rows for task in group)
                padded = options.padded_size(total)
                outputs = self._run(_merge(group, pad, padded))
                if any(np.ndim(v) == 0 or np.shape(v)[0] != padded for v in outputs.values()):
                    raise ServingError(grpc.StatusCode.INTERNAL,
                                       "An output of this signature is not batched along the "
                                       "first axis; serve it without --enable_batching.")
                if self._on_batch:
                    self._on_batch(total)
                start = 0
                for task in group:
                    task.outputs = {k: v[start:start + task.rows] for k, v in outputs.items()}
                    start += task.rows
            except Exception:  # one bad request must not fail its neighbours: run alone
                for task in group:
                    try:
                        task.outputs = self._run(task.inputs)
                    except Exception as error:
                        task.error = error
            for task in group:
                task.done.set()
