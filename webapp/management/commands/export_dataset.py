from datetime import date
from pathlib import Path

from django.core.management.base import CommandError

from recognizer.datasets import MIN_IMAGES_PER_CLASS
from webapp import exports
from webapp.management.base import Command as ProjectCommand


def day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date; write it as YYYY-MM-DD.") from None


class Command(ProjectCommand):
    help = (
        "Write the accepted feedback photos as an image folder for `train`: OUT/<folder>/<sha256>.jpg, one folder per "
        "final label (a file-safe name of it), and OUT/classes.csv giving each folder's label and domain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="the folder to write (empty, unless --append)")
        parser.add_argument("--since", help="only feedback sent on or after this day (YYYY-MM-DD)")
        parser.add_argument("--include-base", help="an existing image-folder dataset to merge in")
        parser.add_argument("--append", action="store_true", help="add to the dataset already in --out")

    def handle(self, *args, out, since, include_base, append, **options):
        try:
            dataset = exports.dataset_export(
                out=Path(out), since=day(since) if since else None,
                include_base=Path(include_base) if include_base else None, append=append,
            )
        except exports.ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"dataset {dataset.pk}: {_counted(dataset.images, 'image')} in {_counted(len(dataset.counts), 'class', 'classes')} "
            f"({dataset.from_feedback} from feedback) at {dataset.path}; digest {dataset.digest[:12]}"
        )
        for folder, count in sorted(dataset.counts.items()):
            self.stdout.write(f"  {folder}: {count}")
        thin = exports.dataset_thin_classes(dataset)
        if thin:
            self.stderr.write(f"warning: a training job refuses classes with fewer than {MIN_IMAGES_PER_CLASS} photos: {', '.join(thin)}.")


def _counted(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"
