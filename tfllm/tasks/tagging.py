"""Token tagging of whitespace-separated words (kind `tag`): CoNLL-style NER or chunking.

A word's tag sits on its first word piece (-1 elsewhere, and the loss skips it);
evaluated with conlleval's entity rules beside each word's most frequent training tag.
"""

import os

import numpy as np
import tensorflow as tf

from tfllm import tasks
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.tag_examples import MakeTagExamples
from tfllm.evaluation import baselines, plots
from tfllm.evaluation.entities import entity_metrics
from tfllm.export.modules import TaggerModule
from tfllm.models import build_backbone
from tfllm.models.tagger import TokenTagger
from tfllm.tasks.base import (Task, correct, cross_entropy, encoder_features, encoder_inputs,
                              eval_or_train, read_split)


def split_tagged(data_dir, split):
    """Words and tags (lists per sentence) of a tagging split, in file order."""
    spec = {"text": tf.io.FixedLenFeature([1], tf.string),
            "tags": tf.io.FixedLenFeature([1], tf.string)}
    words, tags = [], []
    for examples in read_split(data_dir, split, spec):
        words += [t.decode("utf-8").split(" ") for t in examples["text"][:, 0]]
        tags += [t.decode("utf-8").split(" ") for t in examples["tags"][:, 0]]
    return words, tags


@tasks.register
class TokenTagging(Task):
    """Cross-entropy at each word's first piece (tag id >= 0), divided by the number of
    tagged words."""

    kind = "tag"
    losses = ("tag",)
    examples_config = ClassifyExampleConfig
    input_format = ("conll", "tagged words")
    min_labels = 2

    @property
    def num_tags(self):
        return len(self.manifest.labels)

    def labels_of(self, document):
        return document.label.split(" ")

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeTagExamples(examples, tokenizer.path, tokenizer.special_ids, labels)

    def feature_schema(self, examples):
        return {**encoder_features(examples.sequence_length),
                "tag_ids": ("int64", examples.sequence_length),
                "text": ("string", 1), "tags": ("string", 1)}

    def inputs(self, parsed, masker=None):
        return encoder_inputs(parsed), {"tags": parsed["tag_ids"]}

    def build_model(self, config):
        return TokenTagger(build_backbone(config), self.num_tags)

    def counts(self, labels):
        return {"tag": tf.reduce_sum(tf.cast(labels["tags"] >= 0, tf.float32))}

    def sums(self, outputs, labels):
        weights = tf.cast(labels["tags"] >= 0, tf.float32)
        tags = tf.maximum(labels["tags"], 0)
        return ({"tag": tf.reduce_sum(cross_entropy(tags, outputs) * weights)},
                {"tag": tf.reduce_sum(correct(tags, outputs) * weights)})

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """Entity-level P/R/F1 (conlleval's rules) of the model and of each word's most
        frequent training tag. Words past the model's window count as predicted O."""
        names = self.manifest.labels
        predicted = []
        for features, labels in self.batches(data_dir, split, batch_size):
            best = np.argmax(model(features, training=False).numpy(), -1)
            tagged = labels["tags"].numpy() >= 0
            predicted.extend([names[i] for i in row[keep]] for row, keep in zip(best, tagged))
        train_words, train_tags = split_tagged(data_dir, "train")
        eval_words, gold = (part[:len(predicted)] for part in split_tagged(data_dir, split))
        predicted = [row + ["O"] * (len(g) - len(row)) for row, g in zip(predicted, gold)]
        return {"model": entity_metrics(gold, predicted),
                "most_frequent_tag": entity_metrics(gold, baselines.most_frequent_tag(
                    train_words, train_tags, eval_words))}

    def plots(self, results, output_dir):
        return {"entity_f1": plots.entity_f1_png(
            {name: r["per_entity"] for name, r in results.items()},
            os.path.join(output_dir, "entity_f1.png"))}

    def serving_module(self, model, tokenizer, **options):
        return TaggerModule(model, tokenizer, self.manifest.labels)

    def sample_inputs(self, data_dir, count=4):
        words = split_tagged(data_dir, eval_or_train(self.manifest))[0]
        return [" ".join(sentence) for sentence in words[:count]]
