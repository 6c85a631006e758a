"""The training command as real processes: multi-worker, kill and resume, SIGTERM, errors."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import write_gpt_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--preset=gpt_tiny", "--hidden_size=32", "--intermediate_size=64", "--num_layers=2",
        "--max_sequence_length=16", "--dropout=0", "--global_batch_size=16",
        "--learning_rate=1e-2", "--warmup_steps=0", "--nojit_compile", "--peak_tflops=1",
        "--log_every=1", "--checkpoint_every=1", "--eval_steps=1", "--deterministic"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_gpt_data(tmp_path_factory.mktemp("gpt"), train_shards=1)[0]


def _command(*args):
    return [sys.executable, "-u", "-m", "tfllm.train", *TINY, *args]


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("TF_CONFIG", None) if "TF_CONFIG" not in extra else None
    return env


def _run(*args, timeout=240, **env):
    return subprocess.run(_command(*args), cwd=REPO, env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def _model_weights(model_dir):
    """Every variable of the latest checkpoint: model weights and optimizer state."""
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
            if name.endswith("VARIABLE_VALUE") and "save_counter" not in name
            and "checkpointed_runs" not in name}  # the preemption handler's counter


def _assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=1e-4, err_msg=name)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(data_dir, model_dir, *args):
    """Two multi-worker training processes on loopback ports."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            _command(f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                     "--strategy=multi_worker", *args),
            cwd=REPO, env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    return processes


def test_two_worker_processes_equal_one_process(data_dir, tmp_path):
    single = _run(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'one'}",
                  "--train_steps=3", "--noshuffle", "--strategy=one_device")
    assert single.returncode == 0, single.stderr[-3000:]
    processes = _start_workers(data_dir, tmp_path / "multi", "--train_steps=3", "--noshuffle")
    try:
        outputs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:]
    assert "x2, global batch 16" in outputs[0]
    _assert_same_weights(_model_weights(tmp_path / "one"), _model_weights(tmp_path / "multi"))
    assert not [p for p in os.listdir(tmp_path / "multi") if p.startswith(".worker-")]


def test_killed_run_resumes_to_the_same_weights(data_dir, tmp_path):
    steps = "--train_steps=8"
    whole = _run(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'whole'}", steps)
    assert whole.returncode == 0, whole.stderr[-3000:]
    model_dir = tmp_path / "killed"
    process = subprocess.Popen(_command(f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                                        steps), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("step") and int(line.split()[1].split("/")[0]) >= 4:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    resumed = _run(f"--data_dir={data_dir}", f"--model_dir={model_dir}", steps)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    _assert_same_weights(_model_weights(tmp_path / "whole"), _model_weights(model_dir),
                         atol=1e-6)


def test_sigterm_saves_a_loadable_checkpoint_and_exits_0(data_dir, tmp_path):
    process = subprocess.Popen(_command(f"--data_dir={data_dir}", f"--model_dir={tmp_path}",
                                        "--train_steps=100000", "--checkpoint_every=1000"),
                               cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("step") and int(line.split()[1].split("/")[0]) >= 3:
            process.send_signal(signal.SIGTERM)
            break
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0, rest[-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["status"] == "stopped by signal" and summary["step"] >= 3
    weights = _model_weights(tmp_path)
    assert all(np.isfinite(w).all() for w in weights.values())


@pytest.mark.parametrize("args, env, message", [
    (["--flagfile=/nonexistent.flags"], {}, "nonexistent.flags"),
    (["--strategy=gpu_farm"], {}, "Unknown --strategy='gpu_farm'"),
    (["--preset=gpt_huge"], {}, "Unknown model preset 'gpt_huge'"),
    (["--strategy=multi_worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is malformed"),
    (["--strategy=tpu"], {}, "--strategy=tpu needs --tpu"),
    (["--vocab_size=100"], {}, "vocab_size is 100 but the data's tokenizer has 64"),
    (["--strategy=mirrored", "--cpu_replicas=2", "--global_batch_size=15"], {},
     "--global_batch_size=15 is not divisible by replicas (2)"),
    (["--preset=bert_tiny"], {}, "The bert model cannot train on gpt data"),
])
def test_configuration_errors_exit_2_before_training(data_dir, tmp_path, args, env, message):
    result = _run(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'm'}", *args, **env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m" / "checkpoints").exists()


def test_data_dir_without_manifest(tmp_path):
    result = _run(f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}")
    assert result.returncode == 2
    assert "has no manifest.json" in result.stderr


def test_sigterm_to_one_worker_checkpoints_and_stops_both(data_dir, tmp_path):
    processes = _start_workers(data_dir, tmp_path, "--train_steps=100000",
                               "--checkpoint_every=1000")
    try:
        for line in processes[0].stdout:
            if line.startswith("step") and int(line.split()[1].split("/")[0]) >= 3:
                processes[1].send_signal(signal.SIGTERM)  # preempt the non-chief worker
                break
        outputs = [p.communicate(timeout=120)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs[1][-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["status"] == "preempted" and summary["step"] >= 3
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))


def test_resuming_a_different_architecture_is_refused(data_dir, tmp_path):
    first = _run(f"--data_dir={data_dir}", f"--model_dir={tmp_path}", "--train_steps=1")
    assert first.returncode == 0, first.stderr[-2000:]
    result = _run(f"--data_dir={data_dir}", f"--model_dir={tmp_path}", "--train_steps=2",
                  "--num_layers=3")
    assert result.returncode == 2
    assert "different architecture (num_layers differ)" in " ".join(result.stderr.split())
