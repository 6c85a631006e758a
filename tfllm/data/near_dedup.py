"""Stage 6: near-duplicate removal with MinHash LSH, as a Beam job.

Signatures -> band keys -> GroupByKey (candidate buckets) -> every pair in a
bucket -> pairs confirmed by their exact shingle-set Jaccard -> connected
components by min-label propagation -> every document but its component's
smallest id is removed. Hashes come from hashlib and a seeded numpy RNG, never
Python's per-process `hash()`, so every worker computes the same signatures.

The S-curve. A pair of Jaccard s shares a bucket in at least one of b bands of r
rows with probability P(s) = 1 - (1 - s^r)^b. Candidates are confirmed exactly, so
a false candidate costs one comparison and never a document, while a missed one
keeps a duplicate: the layout is the one with the most rows (fewest candidates)
among those with P(threshold) >= CANDIDATE_PROBABILITY. For 128 permutations and
threshold 0.7 that is 25 bands of 5 rows: P(0.7) = 0.990, P(0.8) = 0.99999,
P(0.5) = 0.55, P(0.3) = 0.06. (16 x 8, the layout whose midpoint sits at 0.7,
has P(0.7) = 0.61: it misses 4 in 10 pairs at the threshold.)
"""

import dataclasses
import functools
import hashlib

import apache_beam as beam
import numpy as np

from tfllm.data.documents import counter
from tfllm.errors import ConfigError

CANDIDATE_PROBABILITY = 0.95

_PRIME = np.uint64((1 << 61) - 1)
_LOW_32_BITS = np.uint64(0xFFFFFFFF)
_LOW_29_BITS = np.uint64((1 << 29) - 1)
_29, _32 = np.uint64(29), np.uint64(32)
_CHUNK = 4096  # shingles hashed at once: bounds memory on very long documents

_POSITIVE_FIELDS = (("ngram_size", "--minhash_ngram"),
                    ("num_permutations", "--minhash_permutations"),
                    ("num_bands", "--minhash_bands"),
                    ("max_components_rounds", None))


@dataclasses.dataclass(frozen=True)
class MinHashConfig:
    """MinHash LSH settings; num_bands=0 chooses the layout from the threshold."""

    ngram_size: int = 5
    num_permutations: int = 128
    num_bands: int = 0
    threshold: float = 0.7
    seed: int = 42
    max_components_rounds: int = 10

    def __post_init__(self):
        for name, flag in _POSITIVE_FIELDS:
            value = getattr(self, name)
            chosen = name == "num_bands"  # 0 asks for the layout chosen from the threshold
            if (not isinstance(value, int) or isinstance(value, bool)
                    or value < (0 if chosen else 1)):
                where = f" ({flag})" if flag else ""
                zero = " (0: chosen from the threshold)" if chosen else ""
                raise ConfigError(f"MinHash config field '{name}'{where} must be a positive "
                                  f"integer{zero}, got {value!r}.")
        if self.num_bands and self.num_permutations % self.num_bands:
            raise ConfigError(
                f"MinHash config field 'num_bands' (--minhash_bands={self.num_bands}) must "
                f"divide num_permutations (--minhash_permutations={self.num_permutations}), "
                "so that every band has the same number of rows.")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError("MinHash config field 'threshold' (--minhash_threshold) must be "
                              f"in (0, 1], got {self.threshold!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError("MinHash config field 'seed' (--seed) must be a non-negative "
                              f"integer, got {self.seed!r}.")

    @property
    def layout(self):
        """(bands, rows per band): the given bands, or the S-curve's choice."""
        if self.num_bands:
            return self.num_bands, self.num_permutations // self.num_bands
        return chosen_layout(self.num_permutations, self.threshold)


def candidate_probability(similarity, bands, rows):
    """P(a pair of this Jaccard shares at least one of `bands` buckets of `rows` rows)."""
    return 1.0 - (1.0 - similarity ** rows) ** bands


