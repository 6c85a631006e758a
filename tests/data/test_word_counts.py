"""Word counts from a real Beam run equal the counts of the whole corpus in one process."""

import apache_beam as beam
import pytest

from tests.data.beam_helpers import docs
from tfllm.data.word_counts import CountWords, read_word_counts
from tfllm.text import tokenizers

TEXTS = ["The Quick brown fox, the lazy dog.", "Naïve café: don't stop!", "東京 tower\tand\nmore",
         "the the THE"] * 300  # more than one batch of 1024


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_beam_counts_equal_the_counts_of_all_texts(family, tmp_path):
    with beam.Pipeline() as pipeline:
        _ = (pipeline
             | beam.Create(docs(*TEXTS))
             | CountWords(family)
             | beam.io.WriteToText(str(tmp_path / "word_counts"), file_name_suffix=".tsv",
                                   num_shards=3))
    lines = [line for path in tmp_path.glob("word_counts-*.tsv")
             for line in path.read_text(encoding="utf-8").splitlines()]
    words = [line.rpartition("\t")[0] for line in lines]
    assert len(words) == len(set(words))  # shards of words, not of documents
    counts = read_word_counts(str(tmp_path))
    assert counts == tokenizers.count_words(family, TEXTS)
    assert counts["the" if family == "bert" else "The"] == (1500 if family == "bert" else 300)
