"""Faults injected into the Beam preprocessing job: killed half-way, then re-run."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

FORTUNES = "/usr/share/games/fortunes"
pytestmark = pytest.mark.skipif(not os.path.exists(f"{FORTUNES}/science"),
                                reason="Debian's fortunes package is installed by setup.sh")
FLAGS = ["--kind=gpt", f"--input={FORTUNES}/science,{FORTUNES}/work", "--text_split=delimiter",
         "--filter_overrides=min_words=3,min_stop_words=0", "--vocab_size=400",
         "--disable_filters=curly_brace,top_ngrams,c4_lines,fineweb", "--sequence_length=32",
         "--num_shards=2"]


def _command(output_dir):
    return [sys.executable, "-u", "-m", "tfllm.preprocess", *FLAGS, f"--output_dir={output_dir}"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def _digests(directory):
    """sha256 of every file the job wrote (the TFRecords and tokenizer byte for byte);
    the cleaned corpus and its word counts as their sorted lines, since which worker
    wrote a document or a word to which part may vary; the manifest without timings
    and the fields that hold the output path."""
    digests, clean_lines = {}, []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if os.path.basename(root) == "clean":
                with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                    clean_lines += [(name.split("-")[0], line)
                                    for line in f.read().splitlines()]
                continue
            with open(path, "rb") as f:
                data = f.read()
            if name == "manifest.json":
                manifest = json.loads(data)
                for volatile in ("elapsed_seconds", "documents_per_second", "config",
                                 "fingerprint"):
                    manifest.pop(volatile)
                data = json.dumps(manifest, sort_keys=True).encode()
            digests[os.path.relpath(path, directory)] = hashlib.sha256(data).hexdigest()
    digests["clean"] = hashlib.sha256(repr(sorted(clean_lines)).encode()).hexdigest()
    return digests


@pytest.mark.parametrize("stage", ["[1/3]", "[3/3]"])
def test_a_job_killed_half_way_leaves_nothing_complete_looking_and_reruns_identically(
        tmp_path, stage):
    reference = tmp_path / "reference"
    assert subprocess.run(_command(reference), env=_env(), capture_output=True,
                          timeout=300).returncode == 0
    output = tmp_path / "out"
    process = subprocess.Popen(_command(output), env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith(stage):  # the cleaning pipeline or the writing pipeline runs
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not output.exists(), "a killed job must not leave a complete-looking directory"
    rerun = subprocess.run(_command(output), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _digests(output) == _digests(reference)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out.tmp")]
