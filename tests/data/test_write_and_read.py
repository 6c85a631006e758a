"""Writer determinism, atomic outputs, and tf.data readers reading what was written."""

import os
import random

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from tfllm.data import output, readers
from tfllm.data.bert_examples import BertExampleConfig, mask_tokens
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.write import WriteTFRecords, split_of
from tfllm.errors import ConfigError
from tfllm.tasks.causal_lm import CausalLanguageModeling
from tfllm.tasks.masked_lm import MaskedLanguageModeling, dynamic_masker, unmasked_ids
from tfllm.training import inputs
from tfllm.training.config import TrainConfig

GPT_FEATURES = CausalLanguageModeling().feature_schema(GptExampleConfig(8))


def _bert_features(length, max_predictions):
    """BERT's schema, with static masks in `max_predictions` positions (0: unmasked)."""
    return MaskedLanguageModeling().feature_schema(BertExampleConfig(
        length, max_predictions_per_seq=max_predictions, static_masking=max_predictions > 0))


def _gpt_examples(count):
    return [(f"doc{i:04d}", {"input_ids": list(range(i, i + 9)), "input_mask": [1] * 9})
            for i in range(count)]


def _write(directory, examples, shards, features=GPT_FEATURES, split="train"):
    os.makedirs(directory, exist_ok=True)
    with beam.Pipeline() as pipeline:
        _ = (pipeline | beam.Create(examples)
             | WriteTFRecords(str(directory), split, shards, features))
    return sorted(f for f in os.listdir(directory) if f.endswith(".tfrecord.gz"))


def _dataset_dir(tmp_path, kind, features, train, eval_=(), max_predictions=3):
    directory = tmp_path / kind
    files = {"train": _write(directory, train, 3, features, "train"),
             "eval": _write(directory, list(eval_), 1, features, "eval") if eval_ else []}
    output.write_manifest(directory, output.Manifest(
        kind=kind, schema=features,
        splits={s: output.Split(f, 0) for s, f in files.items()},
        config={"examples": {"masked_lm_prob": 0.15,
                             "max_predictions_per_seq": max_predictions}},
        tokenizer=output.TokenizerInfo(kind, 100, {"pad": 0, "unk": 1, "cls": 2, "sep": 3,
                                                   "mask": 4})))
    return str(directory)


def test_same_examples_give_byte_identical_shards(tmp_path):
    examples = _gpt_examples(200)
    first = _write(tmp_path / "a", examples, 4)
    second = _write(tmp_path / "b", list(reversed(examples)), 4)
    assert first == second == [f"train-{i:05d}-of-00004.tfrecord.gz" for i in range(4)]
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_split_is_deterministic_and_near_the_fraction():
    ids = [f"/corpus/file#{i:08d}" for i in range(20000)]
    splits = [split_of(i, 0.1) for i in ids]
    assert splits == [split_of(i, 0.1) for i in ids]
    assert abs(splits.count("eval") / len(ids) - 0.1) < 0.01
    assert all(split_of(i, 0.0) == "train" for i in ids[:100])


def test_gpt_reader_round_trips_what_the_writer_wrote(tmp_path):
    examples = _gpt_examples(40)
    data_dir = _dataset_dir(tmp_path, "gpt", GPT_FEATURES, examples)
    dataset = readers.make_dataset(data_dir, "train", batch_size=8, shuffle=False, repeat=False)
    seen = []
    for features, labels in dataset:
        assert features["token_ids"].shape == (8, 8) and features["token_ids"].dtype == tf.int32
        np.testing.assert_array_equal(features["token_ids"][:, 1:], labels["lm_ids"][:, :-1])
        seen.extend(int(row[0]) for row in features["token_ids"].numpy())
    assert sorted(seen) == list(range(40))


def test_reader_shards_per_worker_without_overlap(tmp_path):
    examples = _gpt_examples(48)
    data_dir = _dataset_dir(tmp_path, "gpt", GPT_FEATURES, examples)
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        dataset = readers.make_dataset(data_dir, "train", batch_size=1, input_context=context,
                                       shuffle=False, repeat=False)
        seen.append({int(f["token_ids"][0, 0]) for f, _ in dataset})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(48))


