"""Labelled inputs users bring: CSV (quoting, newlines in cells, a BOM), GLUE's TSV,
JSON Lines pairs; bad rows counted or fatal by --max_bad_rows; pair packing."""

import dataclasses
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfllm import tasks
from tfllm.data import job, readers, schema
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.sources import SourceConfig
from tfllm.errors import ConfigError
from tfllm.tasks.tagging import split_tagged
from tfllm.text.packing import GraphPacker, pack, round_robin_lengths

BERT_SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
GPT_SPECIAL = {"pad": 0, "unk": 1, "end_of_text": 2}

CSV = ('\ufeffsentence,label\n'
       '"Hello, world, said the man to the dog",pos\n'
       '"A cell\nwith a newline, and ""quotes"" in it",neg\n'
       ',pos\n'
       '"only one cell"\n'
       'The cat sat on the mat today,neg\n'
       '\n'
       'The dog sat on the mat today,pos\n')


def _job(tmp_path, name, kind="classify", max_bad_rows=0, **source):
    return job.JobConfig(
        kind=kind, output_dir=str(tmp_path / name), source=SourceConfig(**source),
        filters=filter_config_from_overrides({}, ["all"]), scrub_pii=False,
        dedup=job.DedupConfig(lines=False, near=False), examples=ClassifyExampleConfig(32),
        vocab_size=100, num_shards=1, eval_fraction=0.0, max_bad_rows=max_bad_rows)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def test_csv_quoting_newlines_and_bom_with_bad_rows_counted(tmp_path):
    path = _write(tmp_path, "a.csv", CSV)
    config = _job(tmp_path, "out", max_bad_rows=2, patterns=(path,), format="csv",
                  text_field="sentence", label_field="label")
    manifest = job.run(config, report=lambda line: None)
    texts, pairs, labels = tasks.for_manifest(manifest).split_texts(config.output_dir, "train")
    names = manifest.labels
    assert names == ["neg", "pos"]  # the BOM did not stick to the first column's name
    assert sorted(zip(texts, (names[i] for i in labels))) == sorted([
        ("Hello, world, said the man to the dog", "pos"),
        ('A cell\nwith a newline, and "quotes" in it', "neg"),
        ("The cat sat on the mat today", "neg"), ("The dog sat on the mat today", "pos")])
    assert pairs == [""] * 4
    assert manifest.statistics["bad_rows"] == 2
    with open(os.path.join(config.output_dir, "clean", "bad_rows-00000-of-00001.jsonl")) as f:
        bad = sorted((row["line"], row["reason"]) for row in map(json.loads, f))
    # Physical lines: the quoted newline makes row 2 span lines 3-4.
    assert bad == [(5, "empty text in 'sentence'"), (6, "1 cell(s) where the header has 2")]


def test_too_many_bad_rows_stop_the_job_naming_file_and_line(tmp_path):
    path = _write(tmp_path, "a.csv", CSV)
    config = _job(tmp_path, "out", max_bad_rows=1, patterns=(path,), format="csv",
                  text_field="sentence", label_field="label")
    with pytest.raises(ConfigError, match=rf"2 bad row\(s\).*{path} line 5: empty text"):
        job.run(config, report=lambda line: None)
    assert not os.path.exists(config.output_dir)  # nothing half-written


def test_missing_column_is_named_before_any_work(tmp_path):
    path = _write(tmp_path, "a.csv", CSV)
    config = _job(tmp_path, "out", patterns=(path,), format="csv", text_field="text",
                  label_field="label")
    with pytest.raises(ConfigError, match=r"has no column 'text'; its header has 'sentence'"):
        job.run(config, report=lambda line: None)
    assert not os.path.exists(config.output_dir)


GLUE_TSV = ("index\tgenre\tsentence1\tsentence2\tscore\n"
            '0\tmain-captions\tA plane is taking off.\tAn air plane is taking off.\t5.000\n'
            '1\tmain-captions\tA man says "hi".\tA "man" plays a flute.\t0.760\n'
            '2\tmain-captions\tA man is slicing.\tA man is slicing.\tabout four\n'
            '3\tmain-captions\tA dog runs.\tA cat sleeps.\t0.5\n')


