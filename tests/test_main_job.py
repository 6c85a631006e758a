"""`python -m tfllm` end to end on a small real sample: both pipelines (Beam data,
training, evaluation, infra validation, push), the server answering a generation and
a classification, the re-run served from the cache, and the Evaluator's verdicts on
the model it trained."""

import json
import os
import subprocess
import sys

import pytest

from tfllm.components import Evaluator
from tfllm.components.artifacts import Artifact
from tfllm.components.model import BLESSED, NOT_BLESSED
from tfllm.components.runner import Context
from tfllm.components.store import MetadataStore

FORTUNES = "/usr/share/games/fortunes"
WORDNET_ADVERBS = "/usr/share/wordnet/data.adv"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(f"{FORTUNES}/science") and os.path.exists(WORDNET_ADVERBS)),
    reason="Debian's fortunes and wordnet-base packages are installed by setup.sh")

CLEANING = ["--text_split=delimiter", "--delimiter=%",
            "--filter_overrides=min_words=3,min_stop_words=0,min_alpha_words_ratio=0.5",
            "--disable_filters=curly_brace,top_ngrams,c4_lines,fineweb", "--num_shards=1"]
TRAINING = ["--global_batch_size=16", "--learning_rate=3e-3", "--warmup_steps=3",
            "--log_every=10", "--eval_steps=2"]
FLAG_FILES = {
    "data_gpt": ["--kind=gpt", f"--input={FORTUNES}/science,{WORDNET_ADVERBS}",
                 "--split_by_file=data.*=wordnet", *CLEANING, "--vocab_size=400",
                 "--sequence_length=32"],
    "gpt": ["--preset=gpt_tiny", "--train_steps=30", "--eval_every=30",
            "--checkpoint_every=30", *TRAINING],
    "data_bert": ["--kind=bert", f"--input={FORTUNES}/science,{FORTUNES}/work", *CLEANING,
                  "--vocab_size=400", "--sequence_length=48", "--max_predictions_per_seq=8"],
    "bert": ["--preset=bert_tiny", "--train_steps=20", "--eval_every=20",
             "--checkpoint_every=20", *TRAINING],
    "data_classify": ["--kind=classify", f"--input={FORTUNES}/science,{FORTUNES}/work",
                      "--label_from_filename", *CLEANING, "--sequence_length=48",
                      "--eval_fraction=0.2"],
    "classify": ["--preset=bert_tiny", "--train_steps=30", "--eval_every=30",
                 "--checkpoint_every=30", *TRAINING],
}


def _write_flag_files(directory):
    paths = {name: directory / f"{name}.flags" for name in FLAG_FILES}
    for name, lines in FLAG_FILES.items():
        paths[name].write_text("# a test's tiny settings\n" + "\n".join(lines) + "\n")
    gpt = directory / "pipeline_gpt.flags"
    gpt.write_text(f"--data_flagfile={paths['data_gpt']}\n--pretrain_flagfile={paths['gpt']}\n"
                   "--max_perplexity=1e6\n--gate=perplexity <= 1e6 * bigram\n"
                   "--max_new_tokens=8\n--min_examples=10\n")
    bert = directory / "pipeline_bert.flags"
    bert.write_text(f"--pretrain_data_flagfile={paths['data_bert']}\n"
                    f"--pretrain_flagfile={paths['bert']}\n"
                    f"--classify_data_flagfile={paths['data_classify']}\n"
                    f"--finetune_flagfile={paths['classify']}\n--baseline=\n--min_examples=10\n"
                    "--pretrain_gate=accuracy>=unigram-1\n--gate=accuracy>=0\n")
    return gpt, bert


