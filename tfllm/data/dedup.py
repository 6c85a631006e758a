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
    return _WHITESPACE.sub(" ", line.strip().lower())


def _keep_first_document(keyed_group):
    _, documents = keyed_group
    documents = sorted(documents, key=lambda d: d.doc_id)
    if len(documents) > 1:
        counter("duplicates_exact_documents").inc(len(documents) - 1)
    return documents[0]


class DeduplicateDocuments(beam.PTransform):
    """Keeps one document (the smallest id) per normalised-text hash."""

    def expand(self, documents):
        return (documents
                | "KeyByHash" >> beam.Map(lambda d: (normalized_hash(d.text), d))
                | "GroupByHash" >> beam.GroupByKey()
                | "KeepFirst" >> beam.Map(_keep_first_document))


def _later_occurrences(keyed_group):
    """(doc_id, line_index) of every occurrence of a line but the first."""
    _, places = keyed_group
    places = sorted(places)
    return places[1:]


def _rebuild(joined):
    doc_id, groups = joined
    for document in groups["documents"]:
        removed = set(groups["removed"])
        if not removed:
            yield document
            continue
        lines = [line for i, line in enumerate(document.text.split("\n")) if i not in removed]
        counter("duplicate_lines_removed").inc(len(removed))
        text = "\n".join(lines).strip()
        if not text:
            counter("dropped_empty_after_line_dedup").inc()
            continue
        yield document._replace(text=text)


class DeduplicateLines(beam.PTransform):
    """C4-style: a line seen elsewhere in the corpus survives only at its first place.

    Lines shorter than `min_line_chars` (greetings, short attributions) are kept.
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
