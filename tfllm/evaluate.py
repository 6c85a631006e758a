"""`python -m tfllm.evaluate --model_dir artifacts/classify_tiny [--data DIR] [--split eval]`.

Evaluates a trained model on a split and, in the same run and on the same
examples, the baselines that give its numbers meaning; writes metrics.json and
PNG plots and prints a table.
"""

import functools
import json
import os

import numpy as np
import tensorflow as tf
from absl import flags

from tfllm import cli
from tfllm.data import readers
from tfllm.errors import ConfigError
from tfllm.evaluation import baselines, plots
from tfllm.evaluation.entities import entity_metrics
from tfllm.evaluation.metrics import classification_metrics, regression_metrics
from tfllm.evaluation.squad import squad_metrics
from tfllm.serving.modules import QaModule
from tfllm.text.tokenizers import load_tokenizer
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A directory written by tfllm.train.")
flags.DEFINE_string("data", "", "Data to evaluate on (default: the data it trained on).")
flags.DEFINE_string("split", "eval", "Split of --data.")
flags.DEFINE_integer("batch_size", 32, "Examples per batch.")
flags.DEFINE_integer("max_answer_length", 30, "QA: the longest answer, in word pieces.")
flags.DEFINE_string("output_dir", "", "Where metrics.json and plots go (default MODEL_DIR/eval).")
FLAGS = flags.FLAGS


def _batches(data_dir, split, batch_size):
    return readers.make_dataset(data_dir, split, batch_size, shuffle=False, repeat=False)


def evaluate_classifier(model, data_dir, split, batch_size, manifest):
    names = manifest["labels"]
    labels, predictions = [], []
    for features, batch_labels in _batches(data_dir, split, batch_size):
        predictions.extend(np.argmax(model(features, training=False).numpy(), -1).tolist())
        labels.extend(batch_labels["labels"].numpy().tolist())
    if max(labels, default=0) >= len(names):
        raise ConfigError(f"Label id {max(labels)} is outside the label vocabulary of "
                          f"{len(names)} labels.")
    train_texts, train_pairs, train_labels = readers.split_texts(data_dir, "train")
    eval_texts, eval_pairs, eval_labels = readers.split_texts(data_dir, split)
    count = len(labels)
    train_texts = baselines.pair_texts(train_texts, train_pairs)
    eval_texts = baselines.pair_texts(eval_texts, eval_pairs)[:count]
    eval_labels = eval_labels[:count]
    return {
        "model": classification_metrics(labels, predictions, names),
        "majority_class": classification_metrics(
            eval_labels, baselines.majority_class(train_labels, eval_labels), names),
        "tfidf_logistic_regression": classification_metrics(
            eval_labels, baselines.tfidf_logistic_regression(
                train_texts, train_labels, eval_texts, len(names)), names),
    }


def evaluate_regressor(model, data_dir, split, batch_size, manifest):
    """MSE and correlations of the model, the training mean and TF-IDF ridge regression."""
    targets, predictions = [], []
    for features, labels in _batches(data_dir, split, batch_size):
        predictions.extend(model(features, training=False).numpy()[:, 0].tolist())
        targets.extend(labels["values"].numpy().tolist())
    train_texts, train_pairs, train_targets = readers.split_texts(data_dir, "train")
    eval_texts, eval_pairs, _ = readers.split_texts(data_dir, split)
    eval_texts = baselines.pair_texts(eval_texts, eval_pairs)[:len(targets)]
    return {
        "model": {**regression_metrics(targets, predictions),
                  "scatter": (targets, predictions)},
        "mean": regression_metrics(targets, baselines.mean_target(train_targets, targets)),
        "tfidf_ridge_regression": regression_metrics(targets, baselines.tfidf_ridge_regression(
            baselines.pair_texts(train_texts, train_pairs), train_targets, eval_texts)),
    }


