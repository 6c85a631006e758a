"""Prometheus metrics under TF Serving's names, served at the monitoring path.

prometheus_client appends `_total` to counters in its text format
(`:tensorflow:serving:request_count_total`); the labels are TF Serving's. Streamed
generation, which TF Serving lacks, is counted under tfllm's own name.
"""

import time

import prometheus_client

prometheus_client.disable_created_metrics()  # TF Serving exports no *_created series


class ServingMetrics:
    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        self._requests = prometheus_client.Counter(
            ":tensorflow:serving:request_count", "Requests by model and status.",
            ["model_name", "status"], registry=self.registry)
        self._latency = prometheus_client.Histogram(
            ":tensorflow:serving:request_latency", "Request latency in microseconds.",
            ["model_name", "API", "entrypoint"], registry=self.registry,
            buckets=[10 ** (e / 2) for e in range(4, 17)])
        self._loads = prometheus_client.Counter(
            ":tensorflow:cc:saved_model:load_attempt_count", "SavedModel load attempts.",
            ["model_path", "status"], registry=self.registry)
        self._batch_sizes = prometheus_client.Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows per executed batch.", ["model_name"], registry=self.registry,
            buckets=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])

        self._streams = prometheus_client.Counter(
            ":tfllm:serving:generate_stream_count",
            "Streamed generations by how they ended: finished, cancelled (the client went "
            "away) or error.", ["model_name", "end"], registry=self.registry)

    def observe(self, model_name, api, entrypoint, status, started):
        self._requests.labels(model_name or "", status).inc()
        self._latency.labels(model_name or "", api, entrypoint).observe(
            (time.perf_counter() - started) * 1e6)

    def load_attempt(self, path, status):
        self._loads.labels(path, status).inc()

    def batch(self, model_name, rows):
        self._batch_sizes.labels(model_name).observe(rows)

    def stream_ended(self, model_name, end):
        self._streams.labels(model_name or "", end).inc()

    def exposition(self):
        return prometheus_client.generate_latest(self.registry)
