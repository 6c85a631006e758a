"""Sequence classification of one text or a pair (kind `classify`): GLUE-style tasks.

The label vocabulary is the sorted distinct labels of the cleaned corpus; the model
is the backbone's pooled output (BERT's [CLS], a GPT's last real token) under a
dense layer. Evaluated beside the majority class and TF-IDF with logistic regression.
"""

import os

import numpy as np
import tensorflow as tf

from tfllm import tasks
from tfllm.data.classify_examples import ClassifyExampleConfig, MakeClassifyExamples
from tfllm.errors import ConfigError, InputError
from tfllm.evaluation import baselines, plots
from tfllm.evaluation.metrics import classification_metrics
from tfllm.export.modules import TaskModule
from tfllm.models import build_backbone
from tfllm.models.classifier import SequenceClassifier
from tfllm.tasks.base import (Task, correct, cross_entropy, encoder_features, encoder_inputs,
                              eval_or_train, read_split)

LABEL_OUT_OF_RANGE = "label id outside the label vocabulary"


def split_texts(data_dir, split, label=("label_ids", tf.int64)):
    """Raw texts, their pair texts ("" for single texts) and labels (the `label`
    feature: class ids, or regression's float targets) of a split, in file order
    (baselines, export checks)."""
    spec = {"text": tf.io.FixedLenFeature([1], tf.string),
            "text_pair": tf.io.FixedLenFeature([1], tf.string, default_value=[b""]),
            label[0]: tf.io.FixedLenFeature([1], label[1])}
    texts, pairs, labels = [], [], []
    for examples in read_split(data_dir, split, spec):
        texts += [t.decode("utf-8") for t in examples["text"][:, 0]]
        pairs += [t.decode("utf-8") for t in examples["text_pair"][:, 0]]
        labels += examples[label[0]][:, 0].tolist()
    return texts, pairs, labels


class TextTask(Task):
    """What classification and regression share: one text or a pair in, packed as the
    encoder reads it, one label per example."""

    examples_config = ClassifyExampleConfig
    label_feature = ("label_ids", ("int64", 1))

    @property
    def pairs(self):
        """Whether the data has a second text per example."""
        return bool(self.manifest.source.get("text_pair_field"))

    @property
    def sample_text_flag(self):
        return not self.pairs

    def feature_schema(self, examples):
        name, spec = self.label_feature
        return {**encoder_features(examples.sequence_length), name: spec,
                "text": ("string", 1), "text_pair": ("string", 1)}

    def split_texts(self, data_dir, split):
        name, (dtype, _) = self.label_feature
        return split_texts(data_dir, split, (name, tf.as_dtype(dtype)))

    def sample_inputs(self, data_dir, count=4):
        texts, pairs, _ = self.split_texts(data_dir, eval_or_train(self.manifest))
        if any(pairs):
            return {"text": texts[:count], "text_pair": pairs[:count]}
        return texts[:count]

    def baseline_texts(self, data_dir, split, count):
        """(train texts, train labels, the first `count` eval texts, their labels), pairs
        joined as the baselines read them."""
        train_texts, train_pairs, train_labels = self.split_texts(data_dir, "train")
        eval_texts, eval_pairs, eval_labels = self.split_texts(data_dir, split)
        return (baselines.pair_texts(train_texts, train_pairs), train_labels,
                baselines.pair_texts(eval_texts, eval_pairs)[:count], eval_labels[:count])


@tasks.register
class Classification(TextTask):
    """Cross-entropy over the label vocabulary, divided by the number of examples."""

    kind = "classify"
    losses = ("cls",)
    min_labels = 2

    @property
    def num_classes(self):
        return len(self.manifest.labels)

    def labels_of(self, document):
        return [document.label]

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeClassifyExamples(examples, tokenizer.path, tokenizer.special_ids, labels)

    def inputs(self, parsed, masker=None):
        return encoder_inputs(parsed), {"labels": parsed["label_ids"][:, 0]}

    def build_model(self, config):
        return SequenceClassifier(build_backbone(config), self.num_classes)

    def counts(self, labels):
        check = tf.debugging.assert_less(
            labels["labels"], tf.cast(self.num_classes, labels["labels"].dtype),
            message=LABEL_OUT_OF_RANGE)
        with tf.control_dependencies([check]):
            return {"cls": tf.cast(tf.shape(labels["labels"])[0], tf.float32)}

    def sums(self, outputs, labels):
        return ({"cls": tf.reduce_sum(cross_entropy(labels["labels"], outputs))},
                {"cls": tf.reduce_sum(correct(labels["labels"], outputs))})

    def input_error(self, message, data_dir):
        if LABEL_OUT_OF_RANGE not in message:
            return None
        return InputError(f"{data_dir} has a {LABEL_OUT_OF_RANGE} ({self.num_classes} labels "
                          "in its manifest).")

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """Accuracy, macro F1 and the confusion matrix beside the majority class and
        TF-IDF with logistic regression, on the same examples."""
        names = self.manifest.labels
        labels, predictions = [], []
        for features, batch_labels in self.batches(data_dir, split, batch_size):
            predictions.extend(np.argmax(model(features, training=False).numpy(), -1).tolist())
            labels.extend(batch_labels["labels"].numpy().tolist())
        if max(labels, default=0) >= len(names):
            raise ConfigError(f"Label id {max(labels)} is outside the label vocabulary of "
                              f"{len(names)} labels.")
        train_texts, train_labels, eval_texts, eval_labels = self.baseline_texts(
            data_dir, split, len(labels))
        return {
            "model": classification_metrics(labels, predictions, names),
            "majority_class": classification_metrics(
                eval_labels, baselines.majority_class(train_labels, eval_labels), names),
            "tfidf_logistic_regression": classification_metrics(
                eval_labels, baselines.tfidf_logistic_regression(
                    train_texts, train_labels, eval_texts, len(names)), names),
        }

    def plots(self, results, output_dir):
        return {"confusion_matrix": plots.confusion_matrix_png(
            results["model"]["confusion_matrix"], self.manifest.labels,
            os.path.join(output_dir, "confusion_matrix.png"))}

    @property
    def published_labels(self):
        return self.manifest.labels

    def serving_module(self, model, tokenizer, **options):
        return TaskModule(model, tokenizer, self.manifest.labels, self.pairs)
