"""Typed readers of environment variables that fail at boot with a message naming the variable."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str:
    """The variable's text; without a default it is required, and an empty value counts as missing."""
    value = os.environ.get(name, default)
    if value is None or (default is None and not value.strip()):
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return value


def env_path(name: str, default: Path) -> Path:
    """A folder from the environment; set but empty is the default, not the current folder (which would put the
    service's state wherever it happened to be started)."""
    value = os.environ.get(name, "").strip()
    return Path(value) if value else default


def _at_least(name: str, value, minimum):
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def _number(name: str, convert, what: str):
    """The variable converted, None when unset or empty, or a refusal naming it."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return convert(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}, not {raw!r}.") from None


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _number(name, int, "a whole number")
    if value is not None and maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}.")
    return default if value is None else _at_least(name, value, minimum)


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _number(name, float, "a number")
    if value is None:
        return default
    if value != value or (maximum is not None and value > maximum):  # NaN, or above the range
        raise ImproperlyConfigured(f"{name} must be a number from {minimum} to {maximum}, not {value}.")
    return _at_least(name, value, minimum)


def env_choice(name: str, default: str, choices) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


RATE = re.compile(r"^[1-9]\d*/(s|sec|m|min|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str:
    """A rate limit as the throttles read it: N/s, N/m, N/h or N/d."""
    value = env_str(name, default)
    if not RATE.match(value):
        raise ImproperlyConfigured(f"{name} must be a rate of at least 1 like 120/m (per s, m, h or d), not {value!r}.")
    return value


def env_log_format(default: str) -> str:
    """LOG_FORMAT as webapp.logs reads it (json or plain)."""
    from webapp.logs import log_format

    try:
        return log_format(default)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def env_networks(name: str, default: list[str]) -> list[str]:
    """IP networks such as 10.0.0.0/8 or ::1/128, comma-separated; set but empty is the default (an operator blanking
    the line means "none of mine", and an empty list would let every address in)."""
    networks = env_list(name, default) or default
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {network!r} is not an IP network like 10.0.0.0/8.") from None
    return networks


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_image_formats(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Pillow format names (any case: jpeg is JPEG), each one Pillow can open here."""
    if name not in os.environ:
        return default
    from PIL import Image

    Image.init()
    formats = tuple(dict.fromkeys(item.upper() for item in env_list(name, [])))
    unknown = [f for f in formats if f not in Image.OPEN]
    if unknown or not formats:
        raise ImproperlyConfigured(
            f"{name} must list image formats Pillow opens, like JPEG,PNG,WEBP,GIF,BMP; "
            f"not {', '.join(unknown) or repr(os.environ[name])}."
        )
    return formats


def settings_module_missing(exc: ModuleNotFoundError, module: str) -> str | None:
    """The one line for a DJANGO_SETTINGS_MODULE that names no module (manage.py and gunicorn's master say it), or None
    when the missing module is another one (a real import error, left to its traceback)."""
    if not exc.name or not (module + ".").startswith(exc.name + "."):
        return None
    return f"DJANGO_SETTINGS_MODULE={module} names no module; use webapp.settings.production or webapp.settings.dev."
