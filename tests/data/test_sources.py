import gzip
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tfllm.data.sources import (ReadDocuments, SourceConfig, decode, label_from_path,
                                match_inputs)
from tfllm.errors import ConfigError


def _read(config, check):
    with TestPipeline() as pipeline:
        documents = pipeline | ReadDocuments(config)
        check(documents)


def _texts(documents):
    return documents | beam.Map(lambda d: d.text)


def test_fortune_style_delimiter_plain_and_gzip(tmp_path):
    body = "First quote\nover two lines.\n%\nSecond quote.\n%\n%\nThird.\n"
    (tmp_path / "people").write_text(body)
    with gzip.open(tmp_path / "work.gz", "wt") as f:
        f.write(body)
    config = SourceConfig(patterns=(str(tmp_path / "*"),), split="delimiter",
                          label_from_filename=True)
    expected = ["First quote\nover two lines.\n", "Second quote.\n", "Third.\n"]
    _read(config, lambda docs: assert_that(_texts(docs), equal_to(expected * 2)))
    _read(config, lambda docs: assert_that(docs | beam.Map(lambda d: d.label),
                                           equal_to(["people"] * 3 + ["work"] * 3),
                                           label="labels"))


@pytest.mark.parametrize("split, expected", [
    ("blank_lines", ["a b\nc\n", "d\n"]),
    ("line", ["a b\n", "c\n", "d\n"]),
    ("file", ["a b\nc\n\n\nd\n"]),
])
def test_text_splits(tmp_path, split, expected):
    (tmp_path / "doc.txt").write_text("a b\nc\n\n\nd\n")
    config = SourceConfig(patterns=(str(tmp_path / "doc.txt"),), split=split)
    _read(config, lambda docs: assert_that(_texts(docs), equal_to(expected)))


WORDNET_DATA = (
    "  1 This software and database is being provided to you, the LICENSEE, by\n"
    "00001740 00 a 01 able 0 005 = 05207437 n 0000 | (usually followed by `to') having "
    "the necessary means; \"able to swim\"  \n"
    "00002098 00 a 02 abaxial 0 dorsal(a) 4 002 ;c 06037666 n 0000 | facing away from "
    "the axis of an organ  \n"
    "00002312 00 a 01 long_ago 0 000 | in the past  \n")


def test_split_by_file_reads_each_corpus_in_its_own_layout(tmp_path):
    (tmp_path / "science").write_text("One quote.\n%\nTwo quote.\n")
    (tmp_path / "jargon.txt").write_text("Entry one\ngoes on.\n\nEntry two.\n")
    (tmp_path / "data.adj").write_text(WORDNET_DATA)
    config = SourceConfig(patterns=(str(tmp_path / "*"),), split="delimiter",
                          split_by_file=(("jargon*", "blank_lines"), ("data.*", "wordnet")))
    expected = ["One quote.\n", "Two quote.\n", "Entry one\ngoes on.\n", "Entry two.\n",
                "able: (usually followed by `to') having the necessary means; "
                "\"able to swim\"\n",
                "abaxial, dorsal: facing away from the axis of an organ\n",
                "long ago: in the past\n"]
    _read(config, lambda docs: assert_that(_texts(docs), equal_to(expected)))


def test_jsonl_counts_bad_lines_and_reads_labels(tmp_path):
    lines = [json.dumps({"body": "good one", "topic": "a"}), "{not json",
             json.dumps({"other": "no text"}), json.dumps([1, 2]),
             "[" * 100_000 + "]" * 100_000, json.dumps({"body": "good two", "topic": 7})]
    with gzip.open(tmp_path / "data.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    config = SourceConfig(patterns=(str(tmp_path / "data.jsonl.gz"),), format="jsonl",
                          text_field="body", label_field="topic")
    pipeline = TestPipeline()
    documents = pipeline | ReadDocuments(config)
    assert_that(documents | beam.Map(lambda d: (d.text, d.label)),
                equal_to([("good one", "a"), ("good two", "7")]))
    result = pipeline.run()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["jsonl_invalid_lines"] == 2  # bad JSON and the deeply nested line
    assert counters["jsonl_missing_text_field"] == 2
    assert counters["documents_read"] == 2


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xc3\xa9 ok\n\nbroken \xff\xfe bytes\n")
    config = SourceConfig(patterns=(str(tmp_path / "bad.txt"),))
    _read(config, lambda docs: assert_that(
        docs | beam.Map(lambda d: (d.text, d.undecodable_bytes)),
        equal_to([("café ok\n", 0), ("broken \ufffd\ufffd bytes\n", 2)])))


def test_decode_keeps_valid_replacement_characters():
    assert decode("\ufffd fine".encode()) == ("\ufffd fine", 0)


def test_label_from_path():
    assert label_from_path("/usr/share/games/fortunes/people") == "people"
    assert label_from_path("gs://bucket/news.jsonl.gz") == "news"


def test_match_inputs_sorted_with_exclusions_and_clear_errors(tmp_path):
    for name in ("b", "a", "a.dat"):
        (tmp_path / name).write_text("x")
    files = match_inputs([str(tmp_path / "*")], exclude=("*.dat",))
    assert [f["path"].rsplit("/", 1)[1] for f in files] == ["a", "b"]
    assert all(f["size"] == 1 for f in files)
    with pytest.raises(ConfigError, match="matches no file"):
        match_inputs([str(tmp_path / "missing*")])


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "xml"}, "--input_format must be one of"),
    ({"split": "paragraphs"}, "--text_split must be one of"),
    ({"patterns": ()}, "No input given"),
    ({"split_by_file": (("data.*", "synsets"),)}, "--split_by_file entry data.\\*=synsets"),
])
def test_bad_source_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SourceConfig(**{"patterns": ("x",), **kwargs})


def test_tfds_dataset_prepared_locally(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    texts = ["first local document", "second local document"]
    builder = tfds.dataset_builders.TfDataBuilder(
        name="tinytext", config="default", version="1.0.0", data_dir=str(tmp_path),
        split_datasets={"train": tf.data.Dataset.from_tensor_slices(
            {"text": texts, "label": [0, 1]})},
        features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["neg", "pos"])}))
    builder.download_and_prepare()
    config = SourceConfig(patterns=("tinytext",), format="tfds", label_field="label",
                          tfds_data_dir=str(tmp_path))
    _read(config, lambda docs: assert_that(docs | beam.Map(lambda d: (d.text, d.label)),
                                           equal_to([(texts[0], "neg"), (texts[1], "pos")])))
    with pytest.raises(ConfigError, match="not prepared .* Nothing is downloaded"):
        _read(SourceConfig(patterns=("mnist",), format="tfds", tfds_data_dir=str(tmp_path)),
              lambda docs: None)
