"""Examples as tf.train.Example records, checked against a schema.

A schema is {feature: (dtype name, length)}: each task kind declares its own
(`Task.feature_schema`), the manifest records it, and writers and readers here
follow it.
"""

import numpy as np
import tensorflow as tf


def parse_spec(features):
    """`tf.io.parse_single_example` spec for a schema."""
    return {name: tf.io.FixedLenFeature([length], tf.as_dtype(dtype))
            for name, (dtype, length) in features.items()}


def serialize(features, values):
    """A tf.train.Example (serialized) from a dict of lists, checked against the schema."""
    feature = {}
    for name, (dtype, length) in features.items():
        value = values[name]
        if len(value) != length:
            raise ValueError(f"feature {name!r} has {len(value)} values, schema says {length}")
        if dtype == "int64":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value))
        elif dtype == "float32":
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=value))
        else:
            value = [v.encode("utf-8") if isinstance(v, str) else v for v in value]
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
    # deterministic=True orders the feature map, so equal examples are equal bytes
    # whichever process (or runner) serialised them.
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def parse_example(features, serialized):
    """Python-side parse (tests, inspection): dict of numpy arrays."""
    example = tf.train.Example.FromString(serialized)
    out = {}
    for name, (dtype, _) in features.items():
        field = example.features.feature[name]
        if dtype == "int64":
            out[name] = np.array(field.int64_list.value, np.int64)
        elif dtype == "float32":
            out[name] = np.array(field.float_list.value, np.float32)
        else:
            out[name] = list(field.bytes_list.value)
    return out
