"""Stage 9: deterministic train/eval split and sharded GZIP TFRecord writing.

Beam's own TFRecord sink assigns records to shards round-robin from a random
start, so two runs differ byte for byte. Here a record's shard is a hash of its
key and each shard is sorted before writing: the same inputs and flags give the
same files.
"""

import hashlib

import apache_beam as beam
import tensorflow as tf

from tfllm.data import schema
from tfllm.data.documents import counter

SPLITS = ("train", "eval")


def _unit_interval(key, salt=""):
    digest = hashlib.blake2b(f"{salt}{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def split_of(doc_id, eval_fraction):
    """'eval' for a stable `eval_fraction` of documents, chosen by hashing the id."""
    return "eval" if _unit_interval(doc_id, "split/") < eval_fraction else "train"


def shard_file_name(split, shard, num_shards):
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord.gz"


class _WriteShard(beam.DoFn):
    def __init__(self, output_dir, split, num_shards):
        self._output_dir = output_dir
        self._split = split
        self._num_shards = num_shards
        self._written = counter(f"examples_{split}")

    def setup(self):
        tf.io.gfile.makedirs(self._output_dir)

    def process(self, keyed_shard):
        shard, records = keyed_shard
        path = f"{self._output_dir}/{shard_file_name(self._split, shard, self._num_shards)}"
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        count = 0
        # Written under a temporary name first: a retried bundle never leaves a
        # half-written shard under the final name.
        with tf.io.TFRecordWriter(path + ".partial", options) as writer:
            # Ordered by a hash of the key, not the key itself: keys start with the source
            # file, and a shard sorted by source would serve one label or source at a time.
            for _, _, serialized in sorted((_unit_interval(key, "order/"), key, serialized)
                                           for key, serialized in records):
                writer.write(serialized)
                count += 1
        tf.io.gfile.rename(path + ".partial", path, overwrite=True)
        self._written.inc(count)
        yield path, count


class WriteTFRecords(beam.PTransform):
    """(sort key, feature dict) pairs -> `{split}-SSSSS-of-NNNNN.tfrecord.gz` files."""

    def __init__(self, output_dir, split, num_shards, features):
        super().__init__()
        self._output_dir = output_dir
        self._split = split
        self._num_shards = num_shards
        self._features = features

    def expand(self, keyed_examples):
        num_shards, features = self._num_shards, self._features
        return (keyed_examples
                | "Serialize" >> beam.Map(
                    lambda kv: (int(_unit_interval(kv[0], "shard/") * num_shards),
                                (kv[0], schema.serialize(features, kv[1]))))
                | "GroupByShard" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteShard(self._output_dir, self._split, num_shards)))
