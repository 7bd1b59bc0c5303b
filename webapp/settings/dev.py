"""The embedded default: SQLite and local files under var/, anonymous API use allowed."""

from webapp.settings.base import *  # noqa: F401,F403
