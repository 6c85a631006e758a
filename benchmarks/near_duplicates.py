"""Near-duplicate recall by Jaccard band: real documents with planted near duplicates
of measured 5-gram Jaccard, through the Beam stage with the layout chosen from the
threshold and with the fixed 16 x 8 layout, in the same run.

    python -m benchmarks.near_duplicates [--base=1000] [--per_band=50]

Base documents are fortunes and Jargon File entries of at least 60 words, no two of
them at Jaccard 0.3 or more, so every removal of a base document is a false one.
Each planted copy is a base document edited (words replaced, dropped at the end or
appended) until its exact Jaccard with the original falls in its band.
"""

import glob
import gzip
import os
import random
import shutil
import tempfile
import time

import apache_beam as beam
from absl import app, flags

from benchmarks import save
from tfllm.data.documents import Document
from tfllm.data.near_dedup import (DeduplicateNearDuplicates, MinHashConfig,
                                   candidate_probability, shingles)

BANDS = ((0.7, 0.75), (0.75, 0.8), (0.8, 0.9), (0.9, 1.0))
MIN_WORDS = 60
MAX_BASE_JACCARD = 0.3
FORTUNES = "/usr/share/games/fortunes"
JARGON = "/usr/share/doc/jargon-text/jargon.txt.gz"


def _jaccard(a, b):
    return len(a & b) / len(a | b)


def _source_texts():
    texts = []
    for path in sorted(glob.glob(f"{FORTUNES}/*")):
        if os.path.isfile(path) and not path.endswith((".dat", ".u8")):
            with open(path, "rb") as f:
                texts += f.read().decode("utf-8", "replace").split("\n%\n")
    with gzip.open(JARGON, "rt", encoding="utf-8", errors="replace") as f:
        texts += f.read().split("\n\n")
    return [" ".join(text.split()) for text in texts if len(text.split()) >= MIN_WORDS]


def base_documents(count, ngram=5):
    """`count` texts, none at Jaccard MAX_BASE_JACCARD or more with another."""
    chosen, chosen_shingles = [], []
    texts = _source_texts()
    for text in random.Random(0).sample(texts, k=len(texts)):
        own = shingles(text, ngram)
        if all(_jaccard(own, other) < MAX_BASE_JACCARD for other in chosen_shingles):
            chosen.append(text)
            chosen_shingles.append(own)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"only {len(chosen)} distinct base documents of {MIN_WORDS}+ words")


def _edited(text, low, high, rng, ngram=5):
    """A copy of `text` whose exact Jaccard with it lies in [low, high), and that Jaccard."""
    original = shingles(text, ngram)
    while True:
        words = text.split()
        similarity = 1.0
        while similarity >= high:
            operation = rng.random()
            if operation < 0.6:
                words[rng.randrange(len(words))] = f"w{rng.randrange(10**6)}"
            elif operation < 0.8:
                words.pop()
            else:
                words.append(f"w{rng.randrange(10**6)}")
            similarity = _jaccard(original, shingles(" ".join(words), ngram))
        if similarity >= low:
            return " ".join(words), similarity


def planted_corpus(num_base=1000, per_band=50, seed=0):
    """(documents, {planted doc_id: (band, Jaccard)}); base ids sort before planted
    ones, so a removed duplicate is always the planted copy."""
    rng = random.Random(seed)
    texts = base_documents(num_base)
    documents = [Document(f"base-{i:05d}", text) for i, text in enumerate(texts)]
    planted = {}
    originals = rng.sample(range(num_base), k=per_band * len(BANDS))
    for n, original in enumerate(originals):
        band = BANDS[n % len(BANDS)]
        text, similarity = _edited(texts[original], *band, rng)
        doc_id = f"plant-{n:05d}"
        documents.append(Document(doc_id, text))
        planted[doc_id] = (band, similarity)
    return documents, planted


def kept_ids(documents, config, scratch):
    """The doc_ids DeduplicateNearDuplicates keeps, from a real Beam run."""
    prefix = os.path.join(scratch, "kept")
    with beam.Pipeline() as pipeline:
        _ = (pipeline
             | beam.Create(documents)
             | DeduplicateNearDuplicates(config)
             | beam.Map(lambda d: d.doc_id)
             | beam.io.WriteToText(prefix))
    ids = set()
    for path in glob.glob(prefix + "*"):
        with open(path) as f:
            ids.update(line.strip() for line in f)
    return ids


def recall_by_band(documents, planted, kept):
    """{band label: recall}, and the base documents removed (false removals)."""
    recall = {}
    for low, high in BANDS:
        in_band = [doc_id for doc_id, (band, _) in planted.items() if band == (low, high)]
        caught = sum(doc_id not in kept for doc_id in in_band)
        recall[f"{low:.2f}-{high:.2f}"] = round(caught / len(in_band), 3)
    false_removals = sum(d.doc_id not in kept for d in documents if d.doc_id.startswith("base"))
    return recall, false_removals


flags.DEFINE_integer("base", 1000, "Distinct base documents.")
flags.DEFINE_integer("per_band", 50, "Planted near duplicates per Jaccard band.")
flags.DEFINE_string("output", "benchmarks/results/near_duplicates.json", "Where results go.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    documents, planted = planted_corpus(FLAGS.base, FLAGS.per_band)
    results = {"documents": len(documents), "planted": len(planted), "layouts": []}
    scratch = tempfile.mkdtemp(prefix="tfllm-bench-near-dup-")
    try:
        for config in (MinHashConfig(), MinHashConfig(num_bands=16)):
            start = time.perf_counter()
            kept = kept_ids(documents, config, scratch)
            seconds = time.perf_counter() - start
            recall, false_removals = recall_by_band(documents, planted, kept)
            bands, rows = config.layout
            results["layouts"].append({
                "bands": bands, "rows": rows, "recall": recall,
                "false_removals": false_removals, "seconds": round(seconds, 1),
                "candidate_probability_at_threshold": round(
                    candidate_probability(config.threshold, bands, rows), 3)})
            print(f"{bands} bands x {rows} rows: recall by Jaccard band {recall}, "
                  f"{false_removals} distinct documents removed, {seconds:.1f} s")
            shutil.rmtree(scratch)
            os.makedirs(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
