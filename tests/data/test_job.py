"""The whole preprocessing job on real text (Debian's fortunes), and its CLI."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfllm.data import clean_corpus, job, output, readers
from tfllm.data.bert_examples import BertExampleConfig
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.sources import SourceConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORTUNES = "/usr/share/games/fortunes"
CATEGORIES = ("science", "work")
SHORT_TEXT_FILTERS = filter_config_from_overrides(
    {"min_words": "3", "min_stop_words": "0", "min_alpha_words_ratio": "0.5"},
    ["c4_lines", "fineweb"])

pytestmark = pytest.mark.skipif(not os.path.exists(f"{FORTUNES}/science"),
                                reason="Debian's fortunes package is installed by setup.sh")


def _config(kind, output_dir, examples, **overrides):
    source = SourceConfig(patterns=tuple(f"{FORTUNES}/{c}" for c in CATEGORIES),
                          split="delimiter", label_from_filename=kind == "classify")
    return job.JobConfig(kind=kind, output_dir=str(output_dir), source=source,
                         filters=SHORT_TEXT_FILTERS, examples=examples, vocab_size=600,
                         num_shards=2, eval_fraction=0.1, **overrides)


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert") / "data"
    config = _config("bert", out, BertExampleConfig(sequence_length=64,
                                                    max_predictions_per_seq=10))
    return config, job.run(config, report=lambda line: None)


def test_bert_job_on_real_fortunes(bert_run):
    config, manifest = bert_run
    stats = manifest.statistics
    assert stats["documents_read"] > 1200  # science 625 + work 630 quotes
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
    removed = sum(v for k, v in stats.items() if k.startswith(("duplicates_", "near_dup")))
    assert stats["documents_kept"] == stats["documents_read"] - dropped - removed
    assert stats["documents_kept"] > 1000
    assert manifest.splits["train"].examples > 1000
    assert manifest.splits["eval"].examples > 50
    assert manifest.tokenizer.file == "vocab.txt"
    assert sorted(os.listdir(config.output_dir)) == [
        "clean", "eval-00000-of-00001.tfrecord.gz", "manifest.json",
        "train-00000-of-00002.tfrecord.gz", "train-00001-of-00002.tfrecord.gz", "vocab.txt"]
    # The reader parses what the job wrote, with the model's input names.
    features, labels = next(iter(readers.make_dataset(config.output_dir, "train", 16)))
    assert features["token_ids"].shape == (16, 64)
    assert labels["mlm_ids"].shape == (16, 10)
    batches = readers.make_dataset(config.output_dir, "train", 16).take(20)
    nsp = np.mean([labels["nsp_labels"].numpy().mean() for _, labels in batches])
    assert 0.35 < nsp < 0.65


def test_rerun_is_skipped_and_other_flags_are_refused(bert_run, tmp_path):
    config, manifest = bert_run
    lines = []
    again = job.run(config, report=lines.append)
    assert again.fingerprint == manifest.fingerprint
    assert "up to date" in lines[0]
    changed = _config("bert", config.output_dir, BertExampleConfig(sequence_length=32))
    with pytest.raises(job.ConfigError, match="already exists"):
        job.run(changed, report=lines.append)
    assert output.read_manifest(config.output_dir) == manifest


def test_same_inputs_give_identical_records_in_process_and_on_two_workers(tmp_path):
    """Byte-identical output whatever the runner's parallelism."""
    outputs = []
    for name, beam_args in (("a", []), ("b", ["--direct_running_mode=multi_processing",
                                              "--direct_num_workers=2"])):
        config = _config("gpt", tmp_path / name, GptExampleConfig(sequence_length=32))
        job.run(config, beam_args, report=lambda line: None)
        outputs.append(config.output_dir)
    for name in sorted(os.listdir(outputs[0])):
        if name.endswith(".tfrecord.gz"):
            first = gzip.open(os.path.join(outputs[0], name)).read()
            assert first == gzip.open(os.path.join(outputs[1], name)).read(), name


def test_classification_job_labels_from_file_names(tmp_path):
    config = _config("classify", tmp_path / "cls", ClassifyExampleConfig(sequence_length=48))
    manifest = job.run(config, report=lambda line: None)
    assert manifest.labels == list(CATEGORIES)
    features, labels = next(iter(readers.make_dataset(config.output_dir, "eval", 8)))
    assert set(labels["labels"].numpy()) <= {0, 1}
    assert features["token_ids"].shape == (8, 48)


def _preprocess(*args, cwd=REPO):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "tfllm.preprocess", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--input=/nonexistent/*"], "Input '/nonexistent/*' matches no file"),
    (["--vocab_sze=100"], "Unknown flag(s) --vocab_sze"),
    (["--input_format=xml"], "--input_format must be one of"),
    (["--filter_overrides=min_wordz=3"], "min_wordz"),
    (["--minhash_bands=7"], "bands"),
    (["--languages=en,xx"], "unknown language code(s) xx"),
    (["--flagfile=/nonexistent.flags"], "nonexistent.flags"),
])
def test_cli_configuration_errors_exit_2_before_work(tmp_path, args, message):
    out = tmp_path / "out"
    result = _preprocess(f"--output_dir={out}", *args)
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


def test_adversarial_inputs_are_counted_never_fatal(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "science").write_bytes(open(f"{FORTUNES}/science", "rb").read())
    (corpus / "empty").write_bytes(b"")
    (corpus / "binary").write_bytes(bytes(range(256)) * 64)
    (corpus / "huge").write_bytes(b"word " * (10 * 1024 * 1024) + b"\n")  # one 50 MB line
    (corpus / "mixed").write_bytes(
        "zero\u200bwidth and \u202eright-to-left\u202c text in a quote\n%\n".encode()
        + b"bad bytes \xff\xfe in the middle of this line\n%\n")
    source = SourceConfig(patterns=(str(corpus / "*"),), split="delimiter")
    config = job.JobConfig(kind="gpt", output_dir=str(tmp_path / "out"), source=source,
                           filters=SHORT_TEXT_FILTERS, examples=GptExampleConfig(32),
                           vocab_size=600, num_shards=1)
    stats = job.run(config, report=lambda line: None).statistics
    assert stats["dropped_too_long"] == 1
    assert stats["undecodable_documents"] >= 2  # the binary file and the bad bytes
    assert stats["zero_width_or_bidi_removed"] == 3
    assert stats["documents_kept"] > 500


def test_tokenizer_sample_ignores_shard_order(tmp_path):
    records = [json.dumps({"doc_id": f"d{i}", "text": f"text {i}"}) for i in range(50)]
    samples = []
    for name, order in (("a", records), ("b", records[::-1])):
        clean = tmp_path / name
        clean.mkdir()
        for shard in range(2):
            with gzip.open(clean / f"part-{shard}.jsonl.gz", "wt") as f:
                f.write("\n".join(order[shard::2]) + "\n")
        samples.append(clean_corpus.clean_sample(str(clean), 20))
    assert samples[0] == samples[1] and len(samples[0]) == 20
    assert len(clean_corpus.clean_sample(str(tmp_path / "a"), 100)) == 50


def test_empty_input_is_a_clear_error_and_leaves_nothing(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    config = job.JobConfig(kind="gpt", output_dir=str(tmp_path / "out"),
                           source=SourceConfig(patterns=(str(tmp_path / "empty.txt"),)),
                           examples=GptExampleConfig(32))
    with pytest.raises(job.ConfigError, match="No document survived cleaning"):
        job.run(config, report=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]
