"""`python -m tfllm.task_data`: the offline task files, each in its official layout."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tfllm.data import task_corpora

pytestmark = pytest.mark.skipif(not os.path.exists(f"{task_corpora.WORDNET}/data.noun"),
                                reason="Debian's wordnet-base is installed by setup.sh")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tfllm.task_data", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_task_files_are_written_in_their_formats(tmp_path):
    result = _run(f"--output_dir={tmp_path}", "--max_examples=40", "--max_definitions=40")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["definitions.json", "entities.conll",
                                            "paraphrase.csv", "similarity.tsv"]
    with open(tmp_path / "paraphrase.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["label"] for r in rows} == {"paraphrase", "different"}
    with open(tmp_path / "similarity.tsv") as f:
        header = f.readline().rstrip("\n").split("\t")
    assert header == ["index", "genre", "sentence1", "sentence2", "score"]
    assert (tmp_path / "entities.conll").read_text().startswith("-DOCSTART-")
    with open(tmp_path / "definitions.json") as f:
        squad = json.load(f)
    questions = [qa for p in squad["data"][0]["paragraphs"] for qa in p["qas"]]
    assert squad["version"] == "v2.0" and len(questions) >= 40
    assert any(qa["is_impossible"] for qa in questions)
    for paragraph in squad["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            for answer in qa["answers"]:
                start = answer["answer_start"]
                assert paragraph["context"][start:start + len(answer["text"])] == answer["text"]


def test_stray_arguments_exit_2():
    result = _run("extra")
    assert result.returncode == 2 and "Unexpected arguments: extra" in result.stderr