def evaluate_tagger(model, data_dir, split, batch_size, manifest):
    """Entity-level P/R/F1 (conlleval's rules) of the model and of each word's most
    frequent training tag. Words past the model's window count as predicted O."""
    names = manifest["labels"]
    predicted = []
    for features, labels in _batches(data_dir, split, batch_size):
        best = np.argmax(model(features, training=False).numpy(), -1)
        tagged = labels["tags"].numpy() >= 0
        predicted.extend([names[i] for i in row[keep]] for row, keep in zip(best, tagged))
    train_words, train_tags = readers.split_tagged(data_dir, "train")
    eval_words, gold = (part[:len(predicted)] for part in readers.split_tagged(data_dir, split))
    predicted = [row + ["O"] * (len(g) - len(row)) for row, g in zip(predicted, gold)]
    return {"model": entity_metrics(gold, predicted),
            "most_frequent_tag": entity_metrics(gold, baselines.most_frequent_tag(
                train_words, train_tags, eval_words))}


def evaluate_qa(model, data_dir, split, batch_size, manifest, max_answer_length=30):
    """SQuAD exact match and F1 of the model (its windows, spans and no-answer decision
    as served) and of the context sentence with the most question words."""
    tokenizer = load_tokenizer(os.path.join(data_dir, manifest["tokenizer"]["file"]))
    module = QaModule.for_data(model, tokenizer, manifest, max_answer_length)
    questions, contexts, labels = readers.split_questions(data_dir, split)
    if not questions:
        raise ConfigError(f"The {split} split of {data_dir} holds no question.")
    predicted = []
    for at in range(0, len(questions), batch_size):
        answers = module.serving_default(tf.constant(questions[at:at + batch_size]),
                                         tf.constant(contexts[at:at + batch_size]))["answer"]
        predicted += [a.decode("utf-8") for a in answers.numpy()]
    gold = [[a["text"] for a in label["answers"]] for label in labels]
    allow = module.allow_no_answer
    return {"model": squad_metrics(gold, predicted),
            "overlap_sentence": squad_metrics(gold, [
                baselines.overlap_sentence(q, c, allow) for q, c in zip(questions, contexts)])}


def evaluate_language_model(model, data_dir, split, batch_size, manifest):
    vocab = manifest["tokenizer"]["vocab_size"]
    kind = manifest["kind"]
    loss_sum = correct = count = nsp_correct = sequences = 0.0
    targets, train_rows = [], []
    for features, labels in _batches(data_dir, split, batch_size):
        outputs = model(features, training=False)
        logits = outputs if kind == "gpt" else outputs["mlm_logits"]
        ids, weights = ((labels["lm_ids"], labels["lm_weights"]) if kind == "gpt"
                        else (labels["mlm_ids"], labels["mlm_weights"]))
        weights = tf.cast(weights, tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(ids, logits)
        loss_sum += float(tf.reduce_sum(losses * weights))
        correct += float(tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32) * weights))
        count += float(tf.reduce_sum(weights))
        targets.extend(ids.numpy()[weights.numpy() > 0].tolist())
        if kind == "bert":
            nsp_correct += float(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(
                outputs["nsp_logits"], -1, output_type=tf.int32), labels["nsp_labels"]),
                tf.float32)))
            sequences += int(labels["nsp_labels"].shape[0])
    for features, labels in _batches(data_dir, "train", batch_size):
        ids = features["token_ids"].numpy() if kind == "gpt" else labels["mlm_ids"].numpy()
        mask = (features["padding_mask"].numpy() if kind == "gpt"
                else labels["mlm_weights"].numpy())
        train_rows.extend(zip(ids, mask))
    model_metrics = {"loss": loss_sum / count, "accuracy": correct / count}
    if kind == "gpt":
        model_metrics["perplexity"] = float(np.exp(model_metrics["loss"]))
        eval_rows = [(f["token_ids"].numpy()[i], f["padding_mask"].numpy()[i])
                     for f, _ in _batches(data_dir, split, batch_size)
                     for i in range(f["token_ids"].shape[0])]
        return {"model": model_metrics, "bigram": {
            "perplexity": baselines.bigram_perplexity(train_rows, eval_rows, vocab)}}
    model_metrics["nsp_accuracy"] = nsp_correct / sequences
    special = manifest["tokenizer"]["special_ids"].values()
    counts = baselines.unigram_counts([r[0] for r in train_rows], [r[1] for r in train_rows],
                                      vocab)
    return {"model": model_metrics,
            "unigram": {**baselines.unigram_prediction(counts, targets, special),
                        "nsp_accuracy": 0.5}}


