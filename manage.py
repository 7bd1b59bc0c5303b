#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

INTERACTIVE = {"runserver", "shell", "dbshell"}


def quiet_unless_verbose(argv: list[str]) -> list[str]:
    """TensorFlow's C++ log lines stay out of a command's output unless --verbose (or -v 2 and up) is given."""
    if "--verbose" in argv:
        return [arg if arg != "--verbose" else "--verbosity=2" for arg in argv]
    verbose = any(arg in ("-v2", "-v3", "--verbosity=2", "--verbosity=3") for arg in argv) or any(
        flag in ("-v", "--verbosity") and level in ("2", "3") for flag, level in zip(argv, argv[1:])
    )
    if not verbose and not INTERACTIVE & set(argv[1:2]):
        from recognizer.native_logs import silence_tensorflow

        silence_tensorflow()
    return argv


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.dev")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import InterfaceError, OperationalError

    try:
        execute_from_command_line(quiet_unless_verbose(sys.argv))
    except ImproperlyConfigured as exc:  # a bad setting: its one line, which names it, without a traceback
        sys.exit(f"manage.py: {exc}")
    except ModuleNotFoundError as exc:
        from webapp.settings.env import settings_module_missing

        said = settings_module_missing(exc, os.environ["DJANGO_SETTINGS_MODULE"])
        if said is None:
            raise
        sys.exit(f"manage.py: {said}")
    except (OperationalError, InterfaceError) as exc:  # the database down or refusing: one line, as for a setting
        from webapp.errors import first_line

        sys.exit(f"manage.py: the database cannot be used ({first_line(exc)}); is it running, reachable and migrated?")
