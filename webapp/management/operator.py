"""What the operator commands share: who is acting (`--by USERNAME`), and one-line errors."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def add_by_argument(parser) -> None:
    parser.add_argument(
        "--by", metavar="USERNAME", default="",
        help="the staff user doing this, recorded in the audit trail as in the admin (default: nobody; the OS user is logged)",
    )


def operator(username: str):
    """The staff user named by --by, or None; a name that is not a staff user stops the command."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_staff=True, is_active=True).first()
    if user is None:
        raise CommandError(f"--by {username}: no active staff user of that name.")
    return user


def missing_files_warning(command, deleted) -> None:
    """Say when photo records were forgotten but their files were not where this process looked for them."""
    if deleted.missing:
        from django.conf import settings

        command.stderr.write(
            f"warning: {deleted.missing} of those photo files were not found under MEDIA_ROOT ({settings.MEDIA_ROOT}); "
            "if the service keeps them elsewhere, run this with its MEDIA_ROOT (every host must share one)."
        )
