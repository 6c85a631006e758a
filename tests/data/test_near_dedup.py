import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.documents import COUNTER_NAMESPACE, Document
from benchmarks.near_duplicates import BANDS, kept_ids, planted_corpus, recall_by_band
from tfllm.data.near_dedup import (CANDIDATE_PROBABILITY, ConnectedComponents,
                                   DeduplicateNearDuplicates, MinHashConfig, band_keys,
                                   candidate_probability, chosen_layout,
                                   exact_jaccard, minhash_signature, shingle_hashes, shingles)
from tfllm.errors import ConfigError

BASE = ("It was the best of times, it was the worst of times, it was the age of wisdom, it "
        "was the age of foolishness, it was the epoch of belief, it was the epoch of "
        "incredulity, it was the season of Light, it was the season of Darkness, it was the "
        "spring of hope, it was the winter of despair, we had everything before us, we had "
        "nothing before us, we were all going direct to Heaven, we were all going direct "
        "the other way. In short, the period was so far like the present period, that some "
        "of its noisiest authorities insisted on its being received, for good or for evil, in "
        "the superlative degree of comparison only. There were a king with a large jaw and a "
        "queen with a plain face, on the throne of England; there were a king with a large "
        "jaw and a queen with a fair face, on the throne of France.").split()
OTHER = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no "
         "money in my purse, and nothing particular to interest me on shore, I thought I "
         "would sail about a little and see the watery part of the world. It is a way I have "
         "of driving off the spleen and regulating the circulation.").split()
THIRD = ("In a hole in the ground there lived a hobbit. Not a nasty, dirty, wet hole, filled "
         "with the ends of worms and an oozy smell, nor yet a dry, bare, sandy hole with "
         "nothing in it to sit down on or to eat: it was a hobbit-hole, and that means "
         "comfort.")


def _edit(words, positions, replacement="CHANGED"):
    words = list(words)
    for p in positions:
        words[p] = replacement
    return " ".join(words)


# A ~ B and B ~ C, while A and C share no LSH bucket: only B connects them.
CHAIN_A = " ".join(BASE)
CHAIN_B = _edit(BASE, [23, 63, 103, 143])
CHAIN_C = _edit(BASE, [23, 43, 63, 83, 103, 123, 143, 158])


def estimated_jaccard(signature_a, signature_b):
    """Fraction of equal MinHash values: what signatures estimate the Jaccard by."""
    return float(np.mean(signature_a == signature_b))


def _signature(text, config=MinHashConfig()):
    return minhash_signature(_hashes(text, config), config)


def _hashes(text, config=MinHashConfig()):
    return shingle_hashes(shingles(text, config.ngram_size))


def _signed(shingle_set, config):
    return minhash_signature(shingle_hashes(shingle_set), config)


def test_estimated_jaccard_tracks_the_true_jaccard():
    config = MinHashConfig()
    a = shingles(" ".join(BASE), 5)
    for edits in ([3], [3, 40], [3, 20, 40, 60, 80], list(range(0, 150, 10))):
        b = shingles(_edit(BASE, edits), 5)
        true = len(a & b) / len(a | b)
        estimate = estimated_jaccard(_signed(a, config), _signed(b, config))
        assert abs(estimate - true) < 0.1, (edits, true, estimate)


def test_estimated_jaccard_is_unbiased_across_seeds():
    # Permutations that order shingles alike (e.g. small hash coefficients) fail this.
    common = {f"shared {i}" for i in range(60)}
    a, b = common | {f"a {i}" for i in range(20)}, common | {f"b {i}" for i in range(20)}
    errors = [estimated_jaccard(_signed(a, MinHashConfig(seed=seed)),
                                _signed(b, MinHashConfig(seed=seed))) - 0.6
              for seed in range(20)]
    assert abs(np.mean(errors)) < 0.03


def test_signatures_are_deterministic_and_band_keys_distinct():
    config = MinHashConfig()
    signature = _signature(" ".join(OTHER))
    assert signature.shape == (128,)
    np.testing.assert_array_equal(signature, _signature(" ".join(OTHER)))
    assert len(set(band_keys(signature, config))) == config.layout[0] == 25
    assert shingles("Two  Words", 5) == {"two words"}
    assert shingles("a b c d e f", 5) == {"a b c d e", "b c d e f"}


def test_exact_jaccard_is_the_set_jaccard():
    a, b = shingles(CHAIN_A, 5), shingles(CHAIN_C, 5)
    assert exact_jaccard(shingle_hashes(a), shingle_hashes(b)) == \
        pytest.approx(len(a & b) / len(a | b))
    assert exact_jaccard(_hashes(THIRD), _hashes(THIRD)) == 1.0


def test_the_chain_is_what_the_pipeline_test_needs():
    # B is a confirmed near duplicate of A and of C, A and C are not of each other.
    config = MinHashConfig()
    a, b, c = (_hashes(t) for t in (CHAIN_A, CHAIN_B, CHAIN_C))
    assert exact_jaccard(a, b) >= config.threshold and exact_jaccard(b, c) >= config.threshold
    assert exact_jaccard(a, c) < config.threshold
    keys = [set(band_keys(_signature(t), config)) for t in (CHAIN_A, CHAIN_B, CHAIN_C)]
    assert keys[0] & keys[1] and keys[1] & keys[2]


