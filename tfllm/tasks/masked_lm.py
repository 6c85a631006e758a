"""BERT pretraining: masked LM and next-sentence prediction (kind `bert`).

Examples keep google-research/bert's `create_pretraining_data.py` feature names, so
its readers (and Model Garden's) read our records and vice versa. Masks are written
by the data job (static) or drawn by keras-hub's `MaskedLMMaskGenerator` in the
reader for every batch (dynamic).
"""

import keras_hub
import tensorflow as tf

from tfllm import tasks
from tfllm.data.bert_examples import BertExampleConfig, MakeBertExamples
from tfllm.evaluation import baselines
from tfllm.export.modules import EncoderModule
from tfllm.models import build_pretraining_model
from tfllm.tasks.base import (Task, TokenScores, correct, cross_entropy, encoder_features,
                              first_words)


def unmasked_ids(parsed):
    """The token ids before static masking: each masked position gets its label back,
    so a training batch can be masked anew (dynamic masking over static data)."""
    if "masked_lm_positions" not in parsed:
        return parsed["input_ids"]
    selected = parsed["masked_lm_weights"] > 0
    positions = parsed["masked_lm_positions"]
    rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
    indices = tf.stack([tf.boolean_mask(rows, selected), tf.boolean_mask(positions, selected)],
                       axis=1)
    return tf.tensor_scatter_nd_update(parsed["input_ids"], indices,
                                       tf.boolean_mask(parsed["masked_lm_ids"], selected))


def dynamic_masker(manifest, masked_lm_prob=0.0, max_predictions_per_seq=0):
    """keras-hub's mask generator set up for the manifest's WordPiece vocabulary; the rate
    and the positions per sequence default to those the data was written with."""
    special = manifest.tokenizer.special_ids
    written = manifest.examples
    return keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=manifest.tokenizer.vocab_size,
        mask_selection_rate=masked_lm_prob or written["masked_lm_prob"],
        mask_token_id=special["mask"],
        mask_selection_length=max_predictions_per_seq or written["max_predictions_per_seq"],
        unselectable_token_ids=[special["pad"], special["cls"], special["sep"]],
        mask_token_rate=0.8, random_token_rate=0.1)


@tasks.register
class MaskedLanguageModeling(Task):
    """Loss sums of the masked tokens (divided by the masked positions) and of the
    sentence pairs (divided by the pairs)."""

    kind = "bert"
    losses = ("mlm", "nsp")
    examples_config = BertExampleConfig
    model_families = ("bert",)
    converted_samples = ("The capital of France is Paris.",
                         "Computers make very fast, very accurate mistakes.")

    @classmethod
    def examples_from_options(cls, options):
        return BertExampleConfig(
            sequence_length=options["sequence_length"],
            short_seq_prob=options["short_seq_prob"],
            masked_lm_prob=options["masked_lm_prob"],
            max_predictions_per_seq=options["max_predictions_per_seq"],
            dupe_factor=options["dupe_factor"], static_masking=not options["dynamic_masking"],
            seed=options["seed"])

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeBertExamples(examples, tokenizer.path, tokenizer.special_ids,
                                tokenizer.vocab_size, num_documents)

    def feature_schema(self, examples):
        features = {**encoder_features(examples.sequence_length),
                    "next_sentence_labels": ("int64", 1)}
        if examples.static_masking:  # otherwise the reader masks
            length = examples.max_predictions_per_seq
            features.update({"masked_lm_positions": ("int64", length),
                             "masked_lm_ids": ("int64", length),
                             "masked_lm_weights": ("float32", length)})
        return features

    def inputs(self, parsed, masker=None):
        features = {"token_ids": parsed["input_ids"], "segment_ids": parsed["segment_ids"],
                    "padding_mask": parsed["input_mask"]}
        if masker is not None:
            masked = masker(unmasked_ids(parsed))
            features["token_ids"] = masked["token_ids"]
            features["mask_positions"] = masked["mask_positions"]
            labels = {"mlm_ids": masked["mask_ids"], "mlm_weights": masked["mask_weights"]}
        else:
            features["mask_positions"] = parsed["masked_lm_positions"]
            labels = {"mlm_ids": parsed["masked_lm_ids"],
                      "mlm_weights": parsed["masked_lm_weights"]}
        labels["nsp_labels"] = parsed["next_sentence_labels"][:, 0]
        return features, labels

    def default_masker(self):
        if "masked_lm_positions" in self.manifest.schema:
            return None
        return dynamic_masker(self.manifest)

    def check_training(self, train_config):
        """Every training flag applies to BERT pretraining."""

    def training_masker(self, train_config):
        """With --mlm_mask_rate or --mlm_max_predictions every training batch is masked
        anew (the one not given follows the data)."""
        if not (train_config.mlm_mask_rate or train_config.mlm_max_predictions):
            return None
        return dynamic_masker(self.manifest, train_config.mlm_mask_rate,
                              train_config.mlm_max_predictions)

    def build_model(self, config):
        return build_pretraining_model(config)

    def counts(self, labels):
        return {"mlm": tf.reduce_sum(tf.cast(labels["mlm_weights"], tf.float32)),
                "nsp": tf.cast(tf.shape(labels["nsp_labels"])[0], tf.float32)}

    def sums(self, outputs, labels):
        weights = tf.cast(labels["mlm_weights"], tf.float32)
        mlm = cross_entropy(labels["mlm_ids"], outputs["mlm_logits"]) * weights
        nsp = cross_entropy(labels["nsp_labels"], outputs["nsp_logits"])
        return ({"mlm": tf.reduce_sum(mlm), "nsp": tf.reduce_sum(nsp)},
                {"mlm": tf.reduce_sum(correct(labels["mlm_ids"], outputs["mlm_logits"])
                                      * weights),
                 "nsp": tf.reduce_sum(correct(labels["nsp_labels"], outputs["nsp_logits"]))})

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """Masked-token loss and accuracy, and next-sentence accuracy, beside the
        unigram prediction of the training split's masked tokens and a coin."""
        scores, nsp_correct, pairs = TokenScores(), 0.0, 0
        for features, labels in self.batches(data_dir, split, batch_size):
            outputs = model(features, training=False)
            scores.add(labels["mlm_ids"], outputs["mlm_logits"], labels["mlm_weights"])
            nsp_correct += float(tf.reduce_sum(correct(labels["nsp_labels"],
                                                       outputs["nsp_logits"])))
            pairs += int(labels["nsp_labels"].shape[0])
        ids, masks = [], []
        for _, labels in self.batches(data_dir, "train", batch_size):
            ids.extend(labels["mlm_ids"].numpy())
            masks.extend(labels["mlm_weights"].numpy())
        tokenizer = self.manifest.tokenizer
        counts = baselines.unigram_counts(ids, masks, tokenizer.vocab_size)
        return {"model": {**scores.metrics(), "nsp_accuracy": nsp_correct / pairs},
                "unigram": {**baselines.unigram_prediction(
                    counts, scores.targets, tokenizer.special_ids.values()),
                    "nsp_accuracy": 0.5}}

    def serving_module(self, model, tokenizer, fill_mask_top_k=5, **options):
        return EncoderModule(model, tokenizer, fill_mask_top_k)

    def sample_inputs(self, data_dir, count=4):
        """The first words of a few cleaned documents."""
        return first_words(data_dir, count, 12)