@functools.lru_cache(maxsize=16)
def chosen_layout(num_permutations, threshold):
    """The most rows per band whose bands, num_permutations // rows of them, still make
    a pair at the threshold a candidate with probability CANDIDATE_PROBABILITY."""
    for rows in range(num_permutations, 0, -1):
        bands = num_permutations // rows
        if candidate_probability(threshold, bands, rows) >= CANDIDATE_PROBABILITY:
            return bands, rows
    return num_permutations, 1  # a threshold so low that no layout reaches the target


def shingles(text, n):
    """Word n-grams (lowercased); a text shorter than n words is one shingle."""
    words = text.lower().split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _permutations(config):
    """a in [1, p) and b in [0, p), p = 2^61 - 1: the universal family (a*x + b) mod p."""
    rng = np.random.default_rng(config.seed)
    a = rng.integers(1, _PRIME, size=(config.num_permutations, 1), dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=(config.num_permutations, 1), dtype=np.uint64)
    return a, b


def _universal_hash(a, b, x):
    """(a*x + b) mod (2^61 - 1), exact in uint64 for x < 2^32.

    a*x needs 93 bits, so a is split at bit 32: the high part's product is
    shifted by 32 using 2^61 = 1 (mod p). Without this, a and b would have to be
    small, and the permutations would then order shingles nearly alike.
    """
    high = (a >> _32) * x % _PRIME  # < 2^61
    shifted = (high >> _29) + ((high & _LOW_29_BITS) << _32)  # high * 2^32 (mod p)
    return (shifted + (a & _LOW_32_BITS) * x % _PRIME + b) % _PRIME


def shingle_hashes(shingle_set):
    """The shingles' 32-bit blake2b hashes, sorted and distinct (uint64, for the
    universal hash); the set the exact Jaccard is computed on."""
    return np.unique(np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
         for s in shingle_set), dtype=np.uint64, count=len(shingle_set)))


def minhash_signature(hashes, config, permutations=None):
    """uint32 [num_permutations]: per permutation, the low 32 bits of the least
    (a*x + b) mod (2^61 - 1) over the shingle hashes x."""
    a, b = _permutations(config) if permutations is None else permutations
    x = hashes
    least = np.full(config.num_permutations, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, len(x), _CHUNK):
        hashed = _universal_hash(a, b, x[None, start:start + _CHUNK])
        np.minimum(least, hashed.min(axis=1), out=least)
    return (least & _LOW_32_BITS).astype(np.uint32)


def band_keys(signature, config):
    """One bucket key per band: its index and a digest of its rows, so equal rows in
    different bands never share a bucket. A chosen layout may leave the last
    num_permutations mod rows values unused."""
    num_bands, rows = config.layout
    bands = np.asarray(signature[:num_bands * rows], dtype="<u4").reshape(num_bands, rows)
    return [f"{index}:" + hashlib.blake2b(rows.tobytes(), digest_size=8).hexdigest()
            for index, rows in enumerate(bands)]


def exact_jaccard(hashes_a, hashes_b):
    """|A & B| / |A | B| of two sorted, distinct hash arrays."""
    shared = np.intersect1d(hashes_a, hashes_b, assume_unique=True).size
    return shared / (hashes_a.size + hashes_b.size - shared)


class _Signatures(beam.DoFn):
    def __init__(self, config):
        self._config = config

    def setup(self):
        self._permutations = _permutations(self._config)

    def process(self, document):
        hashes = shingle_hashes(shingles(document.text, self._config.ngram_size))
        signature = minhash_signature(hashes, self._config, self._permutations)
        yield document.doc_id, (signature, hashes)


def _bucket_pairs(bucket):
    """Every pair of a bucket's members, (smaller id, larger id)."""
    _, members = bucket
    members = sorted(set(members))
    for i, first in enumerate(members):
        for second in members[i + 1:]:
            yield first, second


def _with_first_hashes(joined):
    """(a, {pairs: [b...], hashes: [A]}) -> (b, (a, A)) for each pair."""
    first, groups = joined
    for hashes in groups["hashes"]:
        for second in groups["pairs"]:
            yield second, (first, hashes)


