"""Serving cost against `python -m tfllm.serve`, on loopback, in one run:

- p50 latency of one request with a short (~10 tokens) and a near-maximal text:
  the text signatures run at the call's own length, so short requests cost less;
- requests/s at 1, 4 and 16 clients sending short texts, batching off and on,
  over REST and gRPC;
- streamed generation (gRPC GenerationService and REST `:generateStream`): time to
  the first token and tokens/s, next to the non-streamed `generate` answer.

    python -m benchmarks.serve [--seconds=3] [--preset=bert_small]

Requests come from light load generators (a keep-alive HTTP connection per client
thread and a JSON body encoded once; a PredictRequest built once for gRPC), so the
two cores measure the server rather than the client library; the streams are read
through `tfllm.client`. Exports a classifier and a generator (vocabularies learned from the default corpus,
the presets' architectures, seeded weights: cost does not depend on training).
Targets (issue 16): short p50 <= 0.25x near-maximal; batching on >= 2x off at 16
clients; time to first token <= 0.2x the whole answer.
"""

import concurrent.futures
import glob
import http.client
import json
import os
import tempfile
import threading
import time

import numpy as np
from absl import app, flags

from benchmarks import save

flags.DEFINE_string("preset", "bert_small", "Architecture of the exported classifier.")
flags.DEFINE_string("generator_preset", "gpt_small", "Architecture of the exported generator.")
flags.DEFINE_float("seconds", 3.0, "Longest time per throughput cell.")
flags.DEFINE_integer("requests_per_client", 400, "Most requests per client per cell.")
flags.DEFINE_multi_integer("clients", [1, 4, 16], "Concurrent clients.")
flags.DEFINE_integer("latency_requests", 30, "Sequential requests per latency measure.")
flags.DEFINE_integer("stream_tokens", 64, "Tokens of the streamed answer.")
flags.DEFINE_integer("stream_repeats", 5, "Streamed answers per transport (median).")
flags.DEFINE_string("output", "benchmarks/results/serve.json", "Where results go.")
FLAGS = flags.FLAGS
SHORT = "Work is fun, said nobody ever."  # 10 tokens with [CLS] and [SEP]
PROMPT = "The computer"
MODELS_CONFIG = """model_config_list {{
  config {{ name: "clf" base_path: "{base}/clf" model_platform: "tensorflow" }}
  config {{ name: "gpt" base_path: "{base}/gpt" model_platform: "tensorflow" }}
}}
"""
# Short requests wait at most 2 ms for others; one batch thread per core.
BATCHING = """max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
num_batch_threads { value: 2 }
tfllm_length_buckets: 64
tfllm_length_buckets: 256
"""


def _corpus():
    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*"))[:10]:
        if os.path.isfile(path) and not path.endswith(".dat"):
            with open(path, encoding="utf-8", errors="replace") as f:
                texts += [t for t in f.read().split("\n%\n") if t.strip()]
    return texts or [SHORT] * 100


