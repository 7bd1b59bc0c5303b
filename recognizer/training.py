"""Transfer learning: frozen pretrained backbone, cached features, a softmax head, optional fine-tuning.

Every image goes through recognizer.preprocessing exactly as it will when
served; the class order of the dataset is the order saved in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from recognizer import errors
from recognizer.backbones import Backbone, get_backbone
from recognizer.datasets import Dataset, check_trainable
from recognizer.calibration import calibrate_version
from recognizer.evaluation import compute_metrics
from recognizer.fine_tuning import Log, fine_tune
from recognizer.manifest import Manifest
from recognizer.preprocessing import normalize, open_image, to_pixels
from recognizer.progress import TrainingHooks, keras_callback

@dataclass
class TrainConfig:
    name: str
    backbone: str = "efficientnet_lite0"
    epochs: int = 40
    fine_tune_layers: int = 0
    fine_tune_epochs: int = 3
    val_split: float = 0.2
    folds: int = 0
    seed: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-3
    from_scratch: bool = False
    cache_dir: Path | None = None
    progress: bool = True
    hooks: TrainingHooks = field(default_factory=TrainingHooks)  # progress reports and cancellation


@dataclass
class TrainResult:
    model: object
    manifest: Manifest
    history: dict
    metrics: dict
    cross_validation: dict | None = None
    split: dict = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files that failed to decode while training


def set_determinism(seed: int) -> None:
    """Same seed, same data -> same weights (single-threaded determinism of TF ops on CPU)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_backbone(config: TrainConfig) -> tuple[Backbone, object]:
    """The backbone spec and its feature model; pretrained unless from_scratch."""
    backbone = get_backbone(config.backbone)
    weights = None if config.from_scratch else "imagenet"
    return backbone, backbone.build(include_top=False, weights=weights)


# ---- features ---------------------------------------------------------------------------------

def _cached_vector(cached: Path, dim: int) -> np.ndarray | None:
    """The cached feature vector, or None when there is none or it cannot be read whole (computed again)."""
    try:
        vector = np.load(cached)
    except (OSError, ValueError, EOFError):
        return None
    return vector if vector.shape == (dim,) else None


