"""Tokenizer training on a clean corpus `--repeat` times the fortunes: the previous
in-memory path next to word counts from Beam, in the same run.

    python -m benchmarks.vocabulary [--repeat=10] [--families=bert,gpt]

In memory (the data job before): read a sample of up to 100,000 documents from the
clean corpus into the driver and train on the texts (keras-hub's
`compute_word_piece_vocabulary`, SentencePiece on sentences). From counts (the job
now): a Beam pipeline counts the words of every document (1 and 2 DirectRunner
workers) and the driver trains on the table of distinct words. In the data job the
count is one more branch of the cleaning pipeline, which has the documents already:
its cost there is the counting pipeline's time less that of a pipeline that only
reads the clean corpus (the "in job" figure). Copies carry a marker word, as in
benchmarks.preprocess. The learner's time is measured once per family and added to
the counting times; the vocabularies are compared.
"""

import glob
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
import time

import apache_beam as beam
import keras_hub
import sentencepiece as spm
import tensorflow as tf
from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks import save
from tfllm.data import clean_corpus
from tfllm.data.word_counts import CountWords, read_word_counts
from tfllm.text import tokenizers

flags.DEFINE_integer("repeat", 10, "Copies of the fortunes in the corpus.")
flags.DEFINE_list("families", ["bert", "gpt"], "Tokenizer families to train.")
flags.DEFINE_integer("vocab_size", 4096, "Vocabulary size.")
flags.DEFINE_string("output", "benchmarks/results/vocabulary.json", "Where results go.")
FLAGS = flags.FLAGS
IN_MEMORY_LIMIT = 100_000  # the data job's former --tokenizer_max_documents


def _clean_corpus(directory):
    """The fortunes `repeat` times as a clean corpus (jsonl.gz shards); documents."""
    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isfile(path) and not path.endswith((".dat", ".u8")):
            with open(path, "rb") as f:
                texts += [t for t in f.read().decode("utf-8", "replace").split("\n%\n")
                          if t.strip()]
    os.makedirs(directory)
    for copy in range(FLAGS.repeat):
        with gzip.open(os.path.join(directory, f"part-{copy:05d}.jsonl.gz"), "wt") as f:
            for i, text in enumerate(texts):
                f.write(json.dumps({"doc_id": f"{copy}-{i}", "text": f"{text} copy{copy}",
                                    "label": "", "source": ""}) + "\n")
    return len(texts) * FLAGS.repeat


def _train_in_memory(family, texts, directory):
    if family == "bert":
        keras_hub.tokenizers.compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(texts).batch(1000), FLAGS.vocab_size,
            vocabulary_output_file=os.path.join(directory, "vocab.txt"), lowercase=True,
            strip_accents=True, reserved_tokens=list(tokenizers.BERT_SPECIAL_TOKENS))
        return os.path.join(directory, "vocab.txt")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model,
                                   vocab_size=FLAGS.vocab_size,
                                   **tokenizers.SENTENCEPIECE_OPTIONS)
    path = os.path.join(directory, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def _options(workers):
    return PipelineOptions(["--direct_running_mode=multi_processing",
                            f"--direct_num_workers={workers}"] if workers > 1 else [])


def _read_with_beam(clean_dir):
    """What the cleaning pipeline has already paid before its count branch."""
    with beam.Pipeline(options=_options(1)) as pipeline:
        _ = (pipeline
             | beam.io.ReadFromText(os.path.join(clean_dir, "*.jsonl.gz"))
             | beam.Map(clean_corpus.document_from_json)
             | beam.combiners.Count.Globally())


def _count_with_beam(family, clean_dir, directory, workers):
    with beam.Pipeline(options=_options(workers)) as pipeline:
        _ = (pipeline
             | beam.io.ReadFromText(os.path.join(clean_dir, "*.jsonl.gz"))
             | beam.Map(clean_corpus.document_from_json)
             | CountWords(family)
             | beam.io.WriteToText(os.path.join(directory, "word_counts"),
                                   file_name_suffix=".tsv", num_shards=4))
    return read_word_counts(directory)


def _vocabulary(path):
    if path.endswith(".model"):
        processor = spm.SentencePieceProcessor(model_file=path)
        return {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    with open(path, encoding="utf-8") as f:
        return set(f.read().split())


def _timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def _family(family, clean_dir, scratch):
    def directory(name):
        path = os.path.join(scratch, family, name)
        os.makedirs(path)
        return path

    texts, read_seconds = _timed(clean_corpus.clean_sample, clean_dir, IN_MEMORY_LIMIT)
    old_path, old_train = _timed(_train_in_memory, family, texts, directory("in_memory"))
    _, read = _timed(_read_with_beam, clean_dir)
    _, one = _timed(_count_with_beam, family, clean_dir, directory("beam1"), 1)
    counts, two = _timed(_count_with_beam, family, clean_dir, directory("beam2"), 2)
    new_path, learn = _timed(tokenizers.train_from_counts, family, counts, FLAGS.vocab_size,
                             directory("from_counts"))
    old, new = _vocabulary(old_path), _vocabulary(new_path)
    in_memory = read_seconds + old_train
    return {"in_memory_seconds": round(in_memory, 1),
            "in_memory_documents": len(texts),
            "beam_1_worker_count_seconds": round(one, 1),
            "beam_2_workers_count_seconds": round(two, 1),
            "beam_read_only_seconds": round(read, 1),
            "learn_from_counts_seconds": round(learn, 1),
            "distinct_words": len(counts),
            "from_counts_1_worker_over_in_memory_speed": round(in_memory / (one + learn), 3),
            "from_counts_2_workers_over_in_memory_speed": round(in_memory / (two + learn), 3),
            "in_job_count_seconds": round(one - read, 1),
            "from_counts_in_job_over_in_memory_speed": round(
                in_memory / (max(one - read, 0) + learn), 3),
            "shared_vocabulary": round(len(old & new) / len(old | new), 4)}


def main(argv):
    del argv
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    scratch = tempfile.mkdtemp(prefix="tfllm-bench-vocabulary-")
    try:
        documents = _clean_corpus(os.path.join(scratch, "clean"))
        results = {"documents": documents, "repeat": FLAGS.repeat}
        for family in FLAGS.families:
            results[family] = r = _family(family, os.path.join(scratch, "clean"), scratch)
            print(f"{family}: in memory ({r['in_memory_documents']:,} of {documents:,} "
                  f"documents) {r['in_memory_seconds']} s; from Beam counts of all of them "
                  f"{r['beam_1_worker_count_seconds']} s (1 worker) or "
                  f"{r['beam_2_workers_count_seconds']} s (2) + learning "
                  f"{r['learn_from_counts_seconds']} s: "
                  f"{r['from_counts_1_worker_over_in_memory_speed']:.2f}x / "
                  f"{r['from_counts_2_workers_over_in_memory_speed']:.2f}x the speed; "
                  f"in the data job (count {r['in_job_count_seconds']} s beyond reading) "
                  f"{r['from_counts_in_job_over_in_memory_speed']:.2f}x; "
                  f"vocabularies share {r['shared_vocabulary']:.1%}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
