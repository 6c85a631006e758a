"""Faults injected into real training processes: SIGKILL at a random step, SIGTERM, a
killed multi-worker worker, a full disk, an unwritable model_dir, corrupt shards."""

import json
import os
import random
import resource
import signal
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import write_gpt_data
from tests.training.processes import (
    REPO,
    assert_same_weights,
    model_weights,
    run_training,
    start_workers,
    train_command,
    training_env,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_gpt_data(tmp_path_factory.mktemp("gpt"), train_shards=2)[0]


def _start(*args, **popen):
    return subprocess.Popen(train_command(*args), cwd=REPO, env=training_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _signal_at_step(process, step, signum):
    """Sends `signum` once the process logs `step`; returns the rest of its output."""
    for line in process.stdout:
        if line.startswith("step") and int(line.split()[1].split("/")[0]) >= step:
            process.send_signal(signum)
            break
    return process.communicate(timeout=120)[0]


def test_sigkill_at_a_random_step_resumes_to_the_same_final_weights(data_dir, tmp_path):
    kill_step = random.Random(os.environ.get("TFLLM_FAULT_SEED", 0)).randint(1, 7)
    steps = "--train_steps=8"
    whole = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'whole'}", steps)
    assert whole.returncode == 0, whole.stderr[-3000:]
    model_dir = tmp_path / "killed"
    loops = ("--steps_per_loop=2", "--log_every=2", "--checkpoint_every=2")  # host loops
    _signal_at_step(_start(f"--data_dir={data_dir}", f"--model_dir={model_dir}", steps,
                           *loops), kill_step, signal.SIGKILL)
    resumed = run_training(f"--data_dir={data_dir}", f"--model_dir={model_dir}", steps,
                           *loops)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout, f"killed at step {kill_step}"
    assert_same_weights(model_weights(tmp_path / "whole"), model_weights(model_dir), atol=1e-6)


def test_sigterm_saves_a_loadable_checkpoint_and_exits_0(data_dir, tmp_path):
    process = _start(f"--data_dir={data_dir}", f"--model_dir={tmp_path}",
                     "--train_steps=100000", "--checkpoint_every=1000", "--steps_per_loop=3",
                     "--log_every=3")
    rest = _signal_at_step(process, 3, signal.SIGTERM)  # stops at the end of a loop
    assert process.returncode == 0, rest[-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["status"] == "stopped by signal" and summary["step"] >= 3
    assert summary["checkpoint"].endswith(f"ckpt-{summary['step']}")
    assert summary["step"] % 3 == 0
    assert all(np.isfinite(w).all() for w in model_weights(tmp_path).values())


@pytest.mark.parametrize("killed", [1, 0], ids=["worker", "chief"])
def test_a_killed_worker_never_leaves_the_other_hanging(data_dir, tmp_path, killed):
    processes = start_workers(data_dir, tmp_path, "--train_steps=100000",
                              "--checkpoint_every=1000")
    survivor = processes[1 - killed]
    try:
        for line in processes[0].stdout:
            if line.startswith("step") and int(line.split()[1].split("/")[0]) >= 3:
                processes[killed].send_signal(signal.SIGKILL)
                break
        output = survivor.communicate(timeout=180)[0]  # a hang fails here
    finally:
        for p in processes:
            p.kill()
    assert survivor.returncode not in (0, None), output[-3000:]
    message = " ".join(output.split())
    assert "error: A worker of the multi-worker job stopped answering" in message
    assert "re-run every worker to resume from the last checkpoint" in message
    if killed == 1:  # the chief's death also ends TF's preemption watcher thread noisily
        assert "Traceback" not in output


def _fsize_limit(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_keeps_the_previous_checkpoints(data_dir, tmp_path):
    first = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path}", "--train_steps=4",
                         "--checkpoint_every=2")
    assert first.returncode == 0, first.stderr[-3000:]
    before = model_weights(tmp_path)
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    # Files may grow to 8 KiB: logs and configs fit, a checkpoint's data file does not
    # (the kernel's file-size limit fails the write with EFBIG, as a full disk would).
    process = _start(f"--data_dir={data_dir}", f"--model_dir={tmp_path}", "--train_steps=8",
                     "--checkpoint_every=2", preexec_fn=_fsize_limit(8 << 10))
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 2, output[-3000:]
    message = " ".join(output.split())
    assert f"error: Cannot write a checkpoint to {tmp_path / 'checkpoints'}" in message, message
    assert "The previous checkpoints are intact" in message
    assert "Traceback" not in output
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) == checkpoint
    assert_same_weights(before, model_weights(tmp_path), atol=0)
    resumed = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path}",
                           "--train_steps=6", "--checkpoint_every=2")
    assert resumed.returncode == 0 and "at step 4" in resumed.stdout, resumed.stderr[-3000:]


def test_an_unwritable_model_dir_is_a_clear_error(data_dir, tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    result = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'a_file' / 'm'}",
                          "--train_steps=2")
    assert result.returncode == 2
    assert "Cannot write to --model_dir" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def _damage(path, how):
    data = open(path, "rb").read()
    if how == "truncated":
        data = data[:len(data) // 2]
    else:
        data = data[:len(data) // 2] + bytes(64) + data[len(data) // 2 + 64:]
    open(path, "wb").write(data)


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
def test_a_damaged_shard_is_named_or_skipped_and_counted(tmp_path, how):
    data, manifest = write_gpt_data(tmp_path / "data", train_shards=2)
    damaged = os.path.join(data, manifest.splits["train"].files[1])
    _damage(damaged, how)
    failed = run_training(f"--data_dir={data}", f"--model_dir={tmp_path / 'failed'}",
                          "--train_steps=40")
    assert failed.returncode == 2, failed.stdout[-2000:] + failed.stderr[-2000:]
    message = " ".join(failed.stderr.split())
    assert f"The train data is corrupt ({damaged}: " in message
    assert "--skip_corrupt_files" in message and "Traceback" not in failed.stderr
    skipped = run_training(f"--data_dir={data}", f"--model_dir={tmp_path / 'skipped'}",
                           "--train_steps=40", "--skip_corrupt_files")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert f"skipping corrupt train file {damaged}" in skipped.stdout
    summary = json.load(open(tmp_path / "skipped" / "summary.json"))
    assert list(summary["skipped_corrupt_files"]) == [damaged]
