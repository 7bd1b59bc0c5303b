"""Metrics and pictures of a classifier on labelled images: top-1/top-5, per-class precision/recall, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer.manifest import ClassInfo


def compute_metrics(probabilities: np.ndarray, truth: Sequence[int], classes: Sequence[ClassInfo]) -> dict:
    """Metrics of rows of probabilities against true class indexes; -1 (a class the model lacks) is an error."""
    truth = np.asarray(truth, dtype=int)
    n, k = len(truth), len(classes)
    predicted = probabilities.argmax(axis=1) if n else np.zeros(0, dtype=int)
    top5 = np.argsort(-probabilities, axis=1)[:, :5] if n else np.zeros((0, 5), dtype=int)
    known = truth >= 0
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (truth[known], predicted[known]), 1)
    per_class = {}
    for c in classes:
        tp = int(confusion[c.index, c.index])
        support = int(confusion[c.index].sum())
        claimed = int(confusion[:, c.index].sum())
        per_class[c.id] = {
            "label": c.label,
            "support": support,
            "precision": tp / claimed if claimed else 0.0,
            "recall": tp / support if support else 0.0,
        }
    return {
        "n": int(n),
        "unknown_class_images": int((~known).sum()),
        "top1_accuracy": float(np.mean(predicted == truth)) if n else 0.0,
        "top5_accuracy": float(np.mean([t in row for t, row in zip(truth, top5)])) if n else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_ids": [c.id for c in classes],
    }


def format_table(metrics: dict) -> str:
    """A plain-text per-class table followed by the totals."""
    width = max([len("class")] + [len(k) for k in metrics["per_class"]])
    lines = [f"{'class':<{width}}  support  precision  recall"]
    for cid, row in metrics["per_class"].items():
        lines.append(f"{cid:<{width}}  {row['support']:>7}  {row['precision']:>9.3f}  {row['recall']:>6.3f}")
    lines.append(f"images: {metrics['n']}  top-1: {metrics['top1_accuracy']:.3f}  top-5: {metrics['top5_accuracy']:.3f}")
    if metrics.get("unknown_class_images"):
        lines.append(f"images of classes the model does not know (counted as errors): {metrics['unknown_class_images']}")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: dict, path: Path) -> Path:
    """Write the confusion matrix as a PNG."""
    plt = _pyplot()
    matrix = np.asarray(metrics["confusion_matrix"])
    labels = metrics["class_ids"]
    side = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 30:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color="white" if value > matrix.max() / 2 else "black")
    ax.set_title(f"Confusion matrix (n={metrics['n']}, top-1 {metrics['top1_accuracy']:.1%})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_history(history: dict, path: Path) -> Path:
    """Write loss and accuracy per epoch (train and validation) as a PNG."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def predict_dataset(engine, items, *, batch_size: int = 32, progress: bool = False):
    """Probabilities of a dataset's images through the serving engine (the same path as the API).

    Returns (probabilities, true indexes, files, failures); an image that fails to decode is a failure.
    """
    import sys

    from tqdm import tqdm

    from recognizer.engine import predict_files

    truth_of = {path: index for path, index in items}
    rows, truth, files, failed = [], [], [], []
    with tqdm(total=len(items), disable=not progress, file=sys.stderr, unit="img", desc="evaluate") as bar:
        for path, answer in predict_files(engine, [path for path, _ in items], batch_size=batch_size):
            if answer.error is not None:
                failed.append((path, str(answer.error)))
            else:
                rows.append(answer.probabilities)
                truth.append(truth_of[path])
                files.append(path)
            bar.update(1)
    width = engine.manifest.num_classes
    return (np.stack(rows) if rows else np.zeros((0, width))), truth, files, failed