def _table(results):
    lines = []
    for name, metrics in results.items():
        shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
        lines.append(f"  {name:<28}" + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
    if not FLAGS.model_dir:
        raise ConfigError("--model_dir is required.")
    if FLAGS.max_answer_length < 1:
        raise ConfigError(f"--max_answer_length must be at least 1; got "
                          f"{FLAGS.max_answer_length}.")
    model, train_manifest, _ = load_trained(FLAGS.model_dir, with_tokenizer=False)
    with open(os.path.join(FLAGS.model_dir, "config.json")) as f:
        trained_on = json.load(f).get("train", {}).get("data_dir")
    data_dir = FLAGS.data or trained_on
    if not data_dir:
        raise ConfigError(f"{FLAGS.model_dir} was converted from a published checkpoint and "
                          "has no data of its own: give --data (made by tfllm.preprocess "
                          f"--tokenizer={FLAGS.model_dir}).")
    manifest = readers.load_manifest(data_dir, FLAGS.split)
    if manifest["kind"] != train_manifest["kind"]:
        raise ConfigError(f"{data_dir} holds {manifest['kind']} data but the model was trained "
                          f"on {train_manifest['kind']} data.")
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.model_dir, "eval")
    os.makedirs(output_dir, exist_ok=True)
    evaluate = {"classify": evaluate_classifier, "regress": evaluate_regressor,
                "tag": evaluate_tagger,
                "qa": functools.partial(evaluate_qa,
                                        max_answer_length=FLAGS.max_answer_length)}.get(
        manifest["kind"], evaluate_language_model)
    results = evaluate(model, data_dir, FLAGS.split, FLAGS.batch_size, manifest)
    pictures = {}
    if manifest["kind"] == "tag":
        pictures["entity_f1"] = plots.entity_f1_png(
            {name: r["per_entity"] for name, r in results.items()},
            os.path.join(output_dir, "entity_f1.png"))
    if manifest["kind"] == "qa":
        pictures["answers"] = plots.grouped_bars_png(
            {name: {group: r[f"{prefix}f1"] for group, prefix in (
                ("all", ""), ("answerable", "has_answer_"), ("unanswerable", "no_answer_"))
                if f"{prefix}f1" in r} for name, r in results.items()},
            "SQuAD F1", os.path.join(output_dir, "answers.png"))
    if manifest["kind"] == "regress":
        pictures["predictions"] = plots.scatter_png(
            results["model"].pop("scatter"), os.path.join(output_dir, "predictions.png"))
    if manifest["kind"] == "classify":
        pictures["confusion_matrix"] = plots.confusion_matrix_png(
            results["model"]["confusion_matrix"], manifest["labels"],
            os.path.join(output_dir, "confusion_matrix.png"))
    curves = plots.training_curves_png(os.path.join(FLAGS.model_dir, "tensorboard"),
                                       os.path.join(output_dir, "training_curves.png"))
    if curves:
        pictures["training_curves"] = curves
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump({"data": data_dir, "split": FLAGS.split, "results": results,
                   "plots": pictures}, f, indent=2)
    print(f"{manifest['kind']} evaluation on {data_dir} ({FLAGS.split}):")
    print(_table(results))
    print(f"metrics and plots in {output_dir}")


if __name__ == "__main__":
    cli.run(main)
