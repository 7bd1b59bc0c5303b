"""The one error shape of the service: {"error": {"code", "message", "request_id"}} with the right status."""

from __future__ import annotations

from django.http import JsonResponse

from recognizer import errors as core
from webapp.logs import request_id


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if request_id():  # outside a request (a unit test calling this directly) there is none
            error["request_id"] = request_id()
        return {"error": error}

    def response(self) -> JsonResponse:
        reply = JsonResponse(self.body(), status=self.status)
        reply.error_code = self.code  # the rejection reason the metrics count
        for key, value in self.headers.items():
            reply[key] = value
        return reply


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    return ApiError(status, code, message, headers).response()


_STATUS = {
    core.UnsupportedImageFormat: 415,
    core.ImageTooLarge: 413,
    core.FileTooLarge: 413,
    core.ImageError: 400,
}


def from_core(exc: core.RecognizerError) -> ApiError:
    """The HTTP error for an exception of the recognition core."""
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return ApiError(status, exc.code, str(exc))
    return ApiError(400, exc.code, str(exc))


def to_api_error(exc: Exception) -> ApiError:
    """The HTTP error for an exception that a request may end in on purpose (see EXPECTED)."""
    from webapp.feedback import FeedbackError
    from webapp.runtime import Busy, ModelNotReady
    from webapp.services import UnknownModel

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FeedbackError):
        return ApiError(exc.status, exc.code, str(exc))
    if isinstance(exc, core.RecognizerError):
        return from_core(exc)
    if isinstance(exc, UnknownModel):
        return ApiError(400, "unknown_model", str(exc))
    if isinstance(exc, Busy):
        return ApiError(503, "busy", str(exc), {"Retry-After": "1"})
    if isinstance(exc, ModelNotReady):
        return ApiError(503, "model_not_ready", f"{exc} Try again in a few seconds.", {"Retry-After": "5"})
    raise TypeError(f"no HTTP error for {type(exc).__name__}")


def expected_errors() -> tuple[type[Exception], ...]:
    """The exceptions to_api_error turns into replies: the page and the API catch exactly these."""
    from webapp.feedback import FeedbackError
    from webapp.runtime import Busy, ModelNotReady
    from webapp.services import UnknownModel

    return (ApiError, core.RecognizerError, UnknownModel, Busy, ModelNotReady, FeedbackError)
