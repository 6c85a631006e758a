"""PNG plots: the confusion matrix, regression predictions against their targets and
training curves from TensorBoard logs."""

import glob
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def confusion_matrix_png(matrix, class_names, path):
    matrix = np.asarray(matrix)
    figure, axes = plt.subplots(figsize=(1.2 + 0.6 * len(class_names),) * 2)
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center",
                  color="white" if count > matrix.max() / 2 else "black")
    return _save(figure, path)


def scatter_png(targets_and_predictions, path):
    """Predicted against true values, with the diagonal a perfect regressor sits on."""
    targets, predictions = (np.asarray(v, np.float64) for v in targets_and_predictions)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.scatter(targets, predictions, s=6, alpha=0.5)
    low = min(targets.min(), predictions.min())
    high = max(targets.max(), predictions.max())
    axes.plot([low, high], [low, high], color="gray", linewidth=1)
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    return _save(figure, path)


def grouped_bars_png(values_by_system, ylabel, path):
    """One group of bars per key of the systems' {group: value} dicts (0-1 scores),
    one bar per system (the model and its baselines)."""
    systems = list(values_by_system)
    groups = sorted({g for values in values_by_system.values() for g in values})
    figure, axes = plt.subplots(figsize=(1.5 + 1.2 * len(groups), 3.5))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        values = [values_by_system[system].get(g, 0.0) for g in groups]
        axes.bar(np.arange(len(groups)) + i * width, values, width, label=system)
    axes.set_xticks(np.arange(len(groups)) + width * (len(systems) - 1) / 2, groups)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=8)
    return _save(figure, path)


def entity_f1_png(per_entity_by_system, path):
    """F1 per entity type, one bar per system (the model and its baselines)."""
    return grouped_bars_png({system: {kind: scores.get("f1", 0.0)
                                      for kind, scores in per.items()}
                             for system, per in per_entity_by_system.items()},
                            "entity F1", path)


def read_scalars(log_dir):
    """{tag: [(step, value)]} from the TensorBoard event files under `log_dir`."""
    scalars = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                    else value.simple_value
                scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars


def training_curves_png(log_dir, path, tags=("train/loss", "train/learning_rate")):
    """Loss (with every eval loss) and learning rate against the step."""
    scalars = read_scalars(log_dir)
    losses = [t for t in scalars if t == tags[0] or (t.startswith("eval/") and "loss" in t)]
    if not losses:
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for tag in losses:
        steps, values = zip(*sorted(scalars[tag]))
        top.plot(steps, values, marker="." if tag.startswith("eval") else None, label=tag)
    top.set_ylabel("loss")
    top.legend()
    if tags[1] in scalars:
        steps, values = zip(*sorted(scalars[tags[1]]))
        bottom.plot(steps, values)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    return _save(figure, path)
