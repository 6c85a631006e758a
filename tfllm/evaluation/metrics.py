"""Classification metrics from labels and predictions (numpy, no framework needed)."""

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    """[true class, predicted class] counts."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def classification_metrics(labels, predictions, class_names):
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    A class never predicted has precision 0 (and one absent from the labels recall
    0), the convention of scikit-learn's `zero_division=0`.
    """
    matrix = confusion_matrix(labels, predictions, len(class_names))
    true_positives = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives),
                          where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives),
                       where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros_like(true_positives), where=precision + recall > 0)
    return {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f),
                             "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, actual)},
        "confusion_matrix": matrix.tolist(),
    }


def _ranks(values):
    """Ranks from 1, ties sharing their mean rank (Spearman's convention)."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson(x, y):
    """Pearson's correlation; 0 when either side is constant (a mean predictor)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    scale = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / scale) if scale > 0 else 0.0


def regression_metrics(targets, predictions):
    """MSE, RMSE, MAE and Pearson's and Spearman's correlations (STS-B's metrics)."""
    targets, predictions = np.asarray(targets, np.float64), np.asarray(predictions, np.float64)
    errors = predictions - targets
    mse = float(np.mean(errors ** 2))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(errors))),
            "pearson": pearson(targets, predictions),
            "spearman": pearson(_ranks(targets), _ranks(predictions)),
            "examples": int(len(targets))}
