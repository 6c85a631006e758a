"""Word counts of the clean corpus, for the tokenizer trainers, as a Beam combine.

The trainers need only how often each word occurs, never the documents, so the
corpus is counted where it lies (on every worker, in bundles) and only the table
of distinct words reaches the driver: it grows with the vocabulary of the corpus,
not with its size. Each batch's counts travel as a few tables (one per shard of the
words) rather than one element per word: Beam's cost is per element, and the
shards still spread the final sums over the workers.
"""

import collections
import glob
import os
import zlib

import apache_beam as beam

from tfllm.text import tokenizers

WORD_COUNTS_PREFIX = "word_counts"
_SHARDS = 16


class _CountBatch(beam.DoFn):
    def __init__(self, family):
        self._family = family

    def process(self, documents):
        texts = [text for d in documents for text in (d.text, d.text_pair) if text]
        shards = collections.defaultdict(dict)
        for word, count in tokenizers.count_words(self._family, texts).items():
            shards[zlib.crc32(word.encode("utf-8")) % _SHARDS][word] = count
        yield from shards.items()


class _SumCounts(beam.CombineFn):
    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, total, counts):
        total.update(counts)
        return total

    def merge_accumulators(self, totals):
        totals = iter(totals)
        merged = next(totals)
        for total in totals:
            merged.update(total)
        return merged

    def extract_output(self, total):
        return total


class CountWords(beam.PTransform):
    """PCollection[Document] -> "word<TAB>count" lines, one per distinct word."""

    def __init__(self, family):
        super().__init__()
        self._family = family

    def expand(self, documents):
        return (documents
                | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
                | "CountBatch" >> beam.ParDo(_CountBatch(self._family))
                | "Sum" >> beam.CombinePerKey(_SumCounts())
                | "Format" >> beam.FlatMapTuple(
                    lambda _, counts: (f"{word}\t{count}" for word, count in counts.items())))


def read_word_counts(directory):
    """The counts CountWords wrote to `directory`/word_counts-*.tsv."""
    counts = collections.Counter()
    for path in sorted(glob.glob(os.path.join(directory, f"{WORD_COUNTS_PREFIX}-*.tsv"))):
        with open(path, encoding="utf-8", newline="\n") as f:
            for line in f:
                word, _, count = line.rstrip("\n").rpartition("\t")
                counts[word] += int(count)
    return counts
