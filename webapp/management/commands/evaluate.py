import json as jsonlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recognizer.datasets import scan_dataset
from recognizer.engine import Engine
from recognizer.errors import RecognizerError
from recognizer.evaluation import compute_metrics, format_table, plot_confusion, predict_dataset
from webapp.models import ModelVersion


class Command(BaseCommand):
    help = "Evaluate a registered model version on an image-folder dataset (folders named by class id)."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True)
        parser.add_argument("--model", default=None, help="model name (default: DEFAULT_MODEL_NAME)")
        # Not --version: every Django command already has that flag (it prints Django's version).
        parser.add_argument(
            "--model-version", dest="version", type=int, default=None, help="version number (default: the active one)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--out", default=None, help="folder for the confusion-matrix PNG and metrics.json")

    def handle(self, *args, data, model, version, json: bool, out, **opts):
        chosen = self._version(model or settings.DEFAULT_MODEL_NAME, version)
        try:
            engine = Engine.from_path(chosen.artifact_path)
            dataset = scan_dataset(data, classes=engine.manifest.classes)
            probabilities, truth, files, failed = predict_dataset(engine, dataset.items, progress=opts["verbosity"] > 0 and not json)
        except RecognizerError as exc:
            raise CommandError(str(exc)) from None
        metrics = compute_metrics(probabilities, truth, engine.manifest.classes)
        metrics["model"] = {"name": chosen.name, "version": chosen.version}
        metrics["skipped"] = [{"file": str(p), "reason": r} for p, r in dataset.skipped + failed]
        metrics["predictions"] = [
            {"file": str(f), "predictions": [p.to_dict() for p in ranked]}
            for f, ranked in zip(files, engine.rank(probabilities, top_k=min(5, engine.manifest.num_classes)))
        ]
        folder = Path(out) if out else Path(settings.VAR_DIR) / "evaluations" / f"{chosen.name}-v{chosen.version}"
        folder.mkdir(parents=True, exist_ok=True)
        plot_confusion(metrics, folder / "confusion_matrix.png")
        (folder / "metrics.json").write_text(_dumps(metrics) + "\n")
        if json:
            self.stdout.write(_dumps(metrics))
            return
        for item in metrics["skipped"]:
            self.stderr.write(f"skipped {item['file']}: {item['reason']}")
        self.stdout.write(f"{chosen} on {data}")
        self.stdout.write(format_table(metrics))
        self.stdout.write(f"confusion matrix and metrics written to {folder}")

    def _version(self, name: str, number: int | None) -> ModelVersion:
        versions = ModelVersion.objects.filter(name=name)
        found = versions.filter(version=number).first() if number else versions.filter(is_active=True).first()
        if found is None:
            what = f"version {number}" if number else "an active version"
            raise CommandError(f"{name!r} has no {what}; see `python manage.py shell` or /api/v1/models.")
        return found


def _dumps(data) -> str:
    return jsonlib.dumps(data)