def test_bert_reader_static_and_dynamic_masking(tmp_path):
    static = _bert_features(12, 3)
    example = {"input_ids": [2, 50, 4, 52, 3, 60, 61, 3, 0, 0, 0, 0],
               "input_mask": [1] * 8 + [0] * 4, "segment_ids": [0] * 5 + [1] * 3 + [0] * 4,
               "next_sentence_labels": [1], "masked_lm_positions": [2, 0, 0],
               "masked_lm_ids": [51, 0, 0], "masked_lm_weights": [1.0, 0.0, 0.0]}
    data_dir = _dataset_dir(tmp_path, "bert", static, [(f"k{i}", example) for i in range(4)])
    features, labels = next(iter(readers.make_dataset(data_dir, "train", 2, shuffle=False)))
    assert features["mask_positions"].numpy().tolist() == [[2, 0, 0]] * 2
    assert labels["mlm_ids"].numpy().tolist() == [[51, 0, 0]] * 2
    assert labels["nsp_labels"].numpy().tolist() == [1, 1]

    dynamic = _bert_features(12, 0)
    unmasked = {k: v for k, v in example.items() if k in dynamic}
    unmasked["input_ids"] = [2] + list(range(50, 56)) + [3, 0, 0, 0, 0]
    data_dir = _dataset_dir(tmp_path / "dyn", "bert", dynamic,
                            [(f"k{i}", unmasked) for i in range(64)])
    features, labels = next(iter(readers.make_dataset(data_dir, "train", 64, shuffle=False)))
    ids = np.array(unmasked["input_ids"])
    positions = features["mask_positions"].numpy()
    assert positions.shape == (64, 3)  # the data's max_predictions_per_seq
    weights = labels["mlm_weights"].numpy()
    for row in range(64):
        real = positions[row][weights[row] > 0]
        assert len(real) >= 1
        assert set(real) <= set(range(1, 7))  # never [CLS], [SEP] or padding
        np.testing.assert_array_equal(labels["mlm_ids"].numpy()[row][weights[row] > 0],
                                      ids[real])


def test_unmasked_ids_undo_static_masking():
    rng = random.Random(7)
    config = BertExampleConfig(sequence_length=16, masked_lm_prob=0.3, max_predictions_per_seq=5)
    special = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    originals, parsed = [], {"input_ids": [], "masked_lm_positions": [], "masked_lm_ids": [],
                             "masked_lm_weights": []}
    for _ in range(8):
        tokens = [2] + [rng.randint(5, 99) for _ in range(12)] + [3]
        masked, positions, labels = mask_tokens(tokens, config, special, 100, rng)
        fill = 5 - len(positions)
        originals.append(tokens + [0, 0])
        parsed["input_ids"].append(masked + [0, 0])
        parsed["masked_lm_positions"].append(positions + [0] * fill)
        parsed["masked_lm_ids"].append(labels + [0] * fill)
        parsed["masked_lm_weights"].append([1.0] * len(positions) + [0.0] * fill)
    parsed = {name: tf.constant(value) for name, value in parsed.items()}
    assert parsed["input_ids"].numpy().tolist() != originals
    assert unmasked_ids(parsed).numpy().tolist() == originals


