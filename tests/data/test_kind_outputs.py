"""The data job writes the same records for every task kind as before the task registry.

`kind_outputs.json` holds, per kind, digests of what the job wrote from the small
inputs below: each split's uncompressed records in file order, the vocabulary and
the label list. It was recorded with the code before the kinds moved into
`tfllm/tasks/` (git show 9a2675f); any change to a kind's records fails here.
"""

import hashlib
import json
import os
import random

import pytest
import tensorflow as tf

from tfllm.data import job
from tfllm.data.bert_examples import BertExampleConfig
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.qa_examples import QaExampleConfig
from tfllm.data.sources import SourceConfig

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kind_outputs.json")
WORDS = ("the cat dog sat on a mat and ran to of in house river bird sang at night "
         "morning green blue red small big old new quick slow happy sad tree stone water "
         "fire wind city road friend book letter wrote read found lost saw heard").split()


def _sentence(rng, words=8):
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _inputs(directory):
    """{kind: (source fields, example config)} over files written under `directory`."""
    rng = random.Random(7)
    text = "\n%\n".join(" ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))
                        for _ in range(60))
    (directory / "corpus.txt").write_text(text + "\n")
    with open(directory / "pairs.jsonl", "w") as f:
        for i in range(60):
            f.write(json.dumps({"text": _sentence(rng), "pair": _sentence(rng),
                                "label": ("yes", "no", "maybe")[i % 3]}) + "\n")
    with open(directory / "scores.csv", "w") as f:
        f.write("sentence,score\n")
        for i in range(60):
            f.write(f"{_sentence(rng)},{(i % 11) / 2:.1f}\n")
    with open(directory / "tags.conll", "w") as f:
        for _ in range(60):
            for word in _sentence(rng).rstrip(".").split():
                f.write(f"{word} {'B-X' if word.lower() in ('cat', 'dog') else 'O'}\n")
            f.write("\n")
    paragraphs = []
    for i in range(20):
        context = " ".join(_sentence(rng) for _ in range(4))
        answer = context.split()[3]
        qas = [{"id": f"q{i}", "question": f"Which word is {answer}?",
                "answers": [{"text": answer, "answer_start": context.index(answer)}]},
               {"id": f"n{i}", "question": "Where is the moon?", "answers": [],
                "is_impossible": True}]
        paragraphs.append({"context": context, "qas": qas})
    (directory / "squad.json").write_text(json.dumps(
        {"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    corpus = {"patterns": ("corpus.txt",), "split": "delimiter"}
    return {
        "bert": (corpus, BertExampleConfig(sequence_length=32, max_predictions_per_seq=5)),
        "gpt": (corpus, GptExampleConfig(sequence_length=16)),
        "classify": ({"patterns": ("pairs.jsonl",), "format": "jsonl",
                      "text_pair_field": "pair", "label_field": "label"},
                     ClassifyExampleConfig(24)),
        "regress": ({"patterns": ("scores.csv",), "format": "csv",
                     "text_field": "sentence", "label_field": "score", "label_type": "float"},
                    ClassifyExampleConfig(16)),
        "tag": ({"patterns": ("tags.conll",), "format": "conll"},
                ClassifyExampleConfig(16)),
        "qa": ({"patterns": ("squad.json",), "format": "squad"},
               QaExampleConfig(48, 16, 12)),
    }


def _digests(output_dir):
    digests = {}
    for split in ("train", "eval"):
        digest = hashlib.sha256()
        names = sorted(n for n in os.listdir(output_dir) if n.startswith(f"{split}-"))
        for name in names:
            for record in tf.data.TFRecordDataset(os.path.join(output_dir, name),
                                                  compression_type="GZIP"):
                digest.update(record.numpy())
        digests[split] = f"{len(names)}:{digest.hexdigest()}"
    for name in ("vocab.txt", "tokenizer.model", "labels.txt"):
        path = os.path.join(output_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digests[name] = hashlib.sha256(f.read()).hexdigest()
    return digests


def kind_outputs(directory):
    """{kind: digests} of the job run on every kind's small input, read by names relative
    to `directory` (documents' ids start with their file's path, and ids decide splits,
    shards and order)."""
    results = {}
    previous = os.getcwd()
    os.chdir(directory)
    try:
        results = _run_every_kind(directory)
    finally:
        os.chdir(previous)
    return results


def _run_every_kind(directory):
    results = {}
    for kind, (source, examples) in _inputs(directory).items():
        config = job.JobConfig(
            kind=kind, output_dir=str(directory / kind), source=SourceConfig(**source),
            filters=filter_config_from_overrides({}, ["all"]), examples=examples,
            vocab_size=320, num_shards=2, eval_fraction=0.2)
        job.run(config, report=lambda line: None)
        results[kind] = _digests(config.output_dir)
    return results


@pytest.mark.skipif(not os.path.exists(GOLDEN), reason="recorded once, by hand")
def test_every_kind_writes_the_records_it_wrote_before(tmp_path):
    with open(GOLDEN) as f:
        expected = json.load(f)
    assert kind_outputs(tmp_path) == expected
