"""Stage 5: exact deduplication of documents and of lines repeated across the corpus.

Both keep the first occurrence by document id, so the result does not depend on
the order in which a runner delivers elements.
"""

import hashlib
import re

import apache_beam as beam

from tfllm.data.documents import counter

_PUNCTUATION = re.compile(r"[^\w\s]")
_WHITESPACE = re.compile(r"\s+")


def normalized_hash(text):
    """Digest of the text lowercased, without punctuation, whitespace collapsed."""
    key = _WHITESPACE.sub(" ", _PUNCTUATION.sub("", text.lower())).strip()
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _line_key(line):
    """128-bit digest of the line lowercased with whitespace collapsed: a short shuffle key
    whose collisions are negligible even over billions of lines."""
    key = _WHITESPACE.sub(" ", line.strip().lower())
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


class _FirstDocument(beam.CombineFn):
    """(document with the smallest id, number of documents): a combiner, so a hash shared
    by millions of copies never gathers them on one worker."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, document):
        first, count = accumulator
        if first is None or document.doc_id < first.doc_id:
            first = document
        return first, count + 1

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        firsts = [first for first, _ in accumulators if first is not None]
        return (min(firsts, key=lambda d: d.doc_id, default=None),
                sum(count for _, count in accumulators))

    def extract_output(self, accumulator):
        return accumulator


def _keep_first_document(keyed):
    _, (first, count) = keyed
    if count > 1:
        counter("duplicates_exact_documents").inc(count - 1)
    return first


def _document_key(document):
    """A sentence pair is a duplicate only when both of its texts are."""
    key = normalized_hash(document.text)
    return key + normalized_hash(document.text_pair) if document.text_pair else key


class DeduplicateDocuments(beam.PTransform):
    """Keeps one document (the smallest id) per normalised-text hash (of both texts of
    a pair)."""

    def expand(self, documents):
        return (documents
                | "KeyByHash" >> beam.Map(lambda d: (_document_key(d), d))
                | "FirstPerHash" >> beam.CombinePerKey(_FirstDocument())
                | "KeepFirst" >> beam.Map(_keep_first_document))


def _later_occurrences(keyed_group):
    """(doc_id, line_index) of every occurrence of a line but the first.

    Two passes over the grouped places instead of a sort, so a boilerplate line
    repeated millions of times is never held in memory at once.
    """
    _, places = keyed_group
    first = min(places)
    for place in places:
        if place != first:
            yield place


def _rebuild(joined):
    _, groups = joined
    removed = set(groups["removed"])
    for document in groups["documents"]:
        if not removed:
            yield document
            continue
        counter("duplicate_lines_removed").inc(len(removed))
        lines = document.text.split("\n")
        text = "\n".join(line for i, line in enumerate(lines) if i not in removed).strip()
        if not text:
            counter("dropped_empty_after_line_dedup").inc()
            continue
        yield document._replace(text=text)


class DeduplicateLines(beam.PTransform):
    """C4-style: a line seen elsewhere in the corpus survives only at its first place,
    the smallest (doc_id, line_index).

    Lines are compared stripped, lowercased, whitespace collapsed. Lines shorter
    than `min_line_chars` (greetings, short attributions) are never touched.
    Documents left empty are dropped.
    """

    def __init__(self, min_line_chars=20):
        super().__init__()
        self._min_line_chars = min_line_chars

    def expand(self, documents):
        min_chars = self._min_line_chars

        def lines(document):
            for index, line in enumerate(document.text.split("\n")):
                if len(line.strip()) >= min_chars:
                    yield _line_key(line), (document.doc_id, index)

        removed = (documents
                   | "Lines" >> beam.FlatMap(lines)
                   | "GroupLines" >> beam.GroupByKey()
                   | "LaterOccurrences" >> beam.FlatMap(_later_occurrences))
        keyed = documents | "KeyById" >> beam.Map(lambda d: (d.doc_id, d))
        return ({"documents": keyed, "removed": removed}
                | "Join" >> beam.CoGroupByKey()
                | "Rebuild" >> beam.FlatMap(_rebuild))
