"""The base of the project's commands: Django's options without its --version.

Django's --version prints Django's version and exits 0, before any option is read: `evaluate --version 1` or
`recompile NAME --version 1` looked like success while nothing ran. Left out, such a command line is refused as an
unknown option (exit 2), and `activate` can take --version as the version to activate.
"""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_base_argument(self, parser, *args, **kwargs):
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)
