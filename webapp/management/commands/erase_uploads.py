from datetime import date, datetime, time, timezone

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from webapp import feedback
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import missing_files_warning


def day(value: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=timezone.utc)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; write it as YYYY-MM-DD.") from None


class Command(ProjectCommand):
    help = "Erase kept photos on request: one person's (--user), one period's (--since/--until), or both; feedback or not."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="username: photos sent from their page sessions or with their API tokens")
        parser.add_argument("--since", type=str, help="first day erased (YYYY-MM-DD, UTC)")
        parser.add_argument("--until", type=str, help="first day kept after the period (YYYY-MM-DD, UTC)")

    def handle(self, *args, user, since, until, **options):
        if not (user or since or until):
            raise CommandError("Say whose photos (--user) or which period (--since/--until) to erase.")
        if user and not get_user_model().objects.filter(username=user).exists():
            raise CommandError(f"There is no user {user!r}.")
        start, end = (day(since) if since else None), (day(until) if until else None)
        if start and end and start >= end:
            raise CommandError("--since must come before --until.")
        done = feedback.photos_erase(username=user, since=start, until=end)
        self.stdout.write(f"erased {done.said()}")
        missing_files_warning(self, done)
