"""The one error shape of the service: {"error": {"code", "message", "request_id"}} with the right status.

`code` is English and stable for programs; `message` is for people, in the language of the request.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext, ngettext

from recognizer import errors as core
from webapp.logs import request_id

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": str(self.message)}
        if request_id():  # outside a request (a unit test calling this directly) there is none
            error["request_id"] = request_id()
        return {"error": error}

    def response(self, **beside) -> JsonResponse:
        """The JSON error; `beside` adds keys next to "error" (/readyz's "failed")."""
        reply = JsonResponse({**self.body(), **beside}, status=self.status)
        reply.error_code = self.code  # the rejection reason the metrics count
        for key, value in self.headers.items():
            reply[key] = value
        return reply

    def page(self, request, template: str, context: dict) -> HttpResponse:
        """The same refusal for a person: `template` rendered with its status and headers (Retry-After...)."""
        return HttpResponse(render_to_string(template, context, request), status=self.status, headers=self.headers)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    return ApiError(status, code, message, headers).response()


def rate_limited(throttle) -> ApiError:
    """The 429 of a page or form whose `throttle` refused: how many seconds to wait, said and in Retry-After."""
    seconds = throttle.wait()
    message = ngettext("Too many requests; try again in %(seconds)d second.",
                       "Too many requests; try again in %(seconds)d seconds.", seconds) % {"seconds": seconds}
    return ApiError(429, "rate_limited", message, {"Retry-After": str(seconds)})


_STATUS = {
    core.UnsupportedImageFormat: 415,
    core.ImageTooLarge: 413,
    core.FileTooLarge: 413,
    core.ImageError: 400,
}


def translated(exc: Exception) -> str:
    """The message of a Translatable exception in the active language; other exceptions as they are.

    Parameters the core marked (what a non-image file looks like) are translated too; names,
    numbers and library messages stay as they are, even when they happen to be a catalog word.
    """
    if not isinstance(exc, core.Translatable) or not exc.template:
        return str(exc)
    return filled(exc.template, exc.params)


def filled(template: str, params: dict) -> str:
    """A marked template in the active language, its marked parameters translated too, the others as they are."""
    params = {key: gettext(value) if isinstance(value, core.Marked) else value for key, value in params.items()}
    message = gettext(template)
    return message % params if params else message


def from_core(exc: core.RecognizerError) -> ApiError:
    """The HTTP error for an exception of the recognition core."""
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return ApiError(status, exc.code, translated(exc))
    return ApiError(400, exc.code, translated(exc))


def dependency_errors() -> tuple[type[Exception], ...]:
    """What the database and the cache raise when they cannot be reached (not a query's own mistake)."""
    from django.db import InterfaceError, OperationalError

    kinds: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:  # the service without CACHE_URL needs no Redis client
        return kinds
    return (*kinds, RedisConnectionError, RedisTimeoutError)


def first_line(exc: Exception) -> str:
    """An exception's message in one line (a driver's may run to several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def log_failure(logger: logging.Logger, what: str, exc: Exception) -> None:
    """`what` failed and will be tried again: one line while the database or cache cannot be reached (it repeats
    every try until they are back), the traceback for anything else."""
    if isinstance(exc, dependency_errors()):
        logger.warning("%s (will retry): %s", what, first_line(exc))
    else:
        logger.error("%s (will retry)", what, exc_info=exc)


def dependency_down(exc: Exception) -> ApiError:
    """The 503 for a database (any DatabaseError) or cache that cannot be reached, as /readyz names it; logged in one
    line."""
    from django.db import DatabaseError

    if isinstance(exc, DatabaseError):
        log.error("the database cannot be reached: %s", first_line(exc))
        return ApiError(503, "database_unavailable", gettext("The database cannot be reached."), {"Retry-After": "5"})
    log.error("the cache cannot be reached: %s", first_line(exc))
    return ApiError(503, "cache_unavailable", gettext("The cache cannot be reached."), {"Retry-After": "5"})


def to_api_error(exc: Exception) -> ApiError:
    """The HTTP error for an exception that a request may end in on purpose (see EXPECTED)."""
    from webapp.answering import AllowedClassesUnusable, ExplainUnavailable
    from webapp.feedback import FeedbackError
    from webapp.runtime import Busy, ModelLoadFailed, ModelNotReady
    from webapp.services import NoActiveVersion, UnknownModel

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FeedbackError):
        return ApiError(exc.status, exc.code, str(exc))
    if isinstance(exc, core.RecognizerError):
        return from_core(exc)
    if isinstance(exc, UnknownModel):
        return ApiError(400, "unknown_model", translated(exc))
    if isinstance(exc, NoActiveVersion):  # as GET /api/v1/models/{name} says it
        return ApiError(404, "model_not_found", translated(exc))
    if isinstance(exc, ExplainUnavailable):
        return ApiError(409, "explain_unavailable", translated(exc))
    if isinstance(exc, AllowedClassesUnusable):
        return ApiError(503, "allowed_classes_unusable", str(exc))
    if isinstance(exc, Busy):
        return ApiError(503, "busy", translated(exc), {"Retry-After": "1"})
    if isinstance(exc, ModelLoadFailed):  # no Retry-After: waiting does not help
        message = gettext("%(reason)s It answers again once an admin repairs that version or activates another.")
        return ApiError(503, "model_not_ready", message % {"reason": translated(exc)})
    if isinstance(exc, ModelNotReady):
        message = gettext("%(reason)s Try again in a few seconds.") % {"reason": translated(exc)}
        return ApiError(503, "model_not_ready", message, {"Retry-After": "5"})
    if isinstance(exc, dependency_errors()):
        return dependency_down(exc)
    raise TypeError(f"no HTTP error for {type(exc).__name__}")


def expected_errors() -> tuple[type[Exception], ...]:
    """The exceptions to_api_error turns into replies: the page and the API catch exactly these."""
    from webapp.answering import AllowedClassesUnusable, ExplainUnavailable
    from webapp.feedback import FeedbackError
    from webapp.runtime import Busy, ModelNotReady
    from webapp.services import NoActiveVersion, UnknownModel

    return (ApiError, core.RecognizerError, UnknownModel, NoActiveVersion, ExplainUnavailable, AllowedClassesUnusable, Busy, ModelNotReady,
            FeedbackError, *dependency_errors())
