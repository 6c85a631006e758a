"""The train step's invariants: accumulation, replicas, host loops, clipping, precision."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import make_trainer, tiny_gpt_config, write_gpt_data
from tfllm.errors import ConfigError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_gpt_data(tmp_path_factory.mktemp("gpt"))


def _weights_after(data, tmp_path, strategy, steps=2, **train):
    keras.utils.set_random_seed(3)
    trainer = make_trainer(*data, tmp_path, strategy, train_steps=steps, **train)
    trainer.train()
    return [v.numpy() for v in trainer.model.weights], trainer


def _assert_same(a, b, atol=2e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-4)


def one_device():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def mirrored():
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def test_accumulation_equals_the_bigger_batch_on_one_device(data, tmp_path):
    k1, _ = _weights_after(data, tmp_path / "k1", one_device(), grad_accum_steps=1)
    k4, trainer = _weights_after(data, tmp_path / "k4", one_device(), grad_accum_steps=4)
    _assert_same(k1, k4)
    assert int(trainer.optimizer.iterations.numpy()) == 2  # steps count optimizer steps


def test_accumulation_under_two_replica_mirrored(data, tmp_path):
    """Also in a host loop: k=4 runs both steps in one loop, k=1 one step per call."""
    k1, _ = _weights_after(data, tmp_path / "k1", mirrored(), grad_accum_steps=1)
    k4, _ = _weights_after(data, tmp_path / "k4", mirrored(), grad_accum_steps=4,
                           steps_per_loop=2)
    _assert_same(k1, k4)


def test_two_replicas_equal_one_device(data, tmp_path):
    """The replicated run under XLA micro-steps, in host loops of 2 then 1."""
    single, _ = _weights_after(data, tmp_path / "one", one_device(), steps=3)
    replicated, trainer = _weights_after(data, tmp_path / "two", mirrored(), steps=3,
                                         steps_per_loop=2, jit_compile=True)
    assert trainer.strategy.num_replicas_in_sync == 2
    _assert_same(single, replicated)
    initial = make_trainer(*data, tmp_path / "init", one_device(), train_steps=1)
    assert not np.allclose(initial.model.weights[0].numpy(), single[0])  # weights moved


def test_steps_per_loop_gives_the_weights_of_one_step_per_call(data, tmp_path):
    """Loops of 3 (cut to 2 at the checkpoint every 2 steps, and to 1 at the end) train
    exactly as one step per host call, and checkpoint and count examples at the same
    steps. Mirrored replicas in loops: the two tests above."""
    runs = {}
    for per_loop in (1, 3):
        weights, trainer = _weights_after(
            data, tmp_path / str(per_loop), one_device(), steps=5, grad_accum_steps=4,
            jit_compile=True, steps_per_loop=per_loop, checkpoint_every=2)
        runs[per_loop] = weights, int(trainer.examples_seen.numpy()), sorted(
            os.listdir(tmp_path / str(per_loop) / "checkpoints"))
    _assert_same(runs[1][0], runs[3][0], atol=1e-6)
    assert runs[1][1:] == runs[3][1:] and runs[3][1] == 5 * 16
    assert "ckpt-4.index" in runs[3][2] and "ckpt-5.index" in runs[3][2]


@pytest.mark.parametrize("k", [1, 4])
def test_the_whole_step_under_xla_trains_as_the_uncompiled_step(data, tmp_path, k):
    """On one device XLA compiles the whole step: micro-batches, clip and update."""
    eager, _ = _weights_after(data, tmp_path / "plain", one_device(), steps=3,
                              grad_accum_steps=k, jit_compile=False)
    compiled, trainer = _weights_after(data, tmp_path / "xla", one_device(), steps=3,
                                       grad_accum_steps=k, jit_compile=True)
    _assert_same(eager, compiled, atol=1e-4)
    assert int(trainer.optimizer.iterations.numpy()) == 3


def test_loops_end_at_every_log_eval_and_checkpoint_step(data, tmp_path):
    trainer = make_trainer(*data, tmp_path, one_device(), train_steps=20, steps_per_loop=8,
                           log_every=5, eval_every=6, checkpoint_every=7)
    lengths, step = [], 0
    while step < 20:
        lengths.append(trainer._loop_length(step))
        step += lengths[-1]
    # Boundaries at 5, 6, 7, 10, 12, 14, 15, 18, 20.
    assert lengths == [5, 1, 1, 3, 2, 2, 1, 3, 2]


def test_clipping_bounds_the_applied_global_norm(data, tmp_path):
    """Adam's first moment after one step is (1 - beta_1) * applied gradient."""
    for strategy in (one_device(), mirrored()):
        keras.utils.set_random_seed(3)
        trainer = make_trainer(*data, tmp_path / str(id(strategy)), strategy, train_steps=1,
                               clipnorm=0.05)
        summary = trainer.train()
        # `train` logs the last step's pre-clip norm: far above the clip.
        assert summary["grad_norm"] > 0.5
        moments = [v for v in trainer.optimizer.variables
                   if "momentum" in v.path and "velocity" not in v.path]
        assert moments
        applied = np.sqrt(sum(float(np.sum(np.square(m.numpy()))) for m in moments)) / 0.1
        assert applied == pytest.approx(0.05, rel=1e-3)


