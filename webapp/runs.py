"""Training runs as a service: train on an image folder, export the run to MODELS_DIR/<name>-v<N>, register it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db.models import Max

from recognizer.artifacts import save_artifact
from recognizer.datasets import scan_dataset
from recognizer.engine import Engine
from recognizer.evaluation import compute_metrics, plot_confusion, plot_history, predict_dataset
from recognizer.training import TrainConfig, TrainResult, train
from webapp import services
from webapp.models import ModelVersion

PICTURES = {"training_curves_png": "training_curves.png", "confusion_matrix_png": "confusion_matrix.png"}


@dataclass
class TrainedVersion:
    version: ModelVersion
    result: TrainResult
    artifact_path: Path


def model_version_train(
    *, data: Path, config: TrainConfig, domain: str | None = None, activate: bool = False, by=None,
    log: Callable[[str], None] = print,
) -> TrainedVersion:
    """Train on an image-folder dataset, write <name>-v<N>/ under MODELS_DIR and register it as the next version."""
    dataset = scan_dataset(data, domain=domain)
    if config.cache_dir is None:
        config = replace(config, cache_dir=Path(settings.VAR_DIR) / "feature-cache")
    result = train(dataset, config, log=log)
    last = ModelVersion.objects.filter(name=config.name).aggregate(Max("version"))["version__max"] or 0
    folder = Path(settings.MODELS_DIR) / f"{config.name}-v{last + 1}"
    folder.mkdir(parents=True, exist_ok=True)
    h5_path = folder / f"{folder.name}.h5"
    save_artifact(result.model, result.manifest.with_updates(training={**result.manifest.training, **PICTURES}), h5_path)
    plot_history(result.history, folder / PICTURES["training_curves_png"])
    plot_confusion(result.metrics, folder / PICTURES["confusion_matrix_png"])
    report = {"metrics": result.metrics, "history": result.history, "split": result.split}
    (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    version = services.model_version_register(artifact_path=h5_path, notes=f"trained on {data}", by=by, activate=activate)
    return TrainedVersion(version, result, h5_path)


@dataclass
class Evaluation:
    metrics: dict
    folder: Path  # where the confusion matrix and metrics.json were written


def model_version_evaluate(*, version: ModelVersion, data: Path, out: Path | None = None, progress: bool = False) -> Evaluation:
    """Score `version` on an image-folder dataset whose folders are named by class id."""
    engine = Engine.from_path(version.artifact_path)
    dataset = scan_dataset(data, classes=engine.manifest.classes)
    probabilities, truth, _, _ = predict_dataset(engine, dataset.items, progress=progress)
    metrics = compute_metrics(probabilities, truth, engine.manifest.classes)
    folder = Path(out) if out else Path(settings.VAR_DIR) / "evaluations" / f"{version.name}-v{version.version}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics) + "\n")
    return Evaluation(metrics, folder)
