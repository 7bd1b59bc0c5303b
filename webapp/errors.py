"""The one error shape of the service: {"error": {"code": ..., "message": ...}} with the right status."""

from __future__ import annotations

from django.http import JsonResponse

from recognizer import errors as core


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> JsonResponse:
        reply = JsonResponse({"error": {"code": self.code, "message": self.message}}, status=self.status)
        for key, value in self.headers.items():
            reply[key] = value
        return reply


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    return ApiError(status, code, message, headers).response()


_STATUS = {
    core.UnsupportedImageFormat: 415,
    core.ImageTooLarge: 413,
    core.ImageError: 400,
}


def from_core(exc: core.RecognizerError) -> ApiError:
    """The HTTP error for an exception of the recognition core."""
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return ApiError(status, exc.code, str(exc))
    return ApiError(400, exc.code, str(exc))