def _sets_at(similarity, trial, size=200):
    """Two shingle sets of exactly this Jaccard (|A & B| / |A | B|, union of `size`)."""
    shared = round(similarity * size)
    only = (size - shared) // 2
    common = {f"t{trial} shared {i}" for i in range(shared)}
    return (common | {f"t{trial} a {i}" for i in range(only)},
            common | {f"t{trial} b {i}" for i in range(size - shared - only)})


@pytest.mark.parametrize("bands", [0, 16])
def test_candidate_probability_is_the_measured_bucket_sharing_rate(bands):
    # 300 independent trials (a fresh seed each) at Jaccard 0.7: the fraction of pairs
    # that share a bucket matches the S-curve within three standard errors.
    trials = 300
    shared = 0
    for trial in range(trials):
        config = MinHashConfig(num_bands=bands, seed=trial)
        a, b = _sets_at(0.7, trial)
        shared += bool(set(band_keys(_signed(a, config), config))
                       & set(band_keys(_signed(b, config), config)))
    expected = candidate_probability(0.7, *MinHashConfig(num_bands=bands).layout)
    assert abs(shared / trials - expected) <= 3 * np.sqrt(
        max(expected * (1 - expected), 0.01) / trials), (shared / trials, expected)


def test_the_layout_is_chosen_from_the_threshold():
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = chosen_layout(128, threshold)
        assert bands == 128 // rows
        assert candidate_probability(threshold, bands, rows) >= CANDIDATE_PROBABILITY
        assert candidate_probability(threshold, 128 // (rows + 1), rows + 1) < \
            CANDIDATE_PROBABILITY  # one more row per band would miss the target
    assert MinHashConfig().layout == (25, 5)
    assert MinHashConfig(threshold=0.9).layout == chosen_layout(128, 0.9)
    assert MinHashConfig(num_bands=16).layout == (16, 8)


def test_planted_near_duplicates_are_caught_and_distinct_documents_kept(tmp_path):
    # >= 1,000 real distinct documents (fortunes, Jargon File entries) and 50 planted
    # copies per Jaccard band, each of measured 5-gram Jaccard with its original.
    documents, planted = planted_corpus(num_base=1000, per_band=50)
    assert len(documents) == 1200 and all(
        band[0] <= similarity < band[1] for band, similarity in planted.values())
    recall, false_removals = recall_by_band(documents, planted,
                                            kept_ids(documents, MinHashConfig(), tmp_path))
    print("near-duplicate recall by Jaccard band:", recall)
    assert false_removals == 0
    assert set(recall) == {f"{low:.2f}-{high:.2f}" for low, high in BANDS}
    assert min(recall.values()) >= 0.9, recall


def _planted(rounds=10):
    # Ids make A a local minimum: it only learns C's id through B, in the second round.
    documents = [Document("d05", CHAIN_A), Document("d09", CHAIN_B), Document("d01", CHAIN_C),
                 Document("d02", " ".join(OTHER)), Document("d07", _edit(OTHER, [20])),
                 Document("d03", THIRD)]
    return DeduplicateNearDuplicates(MinHashConfig(max_components_rounds=rounds)), documents


def test_near_duplicates_removed_one_per_cluster_kept():
    transform, documents = _planted()
    counters = run_transform(transform, documents, [CHAIN_C, " ".join(OTHER), THIRD])
    assert counters["near_duplicates_removed"] == 3
    assert counters["minhash_pairs_confirmed"] == 3  # A-B, B-C, d02-d07
    assert "unconverged_near_duplicate_labels" not in counters


def test_too_few_rounds_keep_a_duplicate_and_say_so():
    transform, documents = _planted(rounds=1)
    counters = run_transform(transform, documents, [CHAIN_A, CHAIN_C, " ".join(OTHER), THIRD])
    assert counters["near_duplicates_removed"] == 2
    assert counters["unconverged_near_duplicate_labels"] >= 1


def test_distinct_documents_are_all_kept():
    documents = docs(" ".join(BASE), " ".join(OTHER), THIRD, _edit(BASE, range(0, len(BASE), 3)),
                     "short text", "another short text")
    run_transform(DeduplicateNearDuplicates(), documents, [d.text for d in documents])


@pytest.mark.parametrize("rounds, expected_unconverged", [(6, 0), (2, 2)])
def test_connected_components_label_every_node_with_its_smallest(rounds, expected_unconverged):
    # The path 0 - 5 - 4 - 3 - 2 - 1 settles in 5 rounds (a 6th shows it has); 7 - 6 apart.
    edges = [("0", "5"), ("4", "5"), ("3", "4"), ("2", "3"), ("1", "2"), ("6", "7")]
    pipeline = TestPipeline()
    labels = pipeline | beam.Create(edges) | ConnectedComponents(rounds)
    if expected_unconverged == 0:
        assert_that(labels, equal_to([(n, "0") for n in "012345"] + [("6", "6"), ("7", "6")]))
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    assert counters.get("unconverged_near_duplicate_labels", 0) == expected_unconverged


def test_bad_config():
    with pytest.raises(ConfigError, match=r"'num_bands' \(--minhash_bands=7\) must divide"):
        MinHashConfig(num_bands=7)
    with pytest.raises(ConfigError, match="'threshold'"):
        MinHashConfig(threshold=0)
    with pytest.raises(ConfigError, match="'max_components_rounds'"):
        MinHashConfig(max_components_rounds=0)
    with pytest.raises(ConfigError, match=r"'num_bands' \(--minhash_bands\) must be a "
                                          r"positive integer \(0: chosen from the threshold\)"):
        MinHashConfig(num_bands=-1)
