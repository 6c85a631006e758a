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
