"""Metrics and pictures of a classifier on labelled images: top-1/top-5, per-class precision/recall, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer import errors
from recognizer.manifest import DOMAINS, ClassInfo


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


DOMAIN_CLASSES = tuple(ClassInfo(i, d, d, d) for i, d in enumerate(DOMAINS))
MAX_PLOTTED_CLASSES = 30


def scoring_classes(folders: Sequence[str], classes: Sequence[ClassInfo]) -> tuple[tuple[ClassInfo, ...], bool]:
    """What an evaluation set's folders are scored as, and whether by domain: the model's classes when any
    folder names one, else the domains when every folder is named after one; otherwise the set is refused."""
    if set(folders) & {c.id for c in classes}:
        return tuple(classes), False
    if set(folders) <= set(DOMAINS):
        return DOMAIN_CLASSES, True
    examples = ", ".join(c.id for c in list(classes)[:5])
    raise errors.DatasetError(
        f"None of the folders ({', '.join(sorted(folders)[:5])}) is a class of the model (e.g. {examples}) or a "
        f"domain ({', '.join(DOMAINS)}). Name each folder after a class id of the model, or after a domain."
    )


def by_domain(probabilities: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
    """(N, classes) probabilities -> (N, domains): each domain's classes summed, in DOMAINS order."""
    domains = np.array([c.domain for c in classes])
    return np.stack([probabilities[:, domains == d].sum(axis=1) for d in DOMAINS], axis=1)


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
    matrix, labels = _most_confused(np.asarray(metrics["confusion_matrix"]), list(metrics["class_ids"]))
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
    shown = "" if len(labels) == len(metrics["class_ids"]) else f", the {len(labels)} most confused classes"
    ax.set_title(f"Confusion matrix (n={metrics['n']}, top-1 {metrics['top1_accuracy']:.1%}{shown})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _most_confused(matrix: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """At most MAX_PLOTTED_CLASSES rows and columns: the classes with the most errors, either way.

    A picture sized per class would need tens of gigabytes for a 1000-class model.
    """
    if len(labels) <= MAX_PLOTTED_CLASSES:
        return matrix, labels
    errors_of = matrix.sum(axis=0) + matrix.sum(axis=1) - 2 * np.diag(matrix)
    keep = np.sort(np.argsort(-errors_of, kind="stable")[:MAX_PLOTTED_CLASSES])
    return matrix[np.ix_(keep, keep)], [labels[i] for i in keep]


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
