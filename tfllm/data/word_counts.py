"""Word counts of the clean corpus, for the tokenizer trainers, as a Beam combine.

The trainers need only how often each word occurs, never the documents, so the
corpus is counted where it lies (on every worker, in bundles) and only the table
of distinct words reaches the driver: it grows with the vocabulary of the corpus,
not with its size.
"""

import collections
import glob
import os

import apache_beam as beam

from tfllm.text import tokenizers

WORD_COUNTS_PREFIX = "word_counts"


class _CountBatch(beam.DoFn):
    def __init__(self, family):
        self._family = family

    def process(self, documents):
        texts = [text for d in documents for text in (d.text, d.text_pair) if text]
        yield from tokenizers.count_words(self._family, texts).items()


class CountWords(beam.PTransform):
    """PCollection[Document] -> "word<TAB>count" lines, one per distinct word."""

    def __init__(self, family):
        super().__init__()
        self._family = family

    def expand(self, documents):
        return (documents
                | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
                | "CountBatch" >> beam.ParDo(_CountBatch(self._family))
                | "Sum" >> beam.CombinePerKey(sum)
                | "Format" >> beam.MapTuple(lambda word, count: f"{word}\t{count}"))


def read_word_counts(directory):
    """The counts CountWords wrote to `directory`/word_counts-*.tsv."""
    counts = collections.Counter()
    for path in sorted(glob.glob(os.path.join(directory, f"{WORD_COUNTS_PREFIX}-*.tsv"))):
        with open(path, encoding="utf-8", newline="\n") as f:
            for line in f:
                word, _, count = line.rstrip("\n").rpartition("\t")
                counts[word] += int(count)
    return counts
