"""Every command (the CLIs, the pipelines, the main job, the benchmark runner) given a
missing, malformed or contradictory flag file fails before any work: exit status 2,
one paragraph naming the flag, no traceback, nothing written."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# command -> (a malformed line naming one of its flags, a contradictory set of lines,
# what the contradiction's message says)
COMMANDS = {
    "tfllm": ("--keep_serving", "--keep_serving=maybe", ["--pipelines=gpt,t5"],
              "--pipelines takes gpt and/or bert"),
    "tfllm.preprocess": ("--num_shards", "--num_shards=many",
                         ["--minhash_permutations=128", "--minhash_bands=7"], "bands"),
    "tfllm.train": ("--train_steps", "--train_steps=ten",
                    ["--data_dir=/nonexistent/data", "--model_dir=m", "--strategy=tpu"],
                    "--strategy=tpu needs --tpu"),
    "tfllm.evaluate": ("--batch_size", "--batch_size=1.5", ["--split=eval"],
                       "--model_dir is required"),
    "tfllm.generate": ("--max_new_tokens", "--max_new_tokens=lots",
                       ["--model_dir=m", "--prompt="], "Give at least one non-empty --prompt"),
    "tfllm.export": ("--max_new_tokens", "--max_new_tokens=0x", ["--model_dir=m", "--name=x",
                                                                  "--max_new_tokens=0"],
                     "--max_new_tokens must be at least 1; got 0"),
    "tfllm.serve": ("--rest_api_port", "--rest_api_port=http",
                    ["--model_config_file=/a.config", "--model_base_path=/b",
                     "--model_name=b"], "Give either --model_config_file or --model_base_path"),
    "tfllm.client": ("--top_k", "--top_k=some", ["--server=localhost:1", "--grpc=localhost:2",
                                                 "--model=m"],
                     "Give exactly one of --server (REST) and --grpc"),
    "tfllm.attention": ("--text", "--text", ["--model_dir=m"], "non-empty --text"),
    "tfllm.models": ("--num_layers", "--num_layers=two", ["--preset=gpt_tiny",
                                                          "--type_vocab_size=3"],
                     "--type_vocab_size do not apply"),
    "benchmarks": ("--size", "--size=huge", ["--only=train", "--arg=train_fast:--steps=1"],
                   "--arg=train_fast:--steps=1 must be NAME:--flag=value"),
    "pipelines.gpt_pretrain": ("--max_perplexity", "--max_perplexity=low",
                               ["--data_flagfile=/nonexistent/data.flags"],
                               "/nonexistent/data.flags"),
    "pipelines.bert_pretrain_finetune": ("--min_accuracy", "--min_accuracy=high",
                                         ["--pretrain_data_flagfile=/nonexistent/bert.flags"],
                                         "/nonexistent/bert.flags"),
}


def _run(command, tmp_path, *args):
    result = subprocess.run([sys.executable, "-m", command, *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                 "PYTHONPATH": REPO})
    assert result.returncode == 2, (command, args, result.stdout[-1500:], result.stderr[-1500:])
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == [name for name in os.listdir(tmp_path)
                                     if name.endswith(".flags")], "nothing may be written"
    return " ".join(result.stderr.split())


def _flag_file(tmp_path, lines):
    path = tmp_path / "bad.flags"
    path.write_text("# a flag file\n" + "\n".join(lines) + "\n")
    return f"--flagfile={path}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_missing_malformed_and_contradictory_flag_files(command, tmp_path):
    flag, malformed, contradictory, message = COMMANDS[command]
    assert "/nonexistent/x.flags" in _run(command, tmp_path, "--flagfile=/nonexistent/x.flags")
    assert flag in _run(command, tmp_path, _flag_file(tmp_path, [malformed]))
    assert message in _run(command, tmp_path, _flag_file(tmp_path, contradictory))
