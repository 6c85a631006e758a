"""Every flag file in configs/ parses with the command it is for: a misspelt flag or a
bad value there would otherwise surface only minutes into the main job."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


def _command_for(name):
    if name.startswith("data_"):
        return "tfllm.preprocess"
    if name.startswith("model_"):
        return "tfllm.models.__main__"
    if name.startswith("pipeline_"):
        return ("pipelines.gpt_pretrain" if name == "pipeline_gpt.flags"
                else "pipelines.bert_pretrain_finetune")
    return "tfllm.train"


def _by_command():
    files = {}
    for name in sorted(os.listdir(CONFIGS)):
        files.setdefault(_command_for(name), []).append(os.path.join(CONFIGS, name))
    return files


# Imports the command's module (which defines its flags) and parses each flag file.
PARSE = """
import importlib, sys
from absl import flags
importlib.import_module(sys.argv[1])
for path in sys.argv[2:]:
    flags.FLAGS.unparse_flags()
    left = flags.FLAGS(["prog", f"--flagfile={path}"], known_only=True)
    assert left == ["prog"], f"{path}: flags {sys.argv[1]} does not define: {left[1:]}"
"""


@pytest.mark.parametrize("command", sorted(_by_command()))
def test_flag_files_parse_with_their_command(command):
    files = _by_command()[command]
    result = subprocess.run([sys.executable, "-c", PARSE, command, *files], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_pipelines_flag_files_point_at_shipped_flag_files():
    for name in sorted(n for n in os.listdir(CONFIGS) if n.startswith("pipeline_")):
        with open(os.path.join(CONFIGS, name)) as f:
            referenced = [line.split("=", 1)[1].strip() for line in f
                          if line.startswith("--") and "_flagfile=" in line]
        assert referenced and all(os.path.isfile(os.path.join(REPO, path))
                                  for path in referenced), referenced


def test_the_pipelines_gates_can_be_read():
    from tfllm.evaluation.gates import Gate
    gates = []
    for name in sorted(n for n in os.listdir(CONFIGS) if n.startswith("pipeline_")):
        with open(os.path.join(CONFIGS, name)) as f:
            gates += [line.split("=", 1)[1].strip() for line in f
                      if line.startswith(("--gate=", "--pretrain_gate="))]
    assert len(gates) >= 3  # the main job's three (issue 17), at least
    for text in gates:
        Gate.parse(text)