def _cache_vector(cached: Path, vector: np.ndarray) -> None:
    """Written beside and renamed into place: a run killed mid-write leaves no half file that later runs would read."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.stem}.{os.getpid()}.npy")
    np.save(partial, vector)
    os.replace(partial, cached)


def _cache_key(path: Path, backbone: Backbone) -> str:
    spec = json.dumps(backbone.input_spec.to_dict(), sort_keys=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{backbone.name}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}-{digest}"


def extract_features(
    feature_model, backbone: Backbone, paths: list[Path], *, cache_dir: Path | None, batch_size: int, progress: bool,
    hooks: TrainingHooks | None = None,
) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """Feature vectors of the images (cached on disk by file sha256 and backbone); failures are returned."""
    from tqdm import tqdm

    features: dict[int, np.ndarray] = {}
    failed, pending = [], []
    for i, path in enumerate(paths):
        cached = cache_dir / f"{_cache_key(path, backbone)}.npy" if cache_dir else None
        vector = _cached_vector(cached, backbone.feature_dim) if cached else None
        if vector is not None:
            features[i] = vector
        else:
            pending.append((i, path, cached))
    bar = tqdm(total=len(pending), disable=not (progress and pending), file=sys.stderr, unit="img", desc="features")
    hooks = hooks or TrainingHooks()
    for start in range(0, len(pending), batch_size):
        hooks.check()
        hooks.emit(phase="features", done=start, total=len(pending))
        chunk, batch = [], []
        for i, path, cached in pending[start : start + batch_size]:
            try:
                batch.append(normalize(to_pixels(open_image(path), backbone.input_spec), backbone.input_spec.normalization))
                chunk.append((i, cached))
            except errors.ImageError as exc:
                failed.append((path, str(exc)))
        if batch:
            out = np.asarray(feature_model(_as_input(feature_model, np.stack(batch)), training=False))
            for (i, cached), vector in zip(chunk, out):
                features[i] = vector
                if cached:
                    _cache_vector(cached, vector)
        bar.update(len(pending[start : start + batch_size]))
    bar.close()
    kept = [features[i] for i in sorted(features)]
    return (np.stack(kept) if kept else np.zeros((0, backbone.feature_dim), np.float32)), failed


# ---- splits and the head ------------------------------------------------------------------------

def stratified_split(labels: np.ndarray, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indexes with every class in both (when val_split > 0)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = 0 if val_split <= 0 else min(max(int(round(len(idx) * val_split)), 1), len(idx) - 1)
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Indexes of k folds, each class spread round-robin over them."""
    rng = np.random.default_rng(seed)
    buckets: list[list[int]] = [[] for _ in range(folds)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            buckets[j % folds].append(int(i))
    return [np.sort(np.array(b, dtype=int)) for b in buckets]


def build_head(feature_dim: int, num_classes: int):
    """Dropout + a softmax Dense layer on top of pooled backbone features."""
    import keras

    inputs = keras.Input((feature_dim,), name="features")
    x = keras.layers.Dropout(0.2, name="head_dropout")(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_predictions")(x)
    return keras.Model(inputs, outputs, name="head")


def fit_head(x_train, y_train, x_val, y_val, *, num_classes: int, config: TrainConfig):
    """Train the head with early stopping (on validation loss when there is a validation set)."""
    import keras

    head = build_head(x_train.shape[1], num_classes)
    head.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    has_val = len(y_val) > 0
    stop = keras.callbacks.EarlyStopping(monitor="val_loss" if has_val else "loss", patience=6, restore_best_weights=True)
    progress = keras_callback(config.hooks, phase="head", epochs=config.epochs)
    history = head.fit(
        x_train, y_train, validation_data=(x_val, y_val) if has_val else None, epochs=config.epochs,
        batch_size=config.batch_size, shuffle=True, callbacks=[stop, progress], verbose=0,
    )
    return head, {k: [float(v) for v in values] for k, values in history.history.items()}


def _check_folds(dataset: Dataset, folds: int) -> None:
    """k folds hold every class only when each class has at least k images; with fewer, some folds hold none."""
    if folds < 2:
        return
    fewest, smallest = min(zip(dataset.counts(), (c.id for c in dataset.classes)))
    if fewest < folds:
        raise errors.DatasetError(
            f"{folds} folds need at least {folds} images in every class; {smallest} has {fewest}. Ask for fewer folds."
        )


def cross_validate(features: np.ndarray, labels: np.ndarray, *, num_classes: int, config: TrainConfig) -> dict:
    """k-fold accuracy of the head on held-out folds (early stopping never sees the held-out fold)."""
    # Images that failed to decode may leave a fold empty: it scores nothing (its mean would be NaN).
    folds = [held for held in stratified_folds(labels, config.folds, config.seed) if held.size]
    scores = []
    for k, held in enumerate(folds):
        train = np.setdiff1d(np.arange(len(labels)), held)
        set_determinism(config.seed + k)
        head, _ = fit_head(features[train], labels[train], features[:0], labels[:0], num_classes=num_classes, config=config)
        predicted = np.asarray(head(features[held], training=False)).argmax(axis=1)
        scores.append(float(np.mean(predicted == labels[held])))
    return {"folds": config.folds, "accuracy_mean": float(np.mean(scores)), "accuracy_std": float(np.std(scores)), "per_fold": scores}


def assemble(feature_model, head, name: str):
    """One servable model: backbone features -> the trained head, with built-in layers only."""
    import keras

    x = keras.layers.Dropout(0.2, name="head_dropout")(feature_model.output)
    dense = head.get_layer("head_predictions")
    outputs = keras.layers.Dense(dense.units, activation="softmax", name="head_predictions")(x)
    model = keras.Model(feature_model.inputs, outputs, name=name.replace("-", "_"))
    model.get_layer("head_predictions").set_weights(dense.get_weights())
    return model


# ---- the whole run ------------------------------------------------------------------------------

def train(dataset: Dataset, config: TrainConfig, log: Log = print) -> TrainResult:
    """Check the data, extract features, train (and optionally fine-tune), and evaluate on held-out images."""
    check_trainable(dataset)
    _check_folds(dataset, config.folds)
    set_determinism(config.seed)
    backbone, feature_model = load_backbone(config)
    paths = [path for path, _ in dataset.items]
    features, failed = extract_features(
        feature_model, backbone, paths, cache_dir=None if config.from_scratch else config.cache_dir,
        batch_size=config.batch_size, progress=config.progress, hooks=config.hooks,
    )
    dataset = _without(dataset, failed)
    paths = [path for path, _ in dataset.items]
    labels = np.array([index for _, index in dataset.items], dtype=int)
    num_classes = len(dataset.classes)
    cv = cross_validate(features, labels, num_classes=num_classes, config=config) if config.folds >= 2 else None
    train_idx, val_idx = stratified_split(labels, config.val_split, config.seed)
    set_determinism(config.seed)
    head, history = fit_head(features[train_idx], labels[train_idx], features[val_idx], labels[val_idx], num_classes=num_classes, config=config)
    model = assemble(feature_model, head, config.name)
    if config.fine_tune_layers > 0 or config.from_scratch:
        history.update(fine_tune(model, [paths[i] for i in train_idx], labels[train_idx], backbone, config, log))
    held_out = len(val_idx) > 0
    eval_idx = val_idx if held_out else train_idx
    probabilities = _probabilities(model, head, features, paths, eval_idx, backbone, tuned="fine_tune_loss" in history)
    metrics = compute_metrics(probabilities, labels[eval_idx], dataset.classes)
    metrics["evaluated_on"] = "held-out validation split" if held_out else "training images (no validation split)"
    # Temperatures and thresholds only from images the head was not fitted on.
    metrics["calibration"] = calibrate_version(probabilities, labels[eval_idx], dataset.classes) if held_out else None
    split = {"train": int(len(train_idx)), "validation": int(len(val_idx)), "skipped": len(dataset.skipped)}
    manifest = Manifest(
        name=config.name, backbone=backbone.name, input=backbone.input_spec, classes=dataset.classes,
        metrics=_summary(metrics, cv), training=_training_record(config, split), labels=dataset.labels,
        extra={"calibration": metrics["calibration"]} if held_out else {},
    )
    return TrainResult(model, manifest, history, metrics, cv, split, failed)


def _without(dataset: Dataset, failed: list[tuple[Path, str]]) -> Dataset:
    """A copy of the dataset without the files that failed to decode (the caller's stays as it was)."""
    if not failed:
        return dataset
    bad = {p for p, _ in failed}
    kept = replace(dataset, items=[item for item in dataset.items if item[0] not in bad], skipped=dataset.skipped + failed)
    try:
        check_trainable(kept)
    except errors.DatasetError as exc:
        exc.skipped = failed  # the files are why the class is thin: the caller lists them
        raise
    return kept


def _probabilities(model, head, features, paths, idx, backbone: Backbone, *, tuned: bool) -> np.ndarray:
    if not tuned:
        return np.asarray(head(features[idx], training=False), dtype=np.float64)
    spec = backbone.input_spec
    batch = np.stack([normalize(to_pixels(open_image(paths[i]), spec), spec.normalization) for i in idx])
    return np.asarray(model(_as_input(model, batch), training=False), dtype=np.float64)


def _as_input(model, batch: np.ndarray):
    """The batch in the structure the model was built with (Keras warns on every call otherwise, in train's output)."""
    return [batch] if isinstance(getattr(model, "input", None), list) else batch


def _summary(metrics: dict, cv: dict | None) -> dict:
    summary = {k: metrics[k] for k in ("n", "top1_accuracy", "top5_accuracy", "evaluated_on")}
    if metrics.get("calibration"):
        summary["expected_calibration_error"] = metrics["calibration"]["expected_calibration_error"]
    if cv:
        summary.update({"cv_folds": cv["folds"], "cv_accuracy_mean": cv["accuracy_mean"], "cv_accuracy_std": cv["accuracy_std"]})
    return summary


def _training_record(config: TrainConfig, split: dict) -> dict:
    return {
        "trained_here": True,
        "epochs": config.epochs,
        "fine_tune_layers": config.fine_tune_layers,
        "val_split": config.val_split,
        "seed": config.seed,
        "from_scratch": config.from_scratch,
        **split,
    }


# ---- the exported run ---------------------------------------------------------------------------

PICTURES = {"training_curves_png": "training_curves.png", "confusion_matrix_png": "confusion_matrix.png"}


def export_run(result: TrainResult, folder: Path) -> Path:
    """Write a trained run into `folder`: <folder name>.h5 and its manifest, both pictures, metrics.json."""
    from recognizer.artifacts import save_artifact
    from recognizer.evaluation import plot_confusion, plot_history

    folder.mkdir(parents=True, exist_ok=True)
    manifest = result.manifest.with_updates(training={**result.manifest.training, **PICTURES})
    h5_path = folder / f"{folder.name}.h5"
    save_artifact(result.model, manifest, h5_path)
    plot_history(result.history, folder / PICTURES["training_curves_png"])
    plot_confusion(result.metrics, folder / PICTURES["confusion_matrix_png"])
    report = {"metrics": result.metrics, "cross_validation": result.cross_validation, "history": result.history, "split": result.split}
    (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    return h5_path
