"""Pretraining tasks: which model, and loss and metric sums with their normalisers.

A task returns *sums* over a micro-batch plus the count each sum is divided by
(masked tokens for MLM, sequences for NSP, real tokens for causal LM). The
trainer adds the counts over all replicas and micro-batches before dividing,
so the loss of a step does not depend on how the global batch was split.
"""

import tensorflow as tf

from tfllm.data.schema import TASK_KINDS
from tfllm.errors import ConfigError
from tfllm.models import build_backbone, build_pretraining_model
from tfllm.models.classifier import SequenceClassifier
from tfllm.models.span_extractor import SpanExtractor
from tfllm.models.tagger import TokenTagger


def _cross_entropy(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def _correct(labels, logits):
    return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                            tf.cast(labels, tf.int32)), tf.float32)


class BertPretraining:
    kind = "bert"
    losses = ("mlm", "nsp")

    def counts(self, labels):
        return {"mlm": tf.reduce_sum(tf.cast(labels["mlm_weights"], tf.float32)),
                "nsp": tf.cast(tf.shape(labels["nsp_labels"])[0], tf.float32)}

    def sums(self, outputs, labels):
        """Loss sums and correct-prediction sums, keyed like `counts`."""
        weights = tf.cast(labels["mlm_weights"], tf.float32)
        mlm = _cross_entropy(labels["mlm_ids"], outputs["mlm_logits"]) * weights
        nsp = _cross_entropy(labels["nsp_labels"], outputs["nsp_logits"])
        return ({"mlm": tf.reduce_sum(mlm), "nsp": tf.reduce_sum(nsp)},
                {"mlm": tf.reduce_sum(_correct(labels["mlm_ids"], outputs["mlm_logits"])
                                      * weights),
                 "nsp": tf.reduce_sum(_correct(labels["nsp_labels"], outputs["nsp_logits"]))})

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return build_pretraining_model(config)


class CausalLanguageModeling:
    kind = "gpt"
    losses = ("lm",)

    def counts(self, labels):
        return {"lm": tf.reduce_sum(labels["lm_weights"])}

    def sums(self, outputs, labels):
        weights = labels["lm_weights"]
        loss = _cross_entropy(labels["lm_ids"], outputs) * weights
        return ({"lm": tf.reduce_sum(loss)},
                {"lm": tf.reduce_sum(_correct(labels["lm_ids"], outputs) * weights)})

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return build_pretraining_model(config)


LABEL_OUT_OF_RANGE = "label id outside the label vocabulary"


class Classification:
    """Cross-entropy over the label vocabulary, divided by the number of examples."""

    kind = "classify"
    losses = ("cls",)

    def __init__(self, num_classes):
        self.num_classes = num_classes

    def counts(self, labels):
        check = tf.debugging.assert_less(
            labels["labels"], tf.cast(self.num_classes, labels["labels"].dtype),
            message=LABEL_OUT_OF_RANGE)
        with tf.control_dependencies([check]):
            return {"cls": tf.cast(tf.shape(labels["labels"])[0], tf.float32)}

    def sums(self, outputs, labels):
        return ({"cls": tf.reduce_sum(_cross_entropy(labels["labels"], outputs))},
                {"cls": tf.reduce_sum(_correct(labels["labels"], outputs))})

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return SequenceClassifier(build_backbone(config), self.num_classes)


class Regression:
    """Squared error on a float target (STS-B-style scores), divided by the number of
    examples: the model is a one-output sequence classifier."""

    kind = "regress"
    losses = ("mse",)

    def counts(self, labels):
        return {"mse": tf.cast(tf.shape(labels["values"])[0], tf.float32)}

    def sums(self, outputs, labels):
        error = tf.cast(outputs[:, 0], tf.float32) - tf.cast(labels["values"], tf.float32)
        return {"mse": tf.reduce_sum(tf.square(error))}, {}

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return SequenceClassifier(build_backbone(config), 1)


class TokenTagging:
    """Cross-entropy at each word's first piece (tag id >= 0), divided by the number of
    tagged words."""

    kind = "tag"
    losses = ("tag",)

    def __init__(self, num_tags):
        self.num_tags = num_tags

    def counts(self, labels):
        return {"tag": tf.reduce_sum(tf.cast(labels["tags"] >= 0, tf.float32))}

    def sums(self, outputs, labels):
        weights = tf.cast(labels["tags"] >= 0, tf.float32)
        tags = tf.maximum(labels["tags"], 0)
        return ({"tag": tf.reduce_sum(_cross_entropy(tags, outputs) * weights)},
                {"tag": tf.reduce_sum(_correct(tags, outputs) * weights)})

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return TokenTagger(build_backbone(config), self.num_tags)


class SpanExtraction:
    """Extractive QA: the mean of the start and end positions' cross-entropies, divided
    by the number of windows (position 0 is the answer of a window without one)."""

    kind = "qa"
    losses = ("span",)

    def counts(self, labels):
        return {"span": tf.cast(tf.shape(labels["starts"])[0], tf.float32)}

    def sums(self, outputs, labels):
        starts, ends = outputs[..., 0], outputs[..., 1]
        loss = (_cross_entropy(labels["starts"], starts) + _cross_entropy(labels["ends"], ends))
        both = _correct(labels["starts"], starts) * _correct(labels["ends"], ends)
        return {"span": tf.reduce_sum(loss) / 2.0}, {"span": tf.reduce_sum(both)}

    def tokens(self, features):
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def build_model(self, config):
        return SpanExtractor(build_backbone(config))


TASKS = {"bert": BertPretraining, "gpt": CausalLanguageModeling, "regress": Regression,
         "qa": SpanExtraction}


def task_for(manifest, config):
    """The task for the data's kind, checking the model matches the data."""
    kind = manifest["kind"]
    if kind in TASK_KINDS:
        family = manifest["tokenizer"].get("family", config.family)
        if family != config.family:
            raise ConfigError(f"The {kind} data was tokenized for {family} models; "
                              f"a {config.family} model cannot read it.")
    elif config.family != kind:
        raise ConfigError(f"The {config.family} model cannot train on {kind} data; pick a "
                          f"{kind}_* preset or other data.")
    vocab = manifest["tokenizer"]["vocab_size"]
    if config.vocab_size != vocab:
        raise ConfigError(f"The model's vocab_size is {config.vocab_size} but the data's "
                          f"tokenizer has {vocab} tokens; set --vocab_size={vocab}.")
    length = manifest["schema"]["input_ids"]["length"] - (1 if kind == "gpt" else 0)
    if length > config.max_sequence_length:
        raise ConfigError(f"The data has sequences of {length} tokens but the model's "
                          f"max_sequence_length is {config.max_sequence_length}.")
    if kind == "classify":
        return Classification(len(manifest["labels"]))
    if kind == "tag":
        return TokenTagging(len(manifest["labels"]))
    return TASKS[kind]()