def _export(directory):
    """Exports clf and gpt under directory/export; returns (base, short and long text
    with their token counts)."""
    import keras

    from tfllm.models import configs
    from tfllm.models.bert import BertEncoder
    from tfllm.models.classifier import SequenceClassifier
    from tfllm.models.gpt import GptBackbone, GptCausalLM
    from tfllm.export.saved_model import export_module
    from tfllm.export.modules import TaskModule, GeneratorModule
    from tfllm.text.tokenizers import load_tokenizer, train_tokenizer

    texts, base = _corpus(), os.path.join(directory, "export")
    for name in ("wp", "sp"):
        os.makedirs(os.path.join(directory, name))
    keras.utils.set_random_seed(0)
    bert = load_tokenizer(train_tokenizer("bert", texts, 4000, os.path.join(directory, "wp")))
    config = configs.override(configs.get_preset(FLAGS.preset), {"vocab_size": bert.vocab_size})
    classifier = TaskModule(SequenceClassifier(BertEncoder(config), num_classes=2),
                                  bert, ["a", "b"])
    export_module(classifier, base, "clf", [SHORT])
    gpt = load_tokenizer(train_tokenizer("gpt", texts, 4000, os.path.join(directory, "sp")))
    config = configs.override(configs.get_preset(FLAGS.generator_preset),
                              {"vocab_size": gpt.vocab_size})
    export_module(GeneratorModule(GptCausalLM(GptBackbone(config)), gpt), base, "gpt", [PROMPT])
    longest = classifier.model.config.max_sequence_length - 2  # [CLS] ... [SEP]
    words = " ".join(texts).split()
    long_text = " ".join(words[:longest])
    while len(bert.tokenize([long_text])[0]) > longest:
        long_text = long_text.rsplit(" ", 1)[0]
    tokens = lambda text: len(bert.tokenize([text])[0]) + 2  # noqa: E731
    return base, {"short": (SHORT, tokens(SHORT)), "long": (long_text, tokens(long_text))}


class _RestLoad:
    """POSTs `:predict` for one text over a keep-alive connection per thread."""

    def __init__(self, port):
        self.port, self.local = port, threading.local()

    def predict(self, text):
        body = json.dumps({"inputs": {"text": [text]}})
        try:
            response = self._post(body)
        except (ConnectionError, http.client.HTTPException):  # the server closed an idle one
            del self.local.connection
            response = self._post(body)
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"REST answered {response.status}: {payload[:200]!r}")


    def _post(self, body):
        if not hasattr(self.local, "connection"):
            self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port)
        self.local.connection.request("POST", "/v1/models/clf:predict", body,
                                      {"Content-Type": "application/json"})
        return self.local.connection.getresponse()


class _GrpcLoad:
    """Sends a PredictRequest built once per text."""

    def __init__(self, port):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{port}"))
        self.requests = {}
        self._build = lambda text: predict_pb2.PredictRequest(  # noqa: E731
            model_spec={"name": "clf"},
            inputs={"text": tf.make_tensor_proto(np.array([text.encode()], object))})

    def predict(self, text):
        if text not in self.requests:
            self.requests[text] = self._build(text)
        self.stub.Predict(self.requests[text], timeout=60)


def _p50_ms(load, text):
    load.predict(text)  # warm
    latencies = []
    for _ in range(FLAGS.latency_requests):
        started = time.perf_counter()
        load.predict(text)
        latencies.append(time.perf_counter() - started)
    return float(np.percentile(latencies, 50) * 1e3)


def _throughput(load, clients):
    latencies = []
    deadline = time.perf_counter() + FLAGS.seconds

    def one_client(_):
        mine = []
        for _ in range(FLAGS.requests_per_client):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            load.predict(SHORT)
            mine.append(time.perf_counter() - started)
        return mine

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for mine in pool.map(one_client, range(clients)):
            latencies += mine
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "requests_per_second": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3)}


def _streaming(client):
    """Median time to the first piece, to the whole streamed answer, and of the same
    answer not streamed (the generate signature)."""
    settings = {"max_new_tokens": FLAGS.stream_tokens, "temperature": 1.0, "seed": 1}
    inputs = {"prompt": [PROMPT], **{k: np.array([v]) for k, v in settings.items()},
              "top_k": np.array([0], np.int32), "top_p": np.array([1.0], np.float32)}
    first, whole, unstreamed, tokens = [], [], [], []
    list(client.generate_stream("gpt", PROMPT, **settings))  # warm
    for _ in range(FLAGS.stream_repeats):
        started = time.perf_counter()
        for index, piece in enumerate(client.generate_stream("gpt", PROMPT, **settings)):
            if index == 0:
                first.append(time.perf_counter() - started)
        whole.append(time.perf_counter() - started)
        tokens.append(piece["num_tokens"])
        started = time.perf_counter()
        client.predict("gpt", inputs, "generate")
        unstreamed.append(time.perf_counter() - started)
    first, whole, unstreamed = (float(np.median(v)) for v in (first, whole, unstreamed))
    return {"tokens": int(np.median(tokens)), "time_to_first_token_ms": first * 1e3,
            "stream_ms": whole * 1e3, "generate_ms": unstreamed * 1e3,
            "tokens_per_second": float(np.median(tokens)) / whole,
            "first_token_over_answer": first / unstreamed}


