"""Decoding: greedy equals step-wise argmax of full passes; top-k/top-p; EOS; batching."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import tiny
from tfllm.errors import ConfigError, InputError
from tfllm.generation.decoding import Generator
from tfllm.generation.sampling import SamplingConfig, filter_logits, next_tokens
from tfllm.models import GptBackbone, GptCausalLM


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(5)
    return GptCausalLM(GptBackbone(tiny("gpt", vocab_size=50, max_sequence_length=32,
                                        dropout=0.0)))


def _greedy_by_full_passes(lm, prompt, steps):
    tokens = list(prompt)
    for _ in range(steps):
        ids = np.array([tokens], np.int32)
        logits = lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}, training=False)
        tokens.append(int(np.argmax(logits.numpy()[0, -1])))
    return tokens[len(prompt):]


def test_greedy_with_cache_equals_argmax_of_full_passes(lm):
    generator, config = Generator(lm, stop_ids=-1), SamplingConfig(max_new_tokens=10)
    prompt = [5, 9, 13]
    (out,), tokens_per_second = generator.generate([prompt], config)
    assert out == _greedy_by_full_passes(lm, prompt, 10)
    assert tokens_per_second > 0
    assert generator.generate([prompt], config)[0] == [out]  # deterministic


def test_batched_prompts_of_different_lengths_match_single_runs(lm):
    generator, config = Generator(lm, -1), SamplingConfig(max_new_tokens=6)
    prompts = [[3, 4, 5, 6, 7, 8], [11], [20, 21, 22]]
    batched, _ = generator.generate(prompts, config)
    assert batched == [generator.generate([p], config)[0][0] for p in prompts]
    assert all(len(out) == 6 for out in batched)


def test_end_of_text_stops_a_row(lm):
    prompt = [5, 9, 13]
    first = _greedy_by_full_passes(lm, prompt, 1)[0]
    generator = Generator(lm, stop_ids=first)
    (out,), _ = generator.generate([prompt], SamplingConfig(max_new_tokens=8))
    assert out == [first]


def test_any_of_several_stop_ids_stops_a_row(lm):
    """generation_config.json's eos_token_id list (Llama 3's has three)."""
    prompt = [5, 9, 13]
    greedy = _greedy_by_full_passes(lm, prompt, 8)
    new = next(k for k in range(1, 8) if greedy[k] not in greedy[:k])
    (out,), _ = Generator(lm, stop_ids=[-1, greedy[new]]).generate(
        [prompt], SamplingConfig(max_new_tokens=8))
    assert out == greedy[:new + 1]


def _penalized_greedy(lm, prompt, steps, penalty):
    """Transformers' repetition penalty by hand over full passes: seen tokens' positive
    logits divided by the penalty, negative ones multiplied."""
    tokens = list(prompt)
    for _ in range(steps):
        ids = np.array([tokens], np.int32)
        logits = lm({"token_ids": ids, "padding_mask": np.ones_like(ids)},
                    training=False).numpy()[0, -1].astype(np.float64)
        for seen in set(tokens):
            logits[seen] = logits[seen] / penalty if logits[seen] > 0 else logits[seen] * penalty
        tokens.append(int(np.argmax(logits)))
    return tokens[len(prompt):]


def test_repetition_penalty_equals_the_published_rule_and_reduces_repeats(lm):
    prompt = [5, 9, 13, 5, 9]
    plain, _ = Generator(lm, -1).generate([prompt], SamplingConfig(max_new_tokens=12))
    config = SamplingConfig(max_new_tokens=12, repetition_penalty=3.0)
    (penalized,), _ = Generator(lm, -1).generate([prompt], config)
    assert penalized == _penalized_greedy(lm, prompt, 12, 3.0)
    repeats = lambda out: len(out) - len(set(out) - set(prompt))  # noqa: E731
    assert repeats(penalized) < repeats(plain[0])
    with pytest.raises(ConfigError, match="repetition_penalty must be positive"):
        SamplingConfig(repetition_penalty=0.0)


def test_sampling_is_seeded_and_reproducible(lm):
    config = SamplingConfig(method="sample", temperature=1.5, max_new_tokens=12, seed=7)
    first, _ = Generator(lm, -1).generate([[1, 2, 3]], config)
    again, _ = Generator(lm, -1).generate([[1, 2, 3]], config)
    other, _ = Generator(lm, -1).generate([[1, 2, 3]], dataclasses.replace(config, seed=8))
    assert first == again and first != other


def test_a_sampled_row_does_not_depend_on_its_batch(lm):
    """What server-side batching relies on: each row has its own seed and settings."""
    generator = Generator(lm, -1, jit_compile=False)
    tokens = tf.constant([[1, 2, 3, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0, 0, 0]])
    mask = tf.cast(tokens > 0, tf.int32)
    params = {"temperature": tf.constant([1.5, 0.0]), "top_k": tf.constant([5, 0]),
              "top_p": tf.constant([0.9, 1.0]), "seed": tf.constant([3, 0]),
              "max_new_tokens": tf.constant([5, 4])}
    together, generated = generator.decode(tokens, mask, params)
    assert generated.numpy().tolist() == [5, 4]
    for row in range(2):
        alone, _ = generator.decode(tokens[row:row + 1], mask[row:row + 1],
                                    {k: v[row:row + 1] for k, v in params.items()})
        np.testing.assert_array_equal(alone, together[row:row + 1])
    greedy, _ = generator.generate([[7, 8]], SamplingConfig(max_new_tokens=4))
    assert together.numpy()[1, 2:6].tolist() == greedy[0]


def test_top_k_never_samples_outside_the_k_most_likely():
    logits = tf.constant(np.random.default_rng(0).normal(size=(4, 30)), tf.float32)
    allowed = tf.math.top_k(logits, 3).indices.numpy()
    params = {k: tf.constant(v) for k, v in
              SamplingConfig(method="sample", top_k=3).rows(4).items()}
    for i in range(200):
        sampled = next_tokens(logits, params, tf.constant(i)).numpy()
        assert all(s in row for s, row in zip(sampled, allowed))


def test_top_p_keeps_the_smallest_nucleus():
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]]))
    kept = np.isfinite(filter_logits(logits, tf.constant([0]), tf.constant([0.7])).numpy()[0])
    assert kept.tolist() == [True, True, False, False]
    kept = np.isfinite(filter_logits(logits, tf.constant([0]), tf.constant([0.4])).numpy()[0])
    assert kept.tolist() == [True, False, False, False]


def test_bad_prompts_and_settings(lm):
    generator = Generator(lm, -1)
    with pytest.raises(InputError, match="empty prompt"):
        generator.generate([[1], []], SamplingConfig())
    with pytest.raises(InputError, match="no room in the model's context of 32"):
        generator.generate([list(range(1, 33))], SamplingConfig())
    with pytest.raises(ConfigError, match="--temperature must be positive"):
        SamplingConfig(temperature=0)


def test_generate_command_on_a_trained_model(tmp_path):
    import os
    import subprocess
    import sys

    from tests.training.test_real_corpus import FORTUNES, _data
    from tfllm.data.gpt_examples import GptExampleConfig
    from tfllm.models import configs
    from tfllm.training.config import TrainConfig
    from tfllm.training.trainer import Trainer

    if not os.path.exists(f"{FORTUNES}/science"):
        pytest.skip("Debian's fortunes package is installed by setup.sh")
    data_dir, manifest = _data(tmp_path, "gpt", GptExampleConfig(sequence_length=32))
    model_dir = tmp_path / "model"
    config = configs.override(configs.get_preset("gpt_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size})
    Trainer(config, TrainConfig(data_dir=data_dir, model_dir=str(model_dir), train_steps=3,
                                global_batch_size=8, jit_compile=False, eval_steps=1,
                                peak_tflops=1.0),
            tf.distribute.OneDeviceStrategy("/cpu:0"), manifest,
            report=lambda line: None).train()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "tfllm.generate", f"--model_dir={model_dir}", *args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    result = run("--prompt=Science is", "--prompt=Work", "--max_new_tokens=5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("Science is") and "tokens/s" in result.stdout
    first_answer = result.stdout.split("\n---")[0][len("Science is"):]
    stop = first_answer.strip()[2:4]
    result = run("--prompt=Science is", "--max_new_tokens=5", f"--stop={stop}")
    assert result.stdout.split("\n---")[0] == "Science is" + first_answer[
        :first_answer.index(stop)]
    result = run("--prompt= ")
    assert result.returncode == 2 and "non-empty --prompt" in result.stderr
