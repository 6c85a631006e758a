"""The training command as child processes: tiny flags, run, weights, multi-worker."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--preset=gpt_tiny", "--hidden_size=32", "--intermediate_size=64", "--num_layers=2",
        "--max_sequence_length=16", "--dropout=0", "--global_batch_size=16",
        "--learning_rate=1e-2", "--warmup_steps=0", "--nojit_compile", "--peak_tflops=1",
        "--log_every=1", "--checkpoint_every=1", "--eval_steps=1", "--deterministic"]


def train_command(*args):
    return [sys.executable, "-u", "-m", "tfllm.train", *TINY, *args]


def training_env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("TF_CONFIG", None) if "TF_CONFIG" not in extra else None
    return env


def run_training(*args, timeout=240, **env):
    return subprocess.run(train_command(*args), cwd=REPO, env=training_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def model_weights(model_dir):
    """Every variable of the latest checkpoint: model weights and optimizer state."""
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
            if name.endswith("VARIABLE_VALUE") and "save_counter" not in name
            and "checkpointed_runs" not in name}  # the preemption handler's counter


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=1e-4, err_msg=name)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(data_dir, model_dir, *args):
    """Two multi-worker training processes on loopback ports."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            train_command(f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                          "--strategy=multi_worker", *args),
            cwd=REPO, env=training_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    return processes
