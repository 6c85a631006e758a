"""Damaged checkpoints and changed batch layouts on resume: the newest intact
checkpoint is used, a bad write is caught at its step, and the data position is
kept in examples."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import make_trainer, write_gpt_data
from tests.training.processes import run_training
from tfllm.errors import CheckpointError
from tfllm.training import checkpoints, inputs


def one_device():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def _trainer(data, model_dir, lines=None, strategy=None, **train):
    keras.utils.set_random_seed(3)
    trainer = make_trainer(*data, model_dir, strategy or one_device(), checkpoint_every=2,
                           **train)
    if lines is not None:
        trainer.report = lines.append
        trainer.checkpoints.report = lines.append
    return trainer


def _weights(trainer):
    return [v.numpy() for v in trainer.model.weights]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_gpt_data(tmp_path_factory.mktemp("gpt"))


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """Six deterministic steps in one go: what every resumed run must end with."""
    trainer = _trainer(data, tmp_path_factory.mktemp("whole"), train_steps=6)
    trainer.train()
    return _weights(trainer)


@pytest.fixture(scope="module")
def four_steps(data, tmp_path_factory):
    """A model_dir holding ckpt-2 and ckpt-4 of the same run."""
    model_dir = tmp_path_factory.mktemp("four")
    _trainer(data, model_dir, train_steps=4).train()
    assert checkpoints.checkpoint_numbers(model_dir / "checkpoints") == [2, 4]
    return model_dir


def _copy(four_steps, tmp_path):
    shutil.copytree(four_steps, tmp_path / "m")
    return tmp_path / "m", tmp_path / "m" / "checkpoints"


def _damage(path, how):
    data = open(path, "rb").read()
    if how == "truncated":
        data = data[:len(data) // 2]
    else:  # 64 bytes flipped in the middle
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + \
            data[middle + 64:]
    open(path, "wb").write(data)


@pytest.mark.parametrize("part", ["data", "index"])
@pytest.mark.parametrize("how", ["flipped", "truncated", "missing"])
def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(
        data, four_steps, uninterrupted, tmp_path, part, how):
    model_dir, directory = _copy(four_steps, tmp_path)
    target = str(directory / "ckpt-4.index") if part == "index" else \
        tf.io.gfile.glob(str(directory / "ckpt-4.data-*"))[0]
    if how == "missing":
        os.remove(target)
    else:
        _damage(target, how)
    lines = []
    trainer = _trainer(data, model_dir, lines, train_steps=6)
    summary = trainer.train()
    damaged = [line for line in lines if "is damaged" in line]
    assert len(damaged) == 1 and f"checkpoint {directory / 'ckpt-4'} is damaged" in damaged[0]
    assert "resuming from ckpt-2" in damaged[0]
    assert any(line.startswith(f"resumed from {directory / 'ckpt-2'} at step 2 (32 examples")
               for line in lines), lines
    assert summary["step"] == 6
    for got, want in zip(_weights(trainer), uninterrupted, strict=True):
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    # The damaged files are kept aside; the state file names only intact checkpoints.
    assert os.listdir(directory / "corrupt")
    assert tf.train.latest_checkpoint(str(directory)) == str(directory / "ckpt-6")
    assert checkpoints.unreadable_reason(str(directory / "ckpt-4")) is None  # rewritten


def test_a_garbled_state_file_still_resumes_from_the_newest(data, four_steps, tmp_path,
                                                            monkeypatch):
    _copy(four_steps, tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative --model_dir: the rewritten state must still work
    (tmp_path / "m" / "checkpoints" / "checkpoint").write_text("model_checkpoint_path: ???\x00")
    lines = []
    trainer = _trainer(data, "m", lines, train_steps=5)
    trainer.train()
    assert any(line.startswith(f"resumed from {os.path.join('m', 'checkpoints', 'ckpt-4')} "
                               "at step 4") for line in lines), lines
    assert tf.train.latest_checkpoint(os.path.join("m", "checkpoints")).endswith("ckpt-5")


def test_the_newest_written_wins_over_the_highest_number(data, four_steps, tmp_path):
    """TF's preemption handler numbers its saves by a counter, not by step."""
    model_dir, directory = _copy(four_steps, tmp_path)
    for name in os.listdir(directory):
        if name.startswith("ckpt-4."):
            os.rename(directory / name, directory / name.replace("ckpt-4.", "ckpt-1."))
    lines = []
    _trainer(data, model_dir, lines, train_steps=5).train()
    assert any(line.startswith(f"resumed from {directory / 'ckpt-1'} at step 4")
               for line in lines), lines


