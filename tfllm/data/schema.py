"""The TFRecord schema: one source of truth for writers, readers and the manifest.

BERT features keep google-research/bert's `create_pretraining_data.py` names so
its readers (and Model Garden's) can read our records and vice versa.
"""

import numpy as np
import tensorflow as tf

from tfllm.errors import ConfigError

KINDS = ("bert", "gpt", "classify", "regress", "tag", "qa")
# Kinds fine-tuned from labelled texts (one text or a pair each, tagged words, or
# questions on a context).
TASK_KINDS = ("classify", "regress", "tag", "qa")


def feature_lengths(kind, sequence_length, max_predictions_per_seq=0):
    """{feature name: (dtype name, length)} of one example of `kind`."""
    if kind == "bert":
        features = {"input_ids": ("int64", sequence_length),
                    "input_mask": ("int64", sequence_length),
                    "segment_ids": ("int64", sequence_length),
                    "next_sentence_labels": ("int64", 1)}
        if max_predictions_per_seq:  # static masking; otherwise the reader masks
            features.update({"masked_lm_positions": ("int64", max_predictions_per_seq),
                             "masked_lm_ids": ("int64", max_predictions_per_seq),
                             "masked_lm_weights": ("float32", max_predictions_per_seq)})
        return features
    if kind == "gpt":
        # sequence_length + 1 tokens: inputs are [:-1], targets [1:]. Consecutive
        # windows overlap by one token, so every token is a target exactly once.
        return {"input_ids": ("int64", sequence_length + 1),
                "input_mask": ("int64", sequence_length + 1)}
    if kind == "tag":  # tag_ids: the word's tag on its first word piece, -1 elsewhere
        return {"input_ids": ("int64", sequence_length),
                "input_mask": ("int64", sequence_length),
                "segment_ids": ("int64", sequence_length),
                "tag_ids": ("int64", sequence_length),
                "text": ("string", 1),
                "tags": ("string", 1)}
    if kind == "qa":  # one window of a question's context; answers: its JSON answer list
        return {"input_ids": ("int64", sequence_length),
                "input_mask": ("int64", sequence_length),
                "segment_ids": ("int64", sequence_length),
                "start_positions": ("int64", 1),
                "end_positions": ("int64", 1),
                "window": ("int64", 1),
                "question": ("string", 1),
                "context": ("string", 1),
                "answers": ("string", 1)}
    if kind in TASK_KINDS:
        label = ("label_ids", ("int64", 1)) if kind == "classify" else \
            ("label_values", ("float32", 1))
        return {"input_ids": ("int64", sequence_length),
                "input_mask": ("int64", sequence_length),
                "segment_ids": ("int64", sequence_length),
                label[0]: label[1],
                "text": ("string", 1),
                "text_pair": ("string", 1)}
    raise ConfigError(f"Unknown example kind {kind!r}; expected one of {', '.join(KINDS)}.")


def to_manifest(features):
    return {name: {"dtype": dtype, "length": length}
            for name, (dtype, length) in features.items()}


def from_manifest(schema):
    return {name: (spec["dtype"], spec["length"]) for name, spec in schema.items()}


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
