import json as jsonlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from recognizer.errors import RecognizerError
from recognizer.evaluation import format_table
from webapp import runs, selectors
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
    help = "Evaluate a registered model version, on the engine that serves it, on an image-folder dataset."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="one folder per class, named by class id")
        parser.add_argument("--model", default=None, help="model name (default: DEFAULT_MODEL_NAME)")
        # Not --version: every Django command already has that flag (it prints Django's version).
        parser.add_argument(
            "--model-version", dest="version", type=int, default=None, help="version number (default: the active one)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--out", default=None, help="folder for the confusion-matrix PNG and metrics.json")

    def handle(self, *args, data, model, version, json: bool, out, **opts):
        name = model or settings.DEFAULT_MODEL_NAME
        chosen = selectors.model_version_get(name=name, number=version)
        if chosen is None:
            what = f"version {version}" if version is not None else "active version"
            raise CommandError(f"{name!r} has no {what}; `python manage.py models` lists the models and their versions.")
        try:
            run = runs.model_version_evaluate(
                version=chosen, data=Path(data), out=Path(out) if out else None, progress=opts["verbosity"] > 0 and not json
            )
        except RecognizerError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(jsonlib.dumps(run.metrics))
            return
        for item in run.metrics["skipped"]:
            self.stderr.write(f"skipped {item['file']}: {item['reason']}")
        scored = "by domain (each domain's probabilities summed)" if run.metrics["scored_by"] == "domain" else "by class"
        self.stdout.write(f"{chosen} ({run.metrics['model']['engine']}) on {data}, scored {scored}")
        self.stdout.write(format_table(run.metrics))
        self.stdout.write(f"confusion matrix and metrics written to {run.folder}")
