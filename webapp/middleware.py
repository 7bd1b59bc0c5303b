"""Keeps the API's one error shape for what happens before or around the API's own handlers."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent, TooManyFieldsSent
from django.http import Http404
from django.utils.translation import gettext as _

from webapp.errors import error_response

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/",)
READ_ONLY_VIEWS = {"openapi-json", "openapi-view"}  # django-ninja's schema and docs views answer any method


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


class JsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_api(request) and self._declared_length(request) > settings.REQUEST_MAX_BYTES:
            # Refuse before reading a byte of the body.
            limit = f"{settings.REQUEST_MAX_BYTES / 1e6:.3g}"
            return error_response(413, "request_too_large", _("The request body is over the %(limit)s MB limit.") % {"limit": limit})
        response = self.get_response(request)
        is_json = response.get("Content-Type", "").startswith("application/json")
        if _is_api(request) and response.status_code == 405 and not is_json:  # django-ninja answers these in HTML
            return self._not_allowed(request, response.get("Allow", ""))
        return response

    @staticmethod
    def _not_allowed(request, allow: str):
        message = _("%(method)s is not allowed on %(path)s; use %(allowed)s.") % {"method": request.method, "path": request.path, "allowed": allow}
        return error_response(405, "method_not_allowed", message, {"Allow": allow})

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match and match.url_name in READ_ONLY_VIEWS and request.method not in ("GET", "HEAD"):
            return self._not_allowed(request, "GET, HEAD")
        return None

    @staticmethod
    def _declared_length(request) -> int:
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "request_too_large", _("The request body is too large."))
        if isinstance(exception, (TooManyFilesSent, TooManyFieldsSent)):
            return error_response(413, "too_many_parts", _("The request has too many files or fields."))
        if _is_api(request) and isinstance(exception, Http404):
            return error_response(404, "not_found", _("No API endpoint at this path."))
        if _is_api(request):
            log.exception("unhandled error on %s", request.path)
            return error_response(500, "internal_error", _("Something went wrong on our side; it has been logged."))
        return None
