"""Example making: NSP pairs and masking (BERT), packing (GPT), classification."""

import random

import numpy as np

from tfllm.data.bert_examples import (BertExampleConfig, instances_from_document, mask_tokens,
                                      split_sentences)
from tfllm.data.gpt_examples import pack
from tfllm.text.packing import pack as pack_segments

SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
VOCAB = 1000


def _corpus(rng, documents=60):
    """Documents of 1-6 segments of 3-25 tokens, ids >= 10 (never special)."""
    return [[list(rng.integers(10, VOCAB, rng.integers(3, 25))) for _ in
             range(rng.integers(1, 7))] for _ in range(documents)]


def _all_instances(config, seed=0):
    corpus = _corpus(np.random.default_rng(seed))
    rng = random.Random(seed)
    return corpus, [inst for i in range(len(corpus))
                    for inst in instances_from_document(corpus, i, config, SPECIAL, VOCAB, rng)]


def test_instances_have_bert_structure():
    config = BertExampleConfig(sequence_length=32, max_predictions_per_seq=5)
    _, instances = _all_instances(config)
    assert len(instances) > 50
    for inst in instances:
        assert {len(inst[k]) for k in ("input_ids", "input_mask", "segment_ids")} == {32}
        assert len(inst["masked_lm_positions"]) == 5
        n = sum(inst["input_mask"])
        segments = inst["segment_ids"][:n]
        boundary = segments.index(1)
        assert inst["input_ids"][0] == SPECIAL["cls"]
        assert inst["input_ids"][boundary - 1] == SPECIAL["sep"]
        assert inst["input_ids"][n - 1] == SPECIAL["sep"]
        assert segments == [0] * boundary + [1] * (n - boundary)
        assert all(t == SPECIAL["pad"] for t in inst["input_ids"][n:])
        weights = inst["masked_lm_weights"]
        positions = [p for p, w in zip(inst["masked_lm_positions"], weights) if w]
        assert positions == sorted(positions) and all(0 < p < n for p in positions)


def test_next_sentence_labels_are_balanced():
    config = BertExampleConfig(sequence_length=48)
    _, instances = _all_instances(config)
    random_next = np.mean([inst["next_sentence_labels"][0] for inst in instances])
    assert 0.4 < random_next < 0.6, random_next


def test_actual_next_pairs_continue_the_same_document():
    config = BertExampleConfig(sequence_length=128, short_seq_prob=0.0, static_masking=False)
    corpus, instances = _all_instances(config)
    streams = [" ".join(map(str, (t for s in doc for t in s))) for doc in corpus]
    for inst in instances:
        if inst["next_sentence_labels"][0] == 0:
            n = sum(inst["input_mask"])
            tokens = [t for t in inst["input_ids"][:n] if t not in (SPECIAL["cls"],
                                                                    SPECIAL["sep"])]
            assert any(" ".join(map(str, tokens)) in s for s in streams)


def test_masking_rates_match_bert():
    config = BertExampleConfig(masked_lm_prob=0.15, max_predictions_per_seq=1000)
    rng = random.Random(0)
    counts = {"mask": 0, "random": 0, "kept": 0}
    total_predictions = total_tokens = 0
    for _ in range(300):
        tokens = [SPECIAL["cls"]] + [rng.randint(10, VOCAB - 1) for _ in range(98)] + [
            SPECIAL["sep"]]
        masked, positions, originals = mask_tokens(tokens, config, SPECIAL, VOCAB, rng)
        total_predictions += len(positions)
        total_tokens += len(tokens)
        assert originals == [tokens[p] for p in positions]
        assert tokens[0] == masked[0] and tokens[-1] == masked[-1]  # specials never masked
        for p in positions:
            if masked[p] == SPECIAL["mask"]:
                counts["mask"] += 1
            elif masked[p] == tokens[p]:
                counts["kept"] += 1
            else:
                counts["random"] += 1
    assert abs(total_predictions / total_tokens - 0.15) < 0.005
    shares = {k: v / total_predictions for k, v in counts.items()}
    assert abs(shares["mask"] - 0.8) < 0.03
    assert abs(shares["random"] - 0.1) < 0.03  # (a random draw can equal the original)
    assert abs(shares["kept"] - 0.1) < 0.03


def test_max_predictions_caps_the_masks():
    config = BertExampleConfig(max_predictions_per_seq=3)
    tokens = [2] + list(range(10, 110)) + [3]
    _, positions, _ = mask_tokens(tokens, config, SPECIAL, VOCAB, random.Random(1))
    assert len(positions) == 3


def test_split_sentences():
    assert split_sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]


def test_packing_loses_no_token_and_pads_only_the_last_window():
    rng = np.random.default_rng(0)
    documents = [list(rng.integers(3, 50, rng.integers(1, 40))) for _ in range(30)]
    windows = pack(documents, 16, end_of_text=2, pad=0)
    stream = [t for d in documents for t in (*d, 2)]
    assert all(len(ids) == 17 and len(mask) == 17 for ids, mask in windows)
    rebuilt = [windows[0][0][0]]
    for ids, mask in windows:
        real = ids[:sum(mask)]
        assert rebuilt[-1] == real[0]  # windows overlap by exactly one token
        rebuilt.extend(real[1:])
    assert rebuilt == stream
    assert all(sum(mask) == 17 for _, mask in windows[:-1])
    targets = sum(sum(mask) - 1 for _, mask in windows)
    assert targets == len(stream) - 1  # every token but the first is a target once


def test_classification_encoding_wordpiece_and_sentencepiece():
    ids, mask, segments = pack_segments([[10, 11, 12]], 6, SPECIAL)
    assert ids == [2, 10, 11, 12, 3, 0] and mask == [1, 1, 1, 1, 1, 0] and segments == [0] * 6
    ids, mask, _ = pack_segments([list(range(10, 30))], 6, SPECIAL)
    assert ids == [2, 10, 11, 12, 13, 3] and mask == [1] * 6
    ids, _, _ = pack_segments([[10, 11]], 4, {"pad": 0, "unk": 1, "end_of_text": 2})
    assert ids == [10, 11, 2, 0]
