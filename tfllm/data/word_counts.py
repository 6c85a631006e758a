"""Word counts of the clean corpus, for the tokenizer trainers, as a Beam combine.

The trainers need only how often each word occurs, never the documents, so the
corpus is counted where it lies (on every worker, in bundles) and only the table
of distinct words reaches the driver: it grows with the vocabulary of the corpus,
not with its size. Each bundle's counts travel as a few tables (one per shard of the
words) rather than one element per word: Beam's cost is per element, and the
shards still spread the final sums over the workers. Texts are counted a batch at a
time inside the bundle (BERT's pretokenizer is a TensorFlow op), into one table per
bundle, so a word is sharded and merged once per bundle rather than once per batch.
"""

import collections
import glob
import os
import zlib

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from tfllm.text import tokenizers

WORD_COUNTS_PREFIX = "word_counts"
_SHARDS = 16
_BATCH_TEXTS = 1024


class _CountBundle(beam.DoFn):
    def __init__(self, family):
        self._family = family

    def start_bundle(self):
        self._counts = collections.Counter()
        self._texts = []

    def process(self, document):
        self._texts.extend(text for text in (document.text, document.text_pair) if text)
        if len(self._texts) >= _BATCH_TEXTS:
            self._count_texts()

    def finish_bundle(self):
        self._count_texts()
        shards = collections.defaultdict(dict)
        for word, count in self._counts.items():
            shards[zlib.crc32(word.encode("utf-8")) % _SHARDS][word] = count
        for shard in shards.items():
            yield WindowedValue(shard, MIN_TIMESTAMP, [GlobalWindow()])

    def _count_texts(self):
        self._counts.update(tokenizers.words(self._family, self._texts))
        self._texts = []


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
    """PCollection[Document] -> blocks of "word<TAB>count" lines, one block per shard of
    the words and one line per distinct word. A block is one element, so writing the
    counts (with WriteToText) costs a few elements rather than one per word."""

    def __init__(self, family):
        super().__init__()
        self._family = family

    def expand(self, documents):
        return (documents
                | "CountBundle" >> beam.ParDo(_CountBundle(self._family))
                | "Sum" >> beam.CombinePerKey(_SumCounts())
                | "Format" >> beam.MapTuple(
                    lambda _, counts: "\n".join(f"{word}\t{count}"
                                                for word, count in counts.items())))


def read_word_counts(directory):
    """The counts CountWords wrote to `directory`/word_counts-*.tsv."""
    counts = collections.Counter()
    for path in sorted(glob.glob(os.path.join(directory, f"{WORD_COUNTS_PREFIX}-*.tsv"))):
        with open(path, encoding="utf-8", newline="\n") as f:
            for line in f:
                word, _, count = line.rstrip("\n").rpartition("\t")
                counts[word] += int(count)
    return counts
