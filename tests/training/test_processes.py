"""The training command as real processes: multi-worker, preemption, errors. Kills and
other injected faults are in tests/reliability."""

import json
import os
import signal

import pytest
import tensorflow as tf

from tests.training.helpers import write_gpt_data
from tests.training.processes import (
    assert_same_weights,
    model_weights,
    run_training,
    start_workers,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_gpt_data(tmp_path_factory.mktemp("gpt"), train_shards=1)[0]


def _run_workers(data_dir, model_dir, *args):
    processes = start_workers(data_dir, model_dir, *args)
    try:
        outputs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    return outputs


def test_two_worker_processes_equal_one_process_also_when_resumed(data_dir, tmp_path):
    """Three steps, then the same commands re-run to five: every worker resumes from the
    chief's checkpoint (the others' scratch checkpoints are gone), as one process does.
    The workers run host loops of up to 4 steps, the single process one step a call."""
    for steps in (3, 5):
        single = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'one'}",
                              f"--train_steps={steps}", "--noshuffle", "--strategy=one_device")
        assert single.returncode == 0, single.stderr[-3000:]
        outputs = _run_workers(data_dir, tmp_path / "multi", f"--train_steps={steps}",
                               "--noshuffle", "--steps_per_loop=4", "--log_every=4",
                               "--checkpoint_every=4")
        assert "x2, global batch 16" in outputs[0]
        if steps == 5:
            assert all("resumed from" in output and "at step 3" in output
                       for output in outputs), outputs[1][-3000:]
        assert_same_weights(model_weights(tmp_path / "one"), model_weights(tmp_path / "multi"))
        assert not [p for p in os.listdir(tmp_path / "multi") if p.startswith(".worker-")]


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
    (["--log_every=0", "--optimizer=sgd"], {},
     "Invalid training settings: --log_every must be at least 1 (got 0); unknown "
     "--optimizer='sgd'"),
])
def test_configuration_errors_exit_2_before_training(data_dir, tmp_path, args, env, message):
    result = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'm'}", *args,
                          **env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m" / "checkpoints").exists()


def test_data_dir_without_manifest(tmp_path):
    result = run_training(f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}")
    assert result.returncode == 2
    assert "has no manifest.json" in result.stderr


def test_sigterm_to_one_worker_checkpoints_and_stops_both(data_dir, tmp_path):
    processes = start_workers(data_dir, tmp_path, "--train_steps=100000",
                              "--checkpoint_every=1000", "--steps_per_loop=2", "--log_every=2")
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
    first = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path}", "--train_steps=1")
    assert first.returncode == 0, first.stderr[-2000:]
    result = run_training(f"--data_dir={data_dir}", f"--model_dir={tmp_path}",
                          "--train_steps=2", "--num_layers=3")
    assert result.returncode == 2
    assert "different architecture (num_layers differ)" in " ".join(result.stderr.split())
