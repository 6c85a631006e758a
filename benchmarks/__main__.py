"""`python -m benchmarks`: every benchmark of the project, one report.

Runs each benchmark as its own process (each measures its ratios within one run,
because these machines are noisy), then writes `benchmarks/report.md` (a table and
plots), `benchmarks/report.json` and `benchmarks/report/*.png`.

    python -m benchmarks                      # fast settings: ~20 minutes on 2 CPU cores
    python -m benchmarks --size=full          # larger models and longer cells (GPU/TPU hosts)
    python -m benchmarks --only=train,generate --arg=train:--precision=mixed_bfloat16
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import time

from absl import flags

from benchmarks import report
from tfllm import cli
from tfllm.errors import ConfigError

# name -> (what it compares, flags for --size=fast, flags for --size=full)
BENCHMARKS = {
    "train": ("training tokens/s and MFU: tfllm's trainer vs keras-hub's fit, same data; "
              "k=4 cost", ["--steps=20"],
              ["--cells=gpt_small,bert_small,gpt_base,bert_base", "--steps=30",
               "--precision=mixed_bfloat16"]),
    "input_pipeline": ("tf.data reader vs what training consumes", [], ["--steps=100"]),
    "preprocess": ("Beam cleaning at 1 and 2 workers vs a single-process loop and datatrove",
                   [], ["--repeat=4"]),
    "near_duplicates": ("near-duplicate recall by Jaccard band, chosen layout vs 16 x 8", [],
                        ["--per_band=100"]),
    "vocabulary": ("tokenizer training: in-memory sample vs Beam word counts, 10x fortunes",
                   [], ["--repeat=30"]),
    "serve": ("serving latency by length, throughput batching off/on, streamed generation",
              ["--seconds=4"], ["--seconds=20", "--clients=64"]),
    "generate": ("generation tokens/s with and without the KV cache", [],
                 ["--preset=gpt2_small", "--new=240"]),
    "decoders": ("Llama vs GPT at the same size: training tokens/s and MFU, decode tokens/s, "
                 "key/value cache bytes", [], ["--batch=16", "--length=256"]),
    "quantize": ("int8 vs float32 SavedModels: bytes, resident memory, decode tokens/s, "
                 "held-out perplexity", [], ["--train_steps=1000"]),
}

flags.DEFINE_list("only", list(BENCHMARKS), "Benchmarks to run.")
flags.DEFINE_enum("size", "fast", ["fast", "full"], "fast for a 2-core CPU; full for big hosts.")
flags.DEFINE_multi_string("arg", [], "NAME:--flag=value passed to one benchmark (repeat).")
flags.DEFINE_string("results_dir", "benchmarks/results", "Each benchmark's JSON.")
flags.DEFINE_string("report", "benchmarks/report.md", "The report (JSON and PNGs beside it).")
FLAGS = flags.FLAGS


def _extra_args():
    extra = {name: [] for name in BENCHMARKS}
    for item in FLAGS.arg:
        name, sep, value = item.partition(":")
        if not sep or name not in BENCHMARKS:
            raise ConfigError(f"--arg={item} must be NAME:--flag=value with NAME one of "
                              f"{', '.join(BENCHMARKS)}.")
        extra[name].append(value)
    return extra


def _run(name, args):
    output = os.path.join(FLAGS.results_dir, f"{name}.json")
    command = [sys.executable, "-m", f"benchmarks.{name}", f"--output={output}", *args]
    print(f"\n=== {name}: {BENCHMARKS[name][0]}\n$ {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    if subprocess.run(command, env=env).returncode != 0:
        raise RuntimeError(f"benchmarks.{name} failed (its output is above)")
    with open(output) as f:
        return json.load(f), time.perf_counter() - started


def main(argv):
    unknown = sorted(set(FLAGS.only) - set(BENCHMARKS))
    if unknown:
        raise ConfigError(f"--only names unknown benchmarks {unknown}; known: "
                          f"{', '.join(BENCHMARKS)}.")
    extra = _extra_args()
    size = 1 if FLAGS.size == "fast" else 2
    results, failures, seconds = {}, {}, {}
    for name in FLAGS.only:
        try:
            results[name], seconds[name] = _run(name, [*BENCHMARKS[name][size], *extra[name]])
        except (RuntimeError, OSError, ValueError) as error:
            failures[name] = str(error)
    now = datetime.datetime.now(datetime.timezone.utc)
    environment = {"date": now.isoformat(timespec="seconds"),
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                   "python": platform.python_version(), "size": FLAGS.size,
                   "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    path = report.write(FLAGS.report, results, failures, environment)
    print(f"\nreport: {path} (and {os.path.splitext(path)[0]}.json, "
          f"{os.path.join(os.path.dirname(path), 'report')}/*.png)")
    for name, error in failures.items():
        print(f"FAILED {name}: {error}")
    return 1 if failures else 0


if __name__ == "__main__":
    cli.run(main)