def test_glue_tsv_pairs_for_regression_keep_quote_marks(tmp_path):
    path = _write(tmp_path, "sts.tsv", GLUE_TSV)
    config = _job(tmp_path, "out", kind="regress", max_bad_rows=1, patterns=(path,),
                  format="tsv", text_field="sentence1", text_pair_field="sentence2",
                  label_field="score", label_type="float")
    manifest = job.run(config, report=lambda line: None)
    assert manifest.kind == "regress" and manifest.labels == []
    assert manifest.schema["label_values"] == ("float32", 1)
    texts, pairs, values = tasks.for_manifest(manifest).split_texts(config.output_dir, "train")
    assert sorted(zip(texts, pairs, values)) == sorted([
        ("A plane is taking off.", "An air plane is taking off.", 5.0),
        ('A man says "hi".', 'A "man" plays a flute.', pytest.approx(0.76)),
        ("A dog runs.", "A cat sleeps.", 0.5)])
    assert manifest.statistics["bad_rows"] == 1  # "about four" is not a number


def test_a_label_that_is_not_a_number_fails_regression_with_exit_2(tmp_path):
    path = _write(tmp_path, "sts.tsv", GLUE_TSV)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tfllm.preprocess", "--kind=regress", "--input_format=tsv",
         f"--input={path}", "--text_field=sentence1", "--text_pair_field=sentence2",
         "--label_field=score", f"--output_dir={out}", "--disable_filters=all",
         "--vocab_size=100"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert f"{path} line 4: label 'about four' is not a number" in " ".join(
        result.stderr.split())
    assert "Traceback" not in result.stderr and not out.exists()


def test_pairs_are_packed_as_segments_and_deduplicated_as_pairs(tmp_path):
    rows = [{"q": "same question", "a": "first answer", "y": "x"},
            {"q": "same question", "a": "second answer", "y": "y"},
            {"q": "same question", "a": "first answer", "y": "x"},  # an exact duplicate
            {"q": "other", "a": "third", "y": "y"}]
    path = _write(tmp_path, "pairs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    config = _job(tmp_path, "out", patterns=(path,), format="jsonl", text_field="q",
                  text_pair_field="a", label_field="y")
    manifest = job.run(config, report=lambda line: None)
    assert manifest.statistics["duplicates_exact_documents"] == 1
    features = manifest.schema
    files = readers.split_files(config.output_dir, "train")
    examples = [schema.parse_example(features, r.numpy())
                for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    assert len(examples) == 3
    from tfllm.text.tokenizers import load_tokenizer
    tokenizer = load_tokenizer(os.path.join(config.output_dir, "vocab.txt"))
    for example in examples:
        text = example["text"][0].decode()
        pair = example["text_pair"][0].decode()
        a, b = tokenizer.tokenize([text, pair])
        special = tokenizer.special_ids
        length = 2 + len(a) + len(b) + 1
        assert example["input_ids"][:length].tolist() == [
            special["cls"], *a, special["sep"], *b, special["sep"]]
        assert example["segment_ids"].tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1) + \
            [0] * (32 - length)
        assert example["input_mask"].sum() == length


def test_round_robin_trimming_hands_out_one_token_at_a_time():
    assert round_robin_lengths([10, 10], 7) == [4, 3]
    assert round_robin_lengths([2, 10], 7) == [2, 5]
    assert round_robin_lengths([10, 1], 7) == [6, 1]
    assert round_robin_lengths([3, 2], 9) == [3, 2]


@pytest.mark.parametrize("special", [BERT_SPECIAL, GPT_SPECIAL])
def test_python_packing_equals_the_exported_graph_packer(special):
    packer = GraphPacker(12, special)
    rng = random.Random(0)
    for _ in range(100):
        segments = [[rng.randint(5, 50) for _ in range(rng.randint(0, 15))]
                    for _ in range(rng.choice([1, 2]))]
        graph = packer(*(tf.ragged.constant([s], dtype=tf.int32) for s in segments))
        assert tuple(np.asarray(t)[0].tolist() for t in graph) == pack(segments, 12, special)


