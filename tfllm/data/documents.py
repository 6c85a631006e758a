"""The element that flows through the preprocessing pipeline, and its counters."""

import typing

import apache_beam as beam

COUNTER_NAMESPACE = "tfllm.data"


class Document(typing.NamedTuple):
    """One document of the corpus.

    `doc_id` is stable across runs (source file + position in it), so every
    stage that must choose between documents can do so deterministically.
    """

    doc_id: str
    text: str
    source: str = ""
    label: str = ""
    undecodable_bytes: int = 0  # bytes replaced by U+FFFD when the source was decoded
    language: str = ""  # ISO 639-1 code, when language identification ran
    language_score: float = 0.0  # the identifier's probability of that language
    text_pair: str = ""  # the second text of a sentence-pair example (segment B)


def counter(name):
    """A Beam counter in the namespace the preprocess summary and manifest read."""
    return beam.metrics.Metrics.counter(COUNTER_NAMESPACE, name)
