from datetime import datetime, timezone

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from webapp import services
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
    help = (
        "Delete predictions (with their photos) and activations recorded before a date; each model's last activation "
        "and every prediction with feedback are kept. "
        "History is otherwise append-only: this is the one way to delete it, in the name of a superuser."
    )

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="a date, YYYY-MM-DD (UTC): rows recorded before it go")
        parser.add_argument("--superuser", required=True, help="the username of the active superuser doing this")

    def handle(self, *args, before, superuser, **options):
        try:
            cutoff = datetime.strptime(before, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise CommandError(f"--before must be a date like 2026-01-31, not {before!r}") from None
        user = get_user_model().objects.filter(username=superuser).first()
        try:
            predictions, activations = services.history_prune(before=cutoff, by=user)
        except services.NotASuperuser as exc:
            raise CommandError(f"{exc} {superuser!r} is not one.") from None
        self.stdout.write(f"deleted {predictions} predictions and {activations} activations recorded before {before}")
