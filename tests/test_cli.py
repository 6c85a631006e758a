"""The user-facing commands, run as real processes."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_models_command_reports_published_parameter_counts():
    result = run("tfllm.models", "--flagfile", "configs/model_bert_base.flags")
    assert result.returncode == 0, result.stderr
    assert "parameters: 110,106,428 total" in result.stdout
    assert "backbone matches the published model (109,482,240)" in result.stdout
    assert "training FLOPs per token at length 128" in result.stdout


def test_models_command_applies_field_overrides():
    result = run("tfllm.models", "--preset=gpt_tiny", "--num_layers=3", "--hidden_size=32")
    assert result.returncode == 0, result.stderr
    assert "layers 3, hidden 32, heads 2 x 16" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--preset=bert_huge"], "error: Unknown model preset 'bert_huge'"),
    (["--preset=gpt_tiny", "--type_vocab_size=3"], "--type_vocab_size do not apply"),
    (["--preset=bert_tiny", "--num_layers=two"], "'num_layers' (--num_layers) expects an integer"),
    (["--preset=bert_tiny", "--sequence_length=4096"], "--sequence_length=4096 must be"),
])
def test_models_command_bad_flags_exit_2_with_one_paragraph(args, message):
    result = run("tfllm.models", *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert result.stdout == ""

