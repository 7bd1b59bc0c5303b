from django.conf import settings
from django.core.management.base import CommandError

from recognizer.cli import classify_files, csv_out_arg, iter_files, top_k_arg, write_results
from recognizer.errors import InvalidQuery
from recognizer.manifest import QUERY_DOMAINS
from webapp.management.base import Command as ProjectCommand
from webapp import selectors, services
from webapp.runtime import ModelNotReady


class Command(ProjectCommand):
    help = "Classify image files and folders with the active version of a model, as the service would."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--model", default=None, help="model name (default: DEFAULT_MODEL_NAME)")
        parser.add_argument("--top-k", type=top_k_arg, default=5)
        parser.add_argument("--domain", choices=QUERY_DOMAINS)
        parser.add_argument("--json", action="store_true", help="one JSON object per image")
        parser.add_argument("--csv", type=csv_out_arg, metavar="OUT.csv", help="write one row per photo (verdict, top-k) to this file")

    def handle(self, *args, paths, model, top_k, domain, json, csv, **options):
        try:
            engine = services.model_loaded(name=model).engine  # as a request naming it gets it
        except services.UnknownModel as exc:
            raise CommandError(f"{exc} Register one with `python manage.py register_model PATH --activate`.") from None
        except services.NoActiveVersion as exc:
            raise CommandError(f"{exc} Activate one: `python manage.py activate {model} VERSION`.") from None
        except ModelNotReady as exc:
            if model is None and not selectors.model_name_exists(name=settings.DEFAULT_MODEL_NAME):
                raise CommandError(f"{exc} Register one with `python manage.py register_model PATH --activate`.") from None
            raise CommandError(str(exc)) from None
        files = list(iter_files(paths))
        if not files:
            raise CommandError("no image files found in the given paths")
        results = classify_files(engine, files, top_k=top_k, domain=domain, progress=len(files) > 1)
        try:  # results come as they are classified: a query the model cannot answer fails with the first
            failures = write_results(results, self.stdout, csv_path=csv, as_json=json, top_k=top_k)
        except InvalidQuery as exc:
            raise CommandError(str(exc)) from None
        if failures:  # the results of the others are printed; a script must still see the failure
            raise CommandError(f"{failures} of {len(files)} files could not be classified")
