"""Serving latency and throughput: REST and gRPC, 1/4/16 concurrent clients on
loopback, server-side batching off and on, against `python -m tfllm.serve`.

    python -m benchmarks.serve [--seconds=3] [--preset=bert_tiny]

Exports a classifier (a WordPiece vocabulary learned from the default corpus,
the preset's architecture, seeded weights: latency does not depend on training)
unless --model_base_path names an exported one. Each cell runs until
--requests_per_client or --seconds, whichever comes first. The ratio that must
hold: with 16 clients, batching on serves more requests/s than batching off.
"""

import concurrent.futures
import glob
import os
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import save

flags.DEFINE_string("model_base_path", "", "An exported classifier (default: export one).")
flags.DEFINE_string("preset", "bert_tiny", "Architecture of the exported classifier.")
flags.DEFINE_float("seconds", 3.0, "Longest time per cell.")
flags.DEFINE_integer("requests_per_client", 200, "Most requests per client per cell.")
flags.DEFINE_multi_integer("clients", [1, 4, 16], "Concurrent clients.")
flags.DEFINE_string("output", "benchmarks/results/serve.json", "Where results go.")
FLAGS = flags.FLAGS
TEXT = "Computers make very fast, very accurate mistakes."


def _export_classifier(directory):
    import keras

    from tfllm.models import configs
    from tfllm.models.bert import BertEncoder
    from tfllm.models.classifier import SequenceClassifier
    from tfllm.serving.export import export_module
    from tfllm.serving.modules import ClassifierModule
    from tfllm.text.tokenizers import load_tokenizer, train_tokenizer

    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*"))[:10]:
        if os.path.isfile(path) and not path.endswith(".dat"):
            with open(path, encoding="utf-8", errors="replace") as f:
                texts += [t for t in f.read().split("\n%\n") if t.strip()]
    texts = texts or [TEXT] * 100
    tokenizer = load_tokenizer(train_tokenizer("bert", texts, 2000, directory))
    keras.utils.set_random_seed(0)
    config = configs.override(configs.get_preset(FLAGS.preset),
                              {"vocab_size": tokenizer.vocab_size})
    model = SequenceClassifier(BertEncoder(config), num_classes=2)
    module = ClassifierModule(model, tokenizer, ["a", "b"])
    return os.path.dirname(export_module(module, directory, "clf", [TEXT]))


def _measure(client, clients):
    latencies = []
    deadline = time.perf_counter() + FLAGS.seconds

    def one_client(_):
        mine = []
        for _ in range(FLAGS.requests_per_client):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            client.predict("clf", {"text": [TEXT]})
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


def main(argv):
    from tfllm.serving.client import GrpcClient, RestClient
    from tfllm.serving.process import ServerProcess

    scratch = tempfile.mkdtemp()
    base_path = FLAGS.model_base_path or _export_classifier(scratch)
    batching_file = os.path.join(scratch, "batching.config")
    with open(batching_file, "w") as f:
        f.write("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 2000 }\n"
                "num_batch_threads { value: 2 }\n")
    results = {"preset": FLAGS.preset, "seconds": FLAGS.seconds, "cells": []}
    for batching in (False, True):
        flags_ = [f"--model_base_path={base_path}", "--model_name=clf"]
        if batching:
            flags_ += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
        server = ServerProcess(*flags_)
        try:
            for transport, client in (("rest", RestClient(f"127.0.0.1:{server.rest_port}")),
                                      ("grpc", GrpcClient(f"127.0.0.1:{server.grpc_port}"))):
                client.predict("clf", {"text": [TEXT]})  # warm the connection
                for clients in FLAGS.clients:
                    cell = {"batching": batching, "transport": transport, "clients": clients,
                            **_measure(client, clients)}
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