def test_gpt_pairs_are_joined_by_end_of_text_with_one_segment():
    ids, mask, segments = pack([[7, 8], [9]], 6, GPT_SPECIAL)
    assert ids == [7, 8, 2, 9, 2, 0] and mask == [1, 1, 1, 1, 1, 0]
    assert segments == [0] * 6


def test_serving_and_packing_import_no_beam():
    code = ("import sys, tfllm.serve, tfllm.export.modules, tfllm.text.packing; "
            "sys.exit('apache_beam' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


CONLL = ("-DOCSTART- -X- -X- O\n\n"
         "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n\n"
         "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n"
         "-DOCSTART- -X- -X- O\n\n"
         "BRUSSELS NNP B-NP B-LOC\n1996-08-22 CD\n\n"  # a line missing two columns
         "Café NNP B-NP S-LOC\n")


def test_conll_sentences_with_bad_lines_counted(tmp_path):
    path = _write(tmp_path, "train.conll", CONLL)
    config = job.JobConfig(
        kind="tag", output_dir=str(tmp_path / "out"),
        source=SourceConfig(patterns=(path,), format="conll"),
        filters=filter_config_from_overrides({}, ["all"]), scrub_pii=False,
        dedup=job.DedupConfig(lines=False, near=False), examples=ClassifyExampleConfig(48),
        vocab_size=100, num_shards=1, eval_fraction=0.0, max_bad_rows=1)
    manifest = job.run(config, report=lambda line: None)
    assert manifest.labels == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O", "S-LOC"]
    assert manifest.statistics["bad_rows"] == 1
    words, tags = split_tagged(config.output_dir, "train")
    assert sorted(zip(map(tuple, words), map(tuple, tags))) == [
        (("Café",), ("S-LOC",)), (("EU", "rejects", "German", "call"),
                                 ("B-ORG", "O", "B-MISC", "O")),
        (("Peter", "Blackburn"), ("B-PER", "I-PER"))]
    # Each word's tag id sits on its first piece only.
    from tfllm.text.tokenizers import load_tokenizer
    tokenizer = load_tokenizer(os.path.join(config.output_dir, "vocab.txt"))
    features = manifest.schema
    for record in tf.data.TFRecordDataset(readers.split_files(config.output_dir, "train"),
                                          compression_type="GZIP"):
        example = schema.parse_example(features, record.numpy())
        sentence = example["text"][0].decode().split(" ")
        expected = [-1]
        for word, tag in zip(sentence, example["tags"][0].decode().split(" ")):
            pieces = tokenizer.tokenize([word])[0] or [0]
            expected += [manifest.labels.index(tag)] + [-1] * (len(pieces) - 1)
        expected += [-1] * (48 - len(expected))
        assert example["tag_ids"].tolist() == expected
    config = dataclasses.replace(config, max_bad_rows=0, output_dir=str(tmp_path / "out2"))
    with pytest.raises(ConfigError, match=rf"{path} line 14: 2 column\(s\) where the file's "
                                          "token lines have 4"):
        job.run(config, report=lambda line: None)


@pytest.mark.parametrize("kind, source, message", [
    ("regress", {"format": "tsv", "text_field": "s", "label_type": "float"},
     "--kind=regress needs --label_field"),
    ("tag", {"format": "csv", "text_field": "s"}, "--kind=tag reads --input_format=conll"),
    ("classify", {"format": "conll"}, "conll files make tag data"),
    ("qa", {"format": "jsonl"}, "--kind=qa reads --input_format=squad"),
    ("classify", {"format": "squad"}, "squad files make qa data"),
])
def test_task_kinds_refuse_inputs_they_cannot_read(tmp_path, kind, source, message):
    with pytest.raises(ConfigError, match=message):
        _job(tmp_path, "out", kind=kind, patterns=("x",), **source)
