"""Regression on one text or a pair (kind `regress`): STS-B-style scores.

The model is a one-output sequence classifier; evaluated beside the training mean and
TF-IDF with ridge regression.
"""

import os

import tensorflow as tf

from tfllm import tasks
from tfllm.data.classify_examples import MakeClassifyExamples
from tfllm.errors import ConfigError
from tfllm.evaluation import baselines, plots
from tfllm.evaluation.metrics import regression_metrics
from tfllm.export.modules import TaskModule
from tfllm.models import build_backbone
from tfllm.models.classifier import SequenceClassifier
from tfllm.tasks.base import encoder_inputs
from tfllm.tasks.classification import TextTask


@tasks.register
class Regression(TextTask):
    """Squared error on a float target, divided by the number of examples."""

    kind = "regress"
    losses = ("mse",)
    label_type = "float"
    label_feature = ("label_values", ("float32", 1))

    def check_job(self, config):
        if not config.source.label_field or config.source.label_type != "float":
            raise ConfigError("--kind=regress needs --label_field, the column or field "
                              "holding each example's number.")

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeClassifyExamples(examples, tokenizer.path, tokenizer.special_ids, labels,
                                    regression=True)

    def inputs(self, parsed, masker=None):
        return encoder_inputs(parsed), {"values": parsed["label_values"][:, 0]}

    def build_model(self, config):
        return SequenceClassifier(build_backbone(config), 1)

    def counts(self, labels):
        return {"mse": tf.cast(tf.shape(labels["values"])[0], tf.float32)}

    def sums(self, outputs, labels):
        error = tf.cast(outputs[:, 0], tf.float32) - tf.cast(labels["values"], tf.float32)
        return {"mse": tf.reduce_sum(tf.square(error))}, {}

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """MSE and correlations of the model, the training mean and TF-IDF ridge
        regression."""
        targets, predictions = [], []
        for features, labels in self.batches(data_dir, split, batch_size):
            predictions.extend(model(features, training=False).numpy()[:, 0].tolist())
            targets.extend(labels["values"].numpy().tolist())
        train_texts, train_targets, eval_texts, _ = self.baseline_texts(
            data_dir, split, len(targets))
        return {
            "model": {**regression_metrics(targets, predictions),
                      "scatter": (targets, predictions)},
            "mean": regression_metrics(targets, baselines.mean_target(train_targets, targets)),
            "tfidf_ridge_regression": regression_metrics(
                targets, baselines.tfidf_ridge_regression(train_texts, train_targets,
                                                          eval_texts)),
        }

    def plots(self, results, output_dir):
        return {"predictions": plots.scatter_png(results["model"].pop("scatter"),
                                                 os.path.join(output_dir, "predictions.png"))}

    def serving_module(self, model, tokenizer, **options):
        return TaskModule(model, tokenizer, (), self.pairs)
