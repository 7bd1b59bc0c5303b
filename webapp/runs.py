"""Training and evaluation runs as services: the commands, the admin or a job queue call these and only print.

A training run owns its folder and its version number: the number is computed
once, names the folder (`<name>-v<N>`) and is the number registered, so a
concurrent registration makes this one fail instead of filing v4 under `-v3`.
An evaluation loads the version exactly as a worker serves it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from django.conf import settings

from recognizer import errors as core
from recognizer.datasets import class_folders, scan_dataset
from recognizer.evaluation import by_domain, compute_metrics, plot_confusion, predict_dataset, scoring_classes
from recognizer.manifest import Manifest
from recognizer.training import TrainConfig, TrainResult, export_run, train
from webapp import selectors, services
from webapp.models import ModelVersion
from webapp.runtime import engine_for


@dataclass
class TrainedVersion:
    version: ModelVersion
    result: TrainResult
    artifact_path: Path
    skipped: list[tuple[Path, str]]  # files left out: unreadable when scanned, or failed to decode


def model_version_train(
    *, data: Path, config: TrainConfig, domain: str | None = None, activate: bool = False, by=None,
    log: Callable[[str], None] = print,
) -> TrainedVersion:
    """Train on an image-folder dataset, export the run to MODELS_DIR/<name>-v<N>, register it as version N.

    Raises core.RecognizerError (data or weights; a DatasetError lists the files it skipped in .skipped),
    services.RegistrationError (nothing registered) or services.ActivationError (registered, not active).
    """
    dataset = scan_dataset(data, domain=domain)
    if config.cache_dir is None:
        config = replace(config, cache_dir=Path(settings.VAR_DIR) / "feature-cache")
    try:
        result = train(dataset, config, log=log)
    except core.DatasetError as exc:
        exc.skipped = dataset.skipped + exc.skipped
        raise
    config.hooks.check()  # a stop asked for during the last epoch: nothing is exported
    number = services.model_version_next_number(name=config.name)
    folder = Path(settings.MODELS_DIR) / f"{config.name}-v{number}"
    h5_path = export_run(result, folder)
    try:  # asked during the export or the compile: nothing is registered (a cancel once said, a version came)
        config.hooks.check()
        version = services.model_version_register(
            artifact_path=h5_path, notes=f"trained on {data}", by=by, activate=activate, number=number,
            cancelled=config.hooks.should_stop,
        )
    except core.TrainingCancelled:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    changed = selectors.model_version_class_changes(version=version)
    if changed:  # under an existing name, as register_model says it
        log(f"warning: {changed}")
    return TrainedVersion(version, result, h5_path, dataset.skipped + result.skipped)


@dataclass
class Evaluation:
    metrics: dict
    folder: Path  # where the confusion matrix and metrics.json were written


def model_version_evaluate(*, version: ModelVersion, data: Path, out: Path | None = None, progress: bool = False) -> Evaluation:
    """Score `version`, served by its real engine, on an image-folder dataset.

    Folders named after the model's class ids are scored by class; folders all named after
    domains (animal, bird, plant, other) by domain, each domain's probabilities summed.
    """
    model_classes = Manifest.from_dict(version.manifest).classes
    classes, domains = scoring_classes([f.name for f in class_folders(Path(data))], model_classes)  # before any load
    dataset = scan_dataset(data, classes=classes)
    engine = engine_for(version)
    probabilities, truth, files, failed = predict_dataset(engine, dataset.items, progress=progress)
    metrics = compute_metrics(by_domain(probabilities, model_classes) if domains else probabilities, truth, classes)
    metrics["scored_by"] = "domain" if domains else "class"
    metrics["model"] = {"name": version.name, "version": version.version, "engine": engine.kind}
    metrics["skipped"] = [{"file": str(p), "reason": r} for p, r in dataset.skipped + failed]
    ranked = engine.rank(probabilities, top_k=min(5, engine.manifest.num_classes))
    metrics["predictions"] = [{"file": str(f), "predictions": [p.to_dict() for p in r]} for f, r in zip(files, ranked)]
    folder = Path(out) if out else Path(settings.VAR_DIR) / "evaluations" / f"{version.name}-v{version.version}"
    folder.mkdir(parents=True, exist_ok=True)
    plot_confusion(metrics, folder / "confusion_matrix.png")
    (folder / "metrics.json").write_text(json.dumps(metrics) + "\n")
    return Evaluation(metrics, folder)
