"""The record of operators' changes besides activations: a log line always, and the admin's history when a user acted.

Activations and roll-backs have their own table (Activation); recompiling a
version and creating or revoking a token land in the same history the admin
shows for the object ("History" on its page), whether done there or with
manage.py (`--by USERNAME`).
"""

from __future__ import annotations

import getpass
import logging

from django.contrib.admin.models import CHANGE, LogEntry

log = logging.getLogger("webapp.audit")


def record(*, by, obj, message: str, flag: int = CHANGE) -> None:
    who = getattr(by, "username", None) or f"os:{_os_user()}"
    log.info("%s: %s %s", who, obj, message, extra={"by": who, "object": str(obj), "action": message})
    if by is not None and getattr(by, "pk", None):
        LogEntry.objects.log_actions(user_id=by.pk, queryset=[obj], action_flag=flag, change_message=message, single_object=True)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
