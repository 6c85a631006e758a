"""Preprocessing throughput: the Beam cleaning stage (read, normalise, quality filters,
PII, exact and near deduplication, word counts, write) on 1 and 2 DirectRunner
workers, next to a single-process Python loop calling the same stage functions and
to datatrove running the same rules (benchmarks/datatrove_reference.py, when the
`bench` extra is installed), in the same run.

    python -m benchmarks.preprocess [--input=/usr/share/games/fortunes/*] [--repeat=2]

The loop is the honest alternative for a corpus that fits one process: no Beam
overhead, but no parallelism, no spilling, no cluster. Documents/s and MB/s per core
of each, and the ratios, go to benchmarks/results/preprocess.json.
"""

import logging
import os
import shutil
import tempfile
import time

import apache_beam as beam
from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks import save
from tfllm.data import job, pii
from tfllm.data.dedup import normalized_hash
from tfllm.data.filters import apply_rules, filter_config_from_overrides, load_bad_words
from tfllm.data.near_dedup import (MinHashConfig, band_keys, minhash_signature, shingle_hashes,
                                   shingles)
from tfllm.data.normalize import normalize_text
from tfllm.data.sources import SourceConfig, decode, match_inputs

flags.DEFINE_list("input", ["/usr/share/games/fortunes/*"], "Text files or globs ('%' split).")
flags.DEFINE_integer("repeat", 1, "Read the input this many times (marked copies).")
flags.DEFINE_string("output", "benchmarks/results/preprocess.json", "Where results go.")
FLAGS = flags.FLAGS

FILTERS = filter_config_from_overrides(
    {"min_words": "3", "min_stop_words": "0", "min_alpha_words_ratio": "0.5"},
    ["curly_brace", "top_ngrams", "c4_lines", "fineweb"])


def _corpus(scratch):
    """The input `repeat` times; each copy's documents get a marker word, so that
    exact deduplication cannot drop them cheaply (near deduplication still does,
    in the loop and in Beam alike)."""
    files = [m["path"] for m in match_inputs(FLAGS.input, ("*.dat", "*.u8"))]
    os.makedirs(os.path.join(scratch, "corpus"))
    copies = []
    for index in range(FLAGS.repeat):
        for path in files:
            with open(path, "rb") as f:
                documents = f.read().split(b"\n%\n")
            if index:
                documents = [d + f" copy{index}".encode() for d in documents]
            copy = os.path.join(scratch, "corpus", f"{index}-{os.path.basename(path)}")
            with open(copy, "wb") as f:
                f.write(b"\n%\n".join(documents))
            copies.append(copy)
    return copies


def _loop(files):
    """The same stage functions as plain Python over every document (line dedup and
    the writing left out, which only flatters the loop); returns documents read."""
    bad_words = load_bad_words()
    minhash = MinHashConfig()
    seen, buckets, read = set(), {}, 0
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        for chunk in raw.split(b"\n%\n"):
            if not chunk.strip():
                continue
            read += 1
            text = normalize_text(decode(chunk)[0])[0]
            text, failed, _ = apply_rules(text, FILTERS, bad_words)
            if failed:
                continue
            text = pii.scrub(text)[0]
            digest = normalized_hash(text)
            if digest in seen:
                continue
            seen.add(digest)
            signature = minhash_signature(shingle_hashes(shingles(text, minhash.ngram_size)),
                                          minhash)
            if any(key in buckets for key in band_keys(signature, minhash)):
                continue  # a candidate near duplicate (the job also checks the Jaccard)
            buckets.update(dict.fromkeys(band_keys(signature, minhash), digest))
    return read


def _beam(files, scratch, workers):
    args = ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"] \
        if workers > 1 else []
    config = job.JobConfig(kind="gpt", output_dir=scratch, source=SourceConfig(
        patterns=tuple(files), split="delimiter"), filters=FILTERS)
    prefix = os.path.join(scratch, f"clean-{workers}", "part")
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        job.clean_pipeline(config, pipeline, prefix, files)
    return job.pipeline_counters(pipeline.result)["documents_read"]


def _datatrove(files, scratch):
    """datatrove's documents kept, or None when the `bench` extra is not installed."""
    try:
        from benchmarks import datatrove_reference
    except ImportError as error:
        print(f"datatrove reference skipped ({error}): pip install -e '.[bench]'")
        return None
    return datatrove_reference.clean(files, os.path.join(scratch, "datatrove"))


def _timed(function, *args):
    start = time.perf_counter()
    documents = function(*args)
    return documents, time.perf_counter() - start


def main(argv):
    del argv
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    scratch = tempfile.mkdtemp(prefix="tfllm-bench-preprocess-")
    try:
        files = _corpus(scratch)
        megabytes = sum(os.path.getsize(path) for path in files) / 1e6
        documents, loop = _timed(_loop, files)
        _, one = _timed(_beam, files, scratch, 1)
        _, two = _timed(_beam, files, scratch, 2)
        kept, datatrove = _timed(_datatrove, files, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {"documents": documents, "files": len(files), "megabytes": round(megabytes, 2)}
    runs = [("loop", loop, 1), ("beam_1_worker", one, 1), ("beam_2_workers", two, 2)]
    if kept is not None:
        runs.append(("datatrove_1_task", datatrove, 1))
    for name, seconds, cores in runs:
        results[f"{name}_documents_per_second"] = round(documents / seconds, 1)
        results[f"{name}_megabytes_per_second_per_core"] = round(megabytes / seconds / cores, 3)
    results["beam_1_worker_over_loop"] = round(loop / one, 3)
    results["beam_2_workers_over_1"] = round(one / two, 3)
    if kept is not None:
        results["beam_1_worker_over_datatrove"] = round(datatrove / one, 3)
        results["datatrove_documents_kept"] = kept
    print(f"{documents:,} documents ({megabytes:.1f} MB): " + ", ".join(
        f"{name} {documents / seconds:,.0f} docs/s ({megabytes / seconds / cores:.2f} MB/s "
        "per core)" for name, seconds, cores in runs))
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
