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
_MASK32 = np.uint64(0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class MinHashConfig:
    ngram_size: int = 5
    num_permutations: int = 128
    num_bands: int = 16  # 8 rows per band: pairs above ~0.7 Jaccard collide in a band
    threshold: float = 0.7
    seed: int = 42
    max_components_rounds: int = 8

    def __post_init__(self):
        if self.num_permutations < 1 or self.num_bands < 1 or \
                self.num_permutations % self.num_bands:
            raise ConfigError(f"MinHash: --minhash_bands={self.num_bands} must divide "
                              f"--minhash_permutations={self.num_permutations}.")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"--minhash_threshold must be in (0, 1]; got {self.threshold}.")
        if self.ngram_size < 1:
            raise ConfigError(f"--minhash_ngram must be positive; got {self.ngram_size}.")


def shingles(text, n):
    """Word n-grams (lowercased); a text shorter than n words is one shingle."""
    words = text.lower().split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _permutations(config):
    rng = np.random.default_rng(config.seed)
    a = rng.integers(1, 1 << 32, size=config.num_permutations, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, size=config.num_permutations, dtype=np.uint64)
    return a, b


def minhash_signature(shingle_set, config, permutations=None):
    """uint64 [num_permutations]: min over shingles of (a*x + b) mod (2^61-1), 32 bits."""
    a, b = permutations or _permutations(config)
    x = np.array([int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(),
                                 "little") for s in shingle_set], dtype=np.uint64)
    hashed = (a[:, None] * x[None, :] + b[:, None]) % _PRIME & _MASK32
    return hashed.min(axis=1)


def band_keys(signature, config):
    rows = config.num_permutations // config.num_bands
    return [f"{band}:" + hashlib.blake2b(signature[band * rows:(band + 1) * rows].tobytes(),
                                         digest_size=8).hexdigest()
            for band in range(config.num_bands)]


def estimated_jaccard(signature_a, signature_b):
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
    """Pairs each bucket member with the bucket's smallest id when similar enough."""
    _, members = bucket
    members = sorted(members, key=lambda m: m[0])
    head_id, head_signature = members[0]
    for doc_id, signature in members[1:]:
        if doc_id != head_id and estimated_jaccard(head_signature, signature) >= threshold:
            yield head_id, doc_id


def _propagate(joined):
    """One round of min-label propagation along the edges of a node."""
    node, groups = joined
    label = min(groups["labels"])
    yield node, label
    for neighbour in groups["neighbours"]:
        yield neighbour, label


class DeduplicateNearDuplicates(beam.PTransform):
    def __init__(self, config=MinHashConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        config = self._config
        edges = (documents
                 | "Signatures" >> beam.ParDo(_Signatures(config))
                 | "BandKeys" >> beam.FlatMap(
                     lambda kv: [(key, kv) for key in band_keys(kv[1], config)])
                 | "Buckets" >> beam.GroupByKey()
                 | "ConfirmPairs" >> beam.FlatMap(_confirmed_edges, config.threshold)
                 | "DistinctEdges" >> beam.Distinct())
        neighbours = edges | "BothDirections" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
        labels = (neighbours
                  | "Nodes" >> beam.Map(lambda e: e[0])
                  | "DistinctNodes" >> beam.Distinct()
                  | "InitialLabels" >> beam.Map(lambda node: (node, node)))
        for step in range(config.max_components_rounds):
            labels = ({"labels": labels, "neighbours": neighbours}
                      | f"Join{step}" >> beam.CoGroupByKey()
                      | f"Propagate{step}" >> beam.FlatMap(_propagate)
                      | f"MinLabel{step}" >> beam.CombinePerKey(min))
        removed = (labels
                   | "NotRepresentatives" >> beam.Filter(lambda kv: kv[0] != kv[1])
                   | "MarkRemoved" >> beam.Map(lambda kv: (kv[0], True)))
        return ({"documents": documents | "KeyById" >> beam.Map(lambda d: (d.doc_id, d)),
                 "removed": removed}
                | "Join" >> beam.CoGroupByKey()
                | "DropDuplicates" >> beam.FlatMap(_keep_unremoved))


def _keep_unremoved(joined):
    _, groups = joined
    for document in groups["documents"]:
        if groups["removed"]:
            counter("near_duplicates_removed").inc()
        else:
            yield document
