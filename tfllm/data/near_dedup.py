"""Stage 6: near-duplicate removal with MinHash LSH, as a Beam job.

Signatures -> band keys -> GroupByKey (candidate buckets) -> pairs confirmed by
estimated Jaccard -> connected components by min-label propagation -> every
document but its component's smallest id is removed. Hashes come from hashlib
and a seeded numpy RNG, never Python's per-process `hash()`, so every worker
computes the same signatures.
"""

import dataclasses
import hashlib

import apache_beam as beam
import numpy as np

from tfllm.data.documents import counter
from tfllm.errors import ConfigError

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
    """MinHash LSH settings.

    16 bands of 8 rows put the LSH S-curve's midpoint, (1/bands)^(1/rows) ~ 0.71,
    at the Jaccard threshold that then confirms the candidate pairs.
    """

    ngram_size: int = 5
    num_permutations: int = 128
    num_bands: int = 16
    threshold: float = 0.7
    seed: int = 42
    max_components_rounds: int = 10

    def __post_init__(self):
        for name, flag in _POSITIVE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                where = f" ({flag})" if flag else ""
                raise ConfigError(f"MinHash config field '{name}'{where} must be a positive "
                                  f"integer, got {value!r}.")
        if self.num_permutations % self.num_bands:
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
    def rows_per_band(self):
        return self.num_permutations // self.num_bands


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


def minhash_signature(shingle_set, config, permutations=None):
    """uint32 [num_permutations]: per permutation, the low 32 bits of the least
    (a*x + b) mod (2^61 - 1) over the shingles' 32-bit blake2b hashes x."""
    a, b = _permutations(config) if permutations is None else permutations
    x = np.fromiter((int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(),
                                    "little") for s in shingle_set),
                    dtype=np.uint64, count=len(shingle_set))
    least = np.full(config.num_permutations, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, len(x), _CHUNK):
        hashed = _universal_hash(a, b, x[None, start:start + _CHUNK])
        np.minimum(least, hashed.min(axis=1), out=least)
    return (least & _LOW_32_BITS).astype(np.uint32)


def band_keys(signature, config):
    """One bucket key per band: its index and a digest of its rows, so equal rows in
    different bands never share a bucket."""
    bands = np.asarray(signature, dtype="<u4").reshape(config.num_bands, config.rows_per_band)
    return [f"{index}:" + hashlib.blake2b(rows.tobytes(), digest_size=8).hexdigest()
            for index, rows in enumerate(bands)]


def estimated_jaccard(signature_a, signature_b):
    """Fraction of equal MinHash values: an unbiased estimate of the shingle-set Jaccard."""
    return float(np.mean(signature_a == signature_b))


class _Signatures(beam.DoFn):
    def __init__(self, config):
        self._config = config

    def setup(self):
        self._permutations = _permutations(self._config)

    def process(self, document):
        signature = minhash_signature(shingles(document.text, self._config.ngram_size),
                                      self._config, self._permutations)
        yield document.doc_id, signature


def _confirmed_edges(bucket, threshold):
    """Pairs each bucket member with the bucket's smallest id (linear, not all pairs),
    when their estimated Jaccard reaches the threshold."""
    _, members = bucket
    head_id, head_signature = min(members, key=lambda member: member[0])
    for doc_id, signature in members:
        if doc_id != head_id and estimated_jaccard(head_signature, signature) >= threshold:
            yield head_id, doc_id


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

    Documents without any confirmed candidate pair pass through untouched.
    """

    def __init__(self, config=MinHashConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        config = self._config
        labels = (documents
                  | "Signatures" >> beam.ParDo(_Signatures(config))
                  | "BandKeys" >> beam.FlatMap(
                      lambda kv: [(key, kv) for key in band_keys(kv[1], config)])
                  | "Buckets" >> beam.GroupByKey()
                  | "ConfirmPairs" >> beam.FlatMap(_confirmed_edges, config.threshold)
                  | "DistinctEdges" >> beam.Distinct()
                  | "Components" >> ConnectedComponents(config.max_components_rounds))
        return ({"documents": documents | "KeyById" >> beam.Map(lambda d: (d.doc_id, d)),
                 "label": labels}
                | "Join" >> beam.CoGroupByKey()
                | "KeepRepresentatives" >> beam.FlatMap(_keep_representatives))