def _confirmed_edges(joined, threshold):
    """(b, {halves: [(a, A)...], hashes: [B]}) -> (a, b) where exact Jaccard >= threshold."""
    second, groups = joined
    for second_hashes in groups["hashes"]:
        for first, first_hashes in groups["halves"]:
            if exact_jaccard(first_hashes, second_hashes) >= threshold:
                counter("minhash_pairs_confirmed").inc()
                yield first, second
            else:
                counter("minhash_pairs_rejected").inc()


def _propagate(joined):
    """One round of min-label propagation: a node offers its label to its neighbours."""
    node, groups = joined
    label = min(groups["labels"])
    yield node, label
    for neighbour in groups["neighbours"]:
        yield neighbour, label


def _settled(joined):
    """(node, label), counting the nodes whose label still fell in the last round."""
    node, groups = joined
    label = min(groups["label"])
    if label != min(groups["previous"]):
        counter("unconverged_near_duplicate_labels").inc()
    return node, label


class ConnectedComponents(beam.PTransform):
    """Undirected edges (a, b) -> (node, smallest node of its component).

    Min-label propagation unrolled `max_rounds` times: exact for components whose
    diameter is at most `max_rounds`. Nodes whose label still changed in the last
    round are counted as `unconverged_near_duplicate_labels`; a non-zero count
    means some duplicates may survive, and more rounds would remove them.
    """

    def __init__(self, max_rounds):
        super().__init__()
        self._max_rounds = max_rounds

    def expand(self, edges):
        neighbours = edges | "BothDirections" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
        labels = (neighbours
                  | "Nodes" >> beam.Map(lambda e: e[0])
                  | "DistinctNodes" >> beam.Distinct()
                  | "InitialLabels" >> beam.Map(lambda node: (node, node)))
        for step in range(self._max_rounds):
            previous, labels = labels, (
                {"labels": labels, "neighbours": neighbours}
                | f"Join{step}" >> beam.CoGroupByKey()
                | f"Propagate{step}" >> beam.FlatMap(_propagate)
                | f"MinLabel{step}" >> beam.CombinePerKey(min))
        return ({"label": labels, "previous": previous}
                | "JoinLastRounds" >> beam.CoGroupByKey()
                | "Settled" >> beam.Map(_settled))


def _keep_representatives(joined):
    doc_id, groups = joined
    removed = any(label != doc_id for label in groups["label"])
    for document in groups["documents"]:
        if removed:
            counter("near_duplicates_removed").inc()
        else:
            yield document


class DeduplicateNearDuplicates(beam.PTransform):
    """Removes every document whose near-duplicate component has a smaller doc_id.

    Buckets carry ids only; each candidate pair meets the two shingle sets through
    two joins, so no bucket ever holds documents' shingles. A bucket of k members
    makes k(k-1)/2 candidates: exact duplicates are removed before this stage, so
    large buckets are rare. Documents without a confirmed pair pass untouched.
    """

    def __init__(self, config=MinHashConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        config = self._config
        signed = documents | "Signatures" >> beam.ParDo(_Signatures(config))
        hashes = signed | "Hashes" >> beam.MapTuple(lambda doc_id, sh: (doc_id, sh[1]))
        pairs = (signed
                 | "BandKeys" >> beam.FlatMapTuple(
                     lambda doc_id, sh: [(key, doc_id) for key in band_keys(sh[0], config)])
                 | "Buckets" >> beam.GroupByKey()
                 | "BucketPairs" >> beam.FlatMap(_bucket_pairs)
                 | "DistinctPairs" >> beam.Distinct())
        halves = ({"pairs": pairs, "hashes": hashes}
                  | "JoinFirst" >> beam.CoGroupByKey()
                  | "WithFirstHashes" >> beam.FlatMap(_with_first_hashes))
        labels = ({"halves": halves, "hashes": hashes}
                  | "JoinSecond" >> beam.CoGroupByKey()
                  | "ConfirmPairs" >> beam.FlatMap(_confirmed_edges, config.threshold)
                  | "Components" >> ConnectedComponents(config.max_components_rounds))
        return ({"documents": documents | "KeyById" >> beam.Map(lambda d: (d.doc_id, d)),
                 "label": labels}
                | "Join" >> beam.CoGroupByKey()
                | "KeepRepresentatives" >> beam.FlatMap(_keep_representatives))
