"""Refuses oversized bodies on every path before they are read, and keeps the API's one error shape around its handlers."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent, TooManyFieldsSent
from django.http import Http404, HttpResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _

from recognizer.preprocessing import size_text
from webapp.errors import ApiError, dependency_down, dependency_errors, error_response
from webapp.throttling import LoginRateThrottle

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/",)
READ_ONLY_VIEWS = {"openapi-json", "openapi-view"}  # django-ninja's schema and docs views answer any method
GET_VIEWS = {"models_list", "models_active", *READ_ONLY_VIEWS}  # HEAD answers as GET does, without the body


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def _refused(request, status: int, code: str, message: str, headers: dict | None = None) -> HttpResponse:
    """A request refused before its view: the API's JSON error for the API and for clients asking for JSON (the
    page's script), a page saying why for a person (the page without JavaScript, the admin)."""
    error = ApiError(status, code, message, headers)
    if _is_api(request) or "application/json" in request.headers.get("Accept", ""):
        return error.response()
    return error.page(request, "refused.html", {"message": message})


def _holds_nul(query) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in query.lists())


def _unavailable(request, exc: Exception) -> HttpResponse:
    """The database or the cache cannot be reached: a 503 saying which (as /readyz does), not a 500 and a traceback."""
    error = dependency_down(exc)
    return _refused(request, error.status, error.code, error.message, error.headers)


def _body_limit(request) -> int:
    """REQUEST_MAX_BYTES, except for model uploads by staff who may register versions (ADMIN_UPLOAD_MAX_BYTES)."""
    user = getattr(request, "user", None)
    if (
        request.path == reverse("admin:webapp_modelversion_register")
        and user is not None and user.is_active and user.is_staff and user.has_perm("webapp.add_modelversion")
    ):
        return settings.ADMIN_UPLOAD_MAX_BYTES
    return settings.REQUEST_MAX_BYTES


@functools.cache
def _read_only_paths() -> frozenset[str]:
    """The paths of READ_ONLY_VIEWS and the health probes (no resolving on every POST to know a prediction is none
    of them)."""
    return frozenset([*(reverse(f"api:{name}") for name in READ_ONLY_VIEWS), reverse("healthz"), reverse("readyz")])


def _url_name(request) -> str | None:
    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None


class JsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            refused = self._refusal(request)
        except dependency_errors() as exc:  # the sign-in limit counts in the cache
            return _unavailable(request, exc)
        if refused is not None:
            return refused
        head = request.method == "HEAD"
        if head and _is_api(request) and _url_name(request) in GET_VIEWS:  # django-ninja routes GET only
            request.method = "GET"
        response = self.get_response(request)
        if head and not response.streaming:  # no body, on every path: gunicorn warns of each one sent (the probes')
            response["Content-Length"] = str(len(response.content))
            response.content = b""
        is_json = response.get("Content-Type", "").startswith("application/json")
        if _is_api(request) and response.status_code == 405 and not is_json:  # django-ninja answers these in HTML
            return self._not_allowed(request, response.get("Allow", ""))
        return response

    def _refusal(self, request):
        """An answer given before the request is handled: a body over its limit, or too many sign-in attempts."""
        limit = _body_limit(request)
        if self._declared_length(request) > limit:
            # Refuse before reading a byte of the body, on every path: the page and the admin too.
            message = _("The request body is over the %(limit)s limit.") % {"limit": size_text(limit)}
            return _refused(request, 413, "request_too_large", message)
        if self._chunked_without_length(request):
            # WSGI gives Django no way to read a body of unknown length: it would see none and answer as if nothing was sent.
            message = _("Send the body with a Content-Length header; chunked uploads are not read.")
            return _refused(request, 411, "length_required", message)
        if request.method not in ("GET", "HEAD") and request.path_info in _read_only_paths():
            # Here, before CsrfViewMiddleware would answer a PUT with its HTML 403 page.
            return self._not_allowed(request, "GET, HEAD")
        if request.path.startswith(reverse("admin:index")) and _holds_nul(request.GET):
            # The admin's filters put the query into SQL as given, and PostgreSQL refuses text holding NUL (a 500).
            return _refused(request, 400, "bad_request", _("The address holds a NUL character, which nothing here can match."))
        if request.method == "POST" and request.path == reverse("admin:login"):
            throttle = LoginRateThrottle()
            if not throttle.allow_request(request):
                message = _("Too many sign-in attempts from your address; wait a minute and try again.")
                return _refused(request, 429, "rate_limited", message, {"Retry-After": str(int(throttle.wait() or 60))})
        return None

    @staticmethod
    def _not_allowed(request, allow: str):
        message = _("%(method)s is not allowed on %(path)s; use %(allowed)s.") % {"method": request.method, "path": request.path, "allowed": allow}
        return error_response(405, "method_not_allowed", message, {"Allow": allow})

    @staticmethod
    def _chunked_without_length(request) -> bool:
        return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get("CONTENT_LENGTH")

    @staticmethod
    def _declared_length(request) -> int:
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return _refused(request, 413, "request_too_large", _("The request body is too large."))
        if isinstance(exception, (TooManyFilesSent, TooManyFieldsSent)):
            return _refused(request, 413, "too_many_parts", _("The request has too many files or fields."))
        if isinstance(exception, dependency_errors()):
            return _unavailable(request, exception)
        if _is_api(request) and isinstance(exception, Http404):
            return error_response(404, "not_found", _("No API endpoint at this path."))
        if _is_api(request):
            log.exception("unhandled error on %s", request.path)
            return error_response(500, "internal_error", _("Something went wrong on our side; it has been logged."))
        return None


class WorkerMemoryMiddleware:
    """Under gunicorn, a worker whose request loaded TensorFlow hands its place to a fresh worker once it answered.

    Serving needs no TensorFlow (the versions run on ONNX Runtime or OpenVINO); registering, compiling or scoring a
    version in the admin loads it, and a worker then keeps 1-2 GB it never gives back. SIGTERM is gunicorn's
    graceful stop: the worker finishes its requests in flight (this reply too) and the master starts another.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        loaded_before = "tensorflow" in sys.modules
        response = self.get_response(request)
        if not loaded_before and "tensorflow" in sys.modules and request.META.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
            log.info("worker %s loaded TensorFlow for %s %s; it stops after this reply and gunicorn starts a fresh one",
                     os.getpid(), request.method, request.path)
            os.kill(os.getpid(), signal.SIGTERM)
        return response


# The service's own pages load scripts, styles and fonts from this origin only and draw pictures from it, from
# data: (heat maps) and blob: (the preview); their one inline style is a bar's width. The admin and the API's
# docs are Django's and django-ninja's pages, left to their own rules.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class PageSecurityPolicyMiddleware:
    """Content-Security-Policy on the service's own HTML pages: an injected script would not run."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        own_page = response.get("Content-Type", "").startswith("text/html") and not (
            _is_api(request) or request.path.startswith(reverse("admin:index")))
        if own_page and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = PAGE_POLICY
        return response
