from django.conf import settings
from django.core.management.base import CommandError

from webapp import services
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import add_by_argument, operator


class Command(ProjectCommand):
    help = "Re-activate the version of model NAME that was active before its last activation; audited."

    def add_arguments(self, parser):
        parser.add_argument("name")
        add_by_argument(parser)

    def handle(self, *args, name, by, **options):
        user = operator(by)
        try:
            version = services.model_version_rollback(name=name, by=user)
        except services.ActivationError as exc:
            raise CommandError(f"not rolled back: {exc}") from None
        self.stdout.write(f"rolled back to {version}; every worker switches within about {settings.MODEL_POLL_SECONDS} s.")