def _main_job(*args):
    return subprocess.run([sys.executable, "-m", "tfllm", *args], capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _states(root, pipeline):
    with open(root / "artifacts" / pipeline / "last_run.json") as f:
        return {c["id"]: c["state"] for c in json.load(f)["components"]}


def _answers(stdout):
    return [line.strip() for line in stdout.splitlines() if ":generate " in line
            or ":predict " in line]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("main_job")
    gpt, bert = _write_flag_files(root)
    args = [f"--gpt_flagfile={gpt}", f"--bert_flagfile={bert}",
            f"--artifacts={root / 'artifacts'}", f"--export_base={root / 'export'}"]
    first = _main_job(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    states = {p: _states(root, p) for p in ("gpt_pretrain", "bert_pretrain_finetune")}
    second = _main_job(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    return root, first, states, second


def test_both_pipelines_run_push_and_the_server_answers(runs):
    root, first, states, _ = runs
    assert set(states["gpt_pretrain"].values()) == {"ran"}
    assert set(states["bert_pretrain_finetune"].values()) == {"ran"}
    assert len(states["bert_pretrain_finetune"]) == 13
    for name in ("gpt_generator", "bert_classifier"):
        assert f": pushed as {root / 'export' / name / '1'}" in first.stdout
        assert os.path.exists(root / "export" / name / "1" / "saved_model.pb")
    generation, classification = _answers(first.stdout)
    prefix = "gRPC gpt_generator:generate  'Computers are' -> '"
    assert generation.startswith(prefix) and len(generation) > len(prefix) + 1
    label = classification.split(" -> ")[1].split()[0]
    assert label in ("science", "work")
    assert "TensorBoard logs:" in first.stdout and "metrics.json" in first.stdout
    assert "plots: training_curves.png" in first.stdout
    for gate in ("perplexity <= 1e6 * bigram", "accuracy>=unigram-1", "accuracy>=0"):
        assert f"  gate {gate}: " in first.stdout
    assert "bert_classifier (accuracy " in first.stdout
    assert first.stdout.count("(passed)") == 4  # with --max_perplexity's, and none failed


def test_the_rerun_comes_from_the_cache_and_answers_the_same(runs):
    root, first, _, second = runs
    assert set(_states(root, "gpt_pretrain").values()) == {"cached"}
    assert set(_states(root, "bert_pretrain_finetune").values()) == {"cached"}
    assert _answers(second.stdout) == _answers(first.stdout)  # seeded sampling
    assert sorted(os.listdir(root / "export" / "gpt_generator")) == ["1"]


def _evaluate(root, tmp_path, pipeline="gpt_pretrain", metric="perplexity",
              push_name="gpt_generator", **criteria):
    store = MetadataStore(str(root / "artifacts" / pipeline / "metadata.sqlite"))
    model_uri = store.artifacts_of_type("Model")[-1][0]  # the oldest: BERT's pretrained one
    evaluator = Evaluator(None, metric, push_name=push_name, **criteria)
    output = str(tmp_path / "evaluation")
    properties = evaluator.execute({"model": Artifact(model_uri, "Model", "")},
                                   {"evaluation": output}, Context(None, store, print))
    with open(os.path.join(output, "metrics.json")) as f:
        metrics = json.load(f)
    return output, properties["evaluation"], metrics


def test_the_evaluator_blesses_only_what_meets_every_criterion(runs, tmp_path):
    root, *_ = runs
    output, verdict, metrics = _evaluate(root, tmp_path, threshold=1.0, baseline="bigram")
    assert not verdict["blessed"] and os.path.exists(os.path.join(output, NOT_BLESSED))
    assert any(r.startswith("perplexity <= 1.0 failed: ") for r in verdict["reasons"])
    # The pushed model's perplexity is found through the lineage: the same model ties it.
    results = metrics["results"]
    assert verdict["pushed_model_metric"] == pytest.approx(results["model"]["perplexity"])
    bigram_beaten = results["model"]["perplexity"] < results["bigram"]["perplexity"]
    assert any(r.startswith("perplexity < bigram failed") for r in verdict["reasons"]) \
        != bigram_beaten
    output, verdict, _ = _evaluate(root, tmp_path / "loose", threshold=1e6)
    assert verdict["blessed"] and os.path.exists(os.path.join(output, BLESSED))


def test_the_gpt_gate_against_the_bigram_is_computed_from_the_evaluation(runs, tmp_path):
    root, *_ = runs
    output, verdict, metrics = _evaluate(root, tmp_path, gates=["perplexity<=0.75*bigram"])
    results = metrics["results"]
    (gate,) = metrics["gates"]
    assert gate == verdict["gates"][0]
    assert gate["value"] == results["model"]["perplexity"]
    assert gate["bound"] == pytest.approx(0.75 * results["bigram"]["perplexity"])
    assert gate["passed"] == (results["model"]["perplexity"]
                              <= 0.75 * results["bigram"]["perplexity"])
    assert verdict["blessed"] == gate["passed"]
    assert os.path.exists(os.path.join(output, BLESSED if gate["passed"] else NOT_BLESSED))


def test_the_masked_lm_gate_blesses_and_refuses_the_pretrained_bert(runs, tmp_path):
    root, *_ = runs
    gates = ["accuracy >= unigram + 0.10", "accuracy >= unigram - 1", "accuracy >= unigram + 1"]
    output, verdict, metrics = _evaluate(root, tmp_path, "bert_pretrain_finetune", "accuracy",
                                         None, gates=gates)
    results = metrics["results"]
    bounds = [results["unigram"]["accuracy"] + margin for margin in (0.10, -1, 1)]
    assert [g["bound"] for g in metrics["gates"]] == pytest.approx(bounds)
    passed = [results["model"]["accuracy"] >= bound for bound in bounds]
    assert [g["passed"] for g in metrics["gates"]] == passed and passed[1:] == [True, False]
    assert not verdict["blessed"]
    assert verdict["reasons"][-1].startswith("accuracy >= unigram + 1 failed: ")
    output, verdict, _ = _evaluate(root, tmp_path / "loose", "bert_pretrain_finetune",
                                   "accuracy", None, gates=gates[1:2])
    assert verdict["blessed"] and os.path.exists(os.path.join(output, BLESSED))


def test_a_gate_that_cannot_be_read_stops_the_pipeline_before_any_work(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.gpt_pretrain", f"--pipeline_root={tmp_path / 'p'}",
         "--gate=perplexity is low"], capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2
    assert "Cannot read the gate 'perplexity is low'" in result.stderr
    assert not os.path.exists(tmp_path / "p")


@pytest.mark.parametrize("args, message", [
    (["--pipelines=gpt,t5"], "--pipelines takes gpt and/or bert"),
    (["--gpt_flagfile=/nonexistent/pipeline.flags"], "--gpt_flagfile=/nonexistent"),
])
def test_bad_flags_exit_2_before_any_work(tmp_path, args, message):
    result = _main_job(*args, f"--artifacts={tmp_path / 'a'}")
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert not os.path.exists(tmp_path / "a")