def test_reader_remasks_static_data_at_the_rate_asked(tmp_path):
    """--mlm_mask_rate: a training batch of statically masked data is masked anew at the
    trainer's rate; the labels are the original tokens, never the written [MASK]."""
    static = _bert_features(16, 2)
    original = [2] + list(range(50, 62)) + [3, 0, 0]
    written = list(original)
    written[3] = 4  # the data's own mask, label 52
    example = {"input_ids": written, "input_mask": [1] * 14 + [0] * 2,
               "segment_ids": [0] * 16, "next_sentence_labels": [0],
               "masked_lm_positions": [3, 0], "masked_lm_ids": [52, 0],
               "masked_lm_weights": [1.0, 0.0]}
    data_dir = _dataset_dir(tmp_path, "bert", static, [(f"k{i}", example) for i in range(64)],
                            max_predictions=2)
    masker = dynamic_masker(readers.load_manifest(data_dir, "train"), 0.5, 8)
    features, labels = next(iter(readers.make_dataset(data_dir, "train", 64, shuffle=False,
                                                      masker=masker)))
    positions = features["mask_positions"].numpy()
    weights = labels["mlm_weights"].numpy()
    tokens = features["token_ids"].numpy()
    assert positions.shape == (64, 8)
    selected = [positions[row][weights[row] > 0] for row in range(64)]
    assert 4 < np.mean([len(s) for s in selected]) <= 8  # 12 selectable tokens at 0.5, capped
    for row, chosen in enumerate(selected):
        assert set(chosen) <= set(range(1, 13))
        np.testing.assert_array_equal(labels["mlm_ids"].numpy()[row][weights[row] > 0],
                                      np.array(original)[chosen])
        kept = [i for i in range(16) if i not in set(chosen)]
        np.testing.assert_array_equal(tokens[row][kept], np.array(original)[kept])


def test_trainer_input_remasks_with_max_predictions_alone(tmp_path):
    """--mlm_max_predictions without --mlm_mask_rate: the trainer's batches are masked
    anew at the data's own rate (0.15), in that many positions."""
    static = _bert_features(64, 2)
    tokens = [2] + list(range(10, 72)) + [3]
    example = {"input_ids": tokens, "input_mask": [1] * 64, "segment_ids": [0] * 64,
               "next_sentence_labels": [0], "masked_lm_positions": [1, 0],
               "masked_lm_ids": [10, 0], "masked_lm_weights": [1.0, 0.0]}
    data_dir = _dataset_dir(tmp_path, "bert", static, [(f"k{i}", example) for i in range(64)],
                            max_predictions=2)
    config = TrainConfig(data_dir=data_dir, model_dir=str(tmp_path / "m"),
                         global_batch_size=64, shuffle=False, mlm_max_predictions=12)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    features, labels = next(inputs.train_iterator(strategy, config, 0, {}))
    weights = labels["mlm_weights"].numpy()
    assert features["mask_positions"].shape == (64, 12)
    assert 7 < weights.sum(axis=1).mean() <= 12  # 62 selectable tokens at 0.15: ~9


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="has no manifest.json"):
        readers.make_dataset(str(tmp_path), "train", 4)
    data_dir = _dataset_dir(tmp_path, "gpt", GPT_FEATURES, _gpt_examples(4))
    with pytest.raises(ConfigError, match="no split 'test'"):
        readers.make_dataset(data_dir, "test", 4)
    with pytest.raises(ConfigError, match="Split 'eval' .* is empty"):
        readers.make_dataset(data_dir, "eval", 4)


def _manifest(fingerprint):
    return output.Manifest(kind="gpt", tokenizer=output.TokenizerInfo("gpt", 100),
                           fingerprint=fingerprint)


def test_output_directory_appears_only_when_complete(tmp_path):
    target = str(tmp_path / "out")
    temporary = output.begin(target, "abc", overwrite=False)
    open(os.path.join(temporary, "data"), "w").close()
    assert not os.path.exists(target)
    output.commit(temporary, target, _manifest("abc"))
    assert sorted(os.listdir(target)) == ["data", "manifest.json"]
    assert not os.path.exists(temporary)
    # Same fingerprint: nothing to do. Another one: refused unless overwriting.
    assert output.begin(target, "abc", overwrite=False) is None
    with pytest.raises(ConfigError, match="already exists .* --overwrite"):
        output.begin(target, "xyz", overwrite=False)
    temporary = output.begin(target, "xyz", overwrite=True)
    output.commit(temporary, target, _manifest("xyz"))
    assert output.read_manifest(target).fingerprint == "xyz"
    assert os.listdir(target) == ["manifest.json"]


def test_stale_temporary_directories_of_a_crashed_run_are_removed(tmp_path):
    target = str(tmp_path / "out")
    crashed = output.begin(target, "abc", overwrite=False)
    open(os.path.join(crashed, "half-written"), "w").close()
    fresh = output.begin(target, "abc", overwrite=False)
    assert not os.path.exists(crashed) and os.path.isdir(fresh)
    assert not os.path.exists(target)