def test_bfloat16_training_runs_and_learns(data, tmp_path):
    keras.utils.set_random_seed(3)
    trainer = make_trainer(*data, tmp_path, one_device(), train_steps=30,
                           model_config=tiny_gpt_config(dtype="mixed_bfloat16"),
                           eval_every=0)
    first = trainer.evaluate()["eval/lm_loss"]
    summary = trainer.train()
    assert np.isfinite(summary["loss"])
    assert summary["eval/lm_loss"] < first - 0.5
    assert trainer.model.backbone.transformer_layers[0].compute_dtype == "bfloat16"


def test_float16_uses_dynamic_loss_scaling(data, tmp_path):
    keras.utils.set_random_seed(3)
    trainer = make_trainer(*data, tmp_path, one_device(), train_steps=3,
                           model_config=tiny_gpt_config(dtype="mixed_float16"))
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(trainer.train()["loss"])


def test_global_batch_must_split_evenly(data, tmp_path):
    with pytest.raises(ConfigError, match="--global_batch_size=16 is not divisible by "
                                          "replicas \\(2\\) x --grad_accum_steps \\(3\\)"):
        make_trainer(*data, tmp_path, mirrored(), grad_accum_steps=3)


def test_vocabulary_mismatch_is_refused(data, tmp_path):
    with pytest.raises(ConfigError, match="vocab_size is 100 but the data's tokenizer has 64"):
        make_trainer(*data, tmp_path, one_device(), model_config=tiny_gpt_config(
            vocab_size=100))


def _tiny_llama():
    from tests.training.helpers import LENGTH, VOCAB
    from tfllm.models import configs

    return configs.LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4,
                               num_key_value_heads=2, intermediate_size=48,
                               max_sequence_length=LENGTH)


def test_a_llama_decoder_trains_on_gpt_data_alike_in_loops_and_replicas(data, tmp_path):
    """The same trainer runs the Llama family: accumulation in XLA host loops gives the
    bigger batch's weights, two mirrored replicas (each run in its own process, as a job
    runs: TF's collective instance keys are per process and would collide with the GPT
    runs of this module) give one device's, and it learns the data's rule."""
    from tests.training.processes import assert_same_weights, model_weights, run_training

    single, _ = _weights_after(data, tmp_path / "one", one_device(), steps=3,
                               model_config=_tiny_llama())
    looped, _ = _weights_after(data, tmp_path / "k2", one_device(), steps=3,
                               model_config=_tiny_llama(), grad_accum_steps=2,
                               steps_per_loop=2, jit_compile=True)
    _assert_same(single, looped)
    llama = ["--preset=llama_tiny", "--num_key_value_heads=1", "--train_steps=3",
             f"--data_dir={data[0]}"]
    for name, extra in (("p1", []), ("p2", ["--strategy=mirrored", "--cpu_replicas=2",
                                           "--grad_accum_steps=2", "--steps_per_loop=2"])):
        result = run_training(*llama, *extra, f"--model_dir={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-2000:]
    assert_same_weights(model_weights(str(tmp_path / "p1")), model_weights(str(tmp_path / "p2")))
    keras.utils.set_random_seed(3)
    trainer = make_trainer(*data, tmp_path / "learn", one_device(), train_steps=60,
                           model_config=_tiny_llama(), learning_rate=3e-2, eval_steps=4)
    first = trainer.evaluate()["eval/lm_loss"]
    summary = trainer.train()
    assert summary["eval/lm_loss"] < first - 1.0
    assert summary["eval/perplexity"] < np.exp(first - 1.0)