def _server(base, batching_file=None):
    from tfllm.serving.process import ServerProcess

    config = os.path.join(base, "..", "models.config")
    with open(config, "w") as f:
        f.write(MODELS_CONFIG.format(base=base))
    flags_ = [f"--model_config_file={config}"]
    if batching_file:
        flags_ += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    return ServerProcess(*flags_)


def main(argv):
    from tfllm.client import GrpcClient, RestClient

    scratch = tempfile.mkdtemp()
    base, texts = _export(scratch)
    batching_file = os.path.join(scratch, "batching.config")
    with open(batching_file, "w") as f:
        f.write(BATCHING)
    results = {"preset": FLAGS.preset, "generator_preset": FLAGS.generator_preset,
               "seconds": FLAGS.seconds, "batching_config": BATCHING,
               "text_tokens": {name: count for name, (_, count) in texts.items()},
               "cells": [], "latency": {}, "streaming": {}}
    for batching in (False, True):
        server = _server(base, batching_file if batching else None)
        try:
            transports = (("rest", RestClient(f"127.0.0.1:{server.rest_port}"),
                           _RestLoad(server.rest_port)),
                          ("grpc", GrpcClient(f"127.0.0.1:{server.grpc_port}"),
                           _GrpcLoad(server.grpc_port)))
            for transport, client, load in transports:
                if not batching:
                    p50 = {name: _p50_ms(load, text) for name, (text, _) in texts.items()}
                    results["latency"][transport] = {**p50, "short_over_long":
                                                     p50["short"] / p50["long"]}
                    print(f"{transport:4} p50: {texts['short'][1]} tokens {p50['short']:.1f} ms"
                          f", {texts['long'][1]} tokens {p50['long']:.1f} ms "
                          f"({p50['short'] / p50['long']:.2f}x)", flush=True)
                    stream = results["streaming"][transport] = _streaming(client)
                    print(f"{transport:4} stream: first token {stream['time_to_first_token_ms']:.0f}"
                          f" ms, {stream['tokens']} tokens in {stream['stream_ms']:.0f} ms "
                          f"({stream['tokens_per_second']:.0f} tokens/s); not streamed "
                          f"{stream['generate_ms']:.0f} ms; first/answer "
                          f"{stream['first_token_over_answer']:.3f}", flush=True)
                load.predict(SHORT)  # warm the connection
                for clients in FLAGS.clients:
                    cell = {"batching": batching, "transport": transport, "clients": clients,
                            **_throughput(load, clients)}
                    results["cells"].append(cell)
                    print(f"batching={'on ' if batching else 'off'} {transport:4} "
                          f"clients={clients:2}  {cell['requests_per_second']:7.1f} req/s  "
                          f"p50 {cell['p50_ms']:6.1f} ms  p99 {cell['p99_ms']:6.1f} ms",
                          flush=True)
        finally:
            server.stop()
    most = max(FLAGS.clients)
    ratios = {}
    for transport in ("rest", "grpc"):
        rate = {c["batching"]: c["requests_per_second"] for c in results["cells"]
                if c["transport"] == transport and c["clients"] == most}
        ratios[transport] = rate[True] / rate[False]
        print(f"{transport}: batching on/off at {most} clients = {ratios[transport]:.2f}x")
    results["batching_speedup_at_most_clients"] = ratios
    save(FLAGS.output, results)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
