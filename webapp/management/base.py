"""The base of the project's commands: Django's options without its --version, and English whatever language
the thread had active (shared texts, such as the gate's, are translated for the admin).

Django's --version prints Django's version and exits 0, before any option is read: `evaluate --version 1` or
`recompile NAME --version 1` looked like success while nothing ran. Left out, such a command line is refused as an
unknown option (exit 2), and `activate` can take --version as the version to activate.
"""

from django.core.management.base import BaseCommand
from django.utils import translation


class Command(BaseCommand):
    def execute(self, *args, **options):
        with translation.override(None):
            return super().execute(*args, **options)

    def add_base_argument(self, parser, *args, **kwargs):
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)