def test_every_checkpoint_damaged_is_one_paragraph_and_exit_2(data, four_steps, tmp_path):
    model_dir, directory = _copy(four_steps, tmp_path)
    for name in os.listdir(directory):
        if ".data-" in name:
            _damage(directory / name, "flipped")
    before = sorted(os.listdir(directory))
    result = run_training(f"--data_dir={data[0]}", f"--model_dir={model_dir}",
                          "--train_steps=6")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    message = message[message.index("error: "):]
    assert message.startswith(f"error: No checkpoint in {directory} can be restored: ckpt-4: "
                              "TensorBundle at ")
    assert "Checksum does not match" in message
    assert "ckpt-2: " in message and "To start over" in message
    assert sorted(os.listdir(directory)) == before  # nothing moved or written


@pytest.mark.parametrize("how", ["truncated", "missing"])
def test_unreadable_reason_spots_a_bad_write_cheaply(four_steps, tmp_path, how):
    _, directory = _copy(four_steps, tmp_path)
    path = str(directory / "ckpt-4")
    assert checkpoints.unreadable_reason(path) is None
    shard = tf.io.gfile.glob(path + ".data-*")[0]
    os.remove(shard) if how == "missing" else _damage(shard, "truncated")
    reason = checkpoints.unreadable_reason(path)
    assert reason == "its data file is missing" if how == "missing" else \
        "fewer than the" in reason
    _damage(path + ".index", "truncated")
    assert checkpoints.unreadable_reason(path).startswith("its index does not read")


@pytest.mark.parametrize("keep", [3, 1])
def test_a_bad_write_fails_at_the_step_that_made_it(data, tmp_path, monkeypatch, keep):
    """The disk loses half of the step-4 data file after TF wrote it. With one checkpoint
    kept, TF already removed ckpt-2 when ckpt-4 was written: the message says so."""
    save = tf.train.CheckpointManager.save

    def save_then_lose_bytes(manager, checkpoint_number=None, **kwargs):
        path = save(manager, checkpoint_number=checkpoint_number, **kwargs)
        if checkpoint_number == 4:
            _damage(tf.io.gfile.glob(path + ".data-*")[0], "truncated")
        return path

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_lose_bytes)
    trainer = _trainer(data, tmp_path, train_steps=8, keep_checkpoints=keep)
    with pytest.raises(CheckpointError, match="at step 4: it does not read back: its data "
                                              "files hold .* it was removed") as error:
        trainer.train()
    directory = str(tmp_path / "checkpoints")
    if keep == 1:
        assert "No earlier checkpoint is left (--keep_checkpoints=1" in str(error.value)
        assert checkpoints.checkpoint_numbers(directory) == []
        assert tf.train.latest_checkpoint(directory) is None
        return
    assert "The previous checkpoints are intact (latest: " in str(error.value)
    assert checkpoints.checkpoint_numbers(directory) == [2]
    assert tf.train.latest_checkpoint(directory) == os.path.join(directory, "ckpt-2")


def _global_batch(strategy, batch):
    ids = batch[0]["token_ids"]
    return np.concatenate([t.numpy() for t in strategy.experimental_local_results(ids)])


@pytest.mark.parametrize("change", ["batch", "accumulation", "replicas"])
def test_a_changed_batch_layout_resumes_at_the_same_example(data, four_steps, tmp_path,
                                                            change):
    """Four steps of 16 used 64 examples; the resumed run's first batch is the one a
    fresh run of the new layout reads after 64 examples."""
    model_dir, _ = _copy(four_steps, tmp_path)
    strategy, train = one_device(), {"global_batch_size": 32}
    if change == "accumulation":
        train = {"global_batch_size": 32, "grad_accum_steps": 2}
    if change == "replicas":
        strategy, train = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), {}
    lines = []
    resumed = _trainer(data, model_dir, lines, strategy, train_steps=6, **train)
    resumed.checkpoints.restore()
    examples = resumed._examples_at_resume()
    assert examples == 64
    fresh = _trainer(data, tmp_path / "fresh", strategy=one_device(), train_steps=6, **train)
    batch = fresh.config.global_batch_size
    fresh_batches = inputs.train_iterator(fresh.strategy, fresh.config, 0, {})
    for _ in range(64 // batch):
        next(fresh_batches)
    resumed_batch = next(inputs.train_iterator(strategy, resumed.config, examples, {}))
    np.testing.assert_array_equal(_global_batch(strategy, resumed_batch),
                                  _global_batch(fresh.strategy, next(fresh_batches)))
    summary = resumed.train()
    assert summary["step"] == 6 and int(resumed.examples_seen.numpy()) == 64 + 2 * batch
    expected = {"batch": "global_batch_size 16 -> 32", "replicas": "replicas 1 -> 2",
                "accumulation": "global_batch_size 16 -> 32, grad_accum_steps 1 -> 2"}[change]
    assert any(line.startswith(f"resuming with {expected}: the data position is restored "
                               "in examples") for line in lines), lines
