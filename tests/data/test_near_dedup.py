import numpy as np
import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.near_dedup import (DeduplicateNearDuplicates, MinHashConfig, band_keys,
                                   estimated_jaccard, minhash_signature, shingles)
from tfllm.errors import ConfigError

BASE = ("It was the best of times, it was the worst of times, it was the age of wisdom, it "
        "was the age of foolishness, it was the epoch of belief, it was the epoch of "
        "incredulity, it was the season of Light, it was the season of Darkness, it was the "
        "spring of hope, it was the winter of despair, we had everything before us, we had "
        "nothing before us, we were all going direct to Heaven, we were all going direct "
        "the other way").split()
OTHER = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no "
         "money in my purse, and nothing particular to interest me on shore, I thought I "
         "would sail about a little and see the watery part of the world. It is a way I have "
         "of driving off the spleen and regulating the circulation.")
THIRD = ("In a hole in the ground there lived a hobbit. Not a nasty, dirty, wet hole, filled "
         "with the ends of worms and an oozy smell, nor yet a dry, bare, sandy hole with "
         "nothing in it to sit down on or to eat: it was a hobbit-hole, and that means "
         "comfort.")


def _edit(words, positions, replacement="CHANGED"):
    words = list(words)
    for p in positions:
        words[p] = replacement
    return " ".join(words)


def test_estimated_jaccard_tracks_the_true_jaccard():
    config = MinHashConfig(num_permutations=256, num_bands=16)
    a = shingles(" ".join(BASE), 5)
    for edits in ([3], [3, 40], [3, 20, 40, 60, 80]):
        b = shingles(_edit(BASE, edits), 5)
        true = len(a & b) / len(a | b)
        estimate = estimated_jaccard(minhash_signature(a, config), minhash_signature(b, config))
        assert abs(estimate - true) < 0.1, (edits, true, estimate)


def test_signatures_are_deterministic_and_band_keys_distinct():
    config = MinHashConfig()
    signature = minhash_signature(shingles(OTHER, 5), config)
    np.testing.assert_array_equal(signature, minhash_signature(shingles(OTHER, 5), config))
    assert len(set(band_keys(signature, config))) == config.num_bands
    assert shingles("two words", 5) == {"two words"}


def test_near_duplicates_removed_one_per_cluster_kept():
    near = _edit(BASE, [10])          # ~0.9 Jaccard with BASE
    chain_end = _edit(BASE, [10, 30, 50, 70])  # similar to `near`, less to BASE
    documents = docs(" ".join(BASE), OTHER, near, THIRD, chain_end)
    counters = run_transform(DeduplicateNearDuplicates(), documents,
                             [" ".join(BASE), OTHER, THIRD])
    assert counters["near_duplicates_removed"] == 2


def test_distinct_documents_are_all_kept():
    documents = docs(" ".join(BASE), OTHER, THIRD, _edit(BASE, range(0, len(BASE), 3)))
    run_transform(DeduplicateNearDuplicates(), documents, [d.text for d in documents])


def test_bad_config():
    with pytest.raises(ConfigError, match="--minhash_bands=7 must divide"):
        MinHashConfig(num_bands=7)
    with pytest.raises(ConfigError, match="--minhash_threshold"):
        MinHashConfig(threshold=0)
