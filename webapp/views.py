"""The browser page and the health probes. The page calls the same service as the API.

The page is a public demo, open whatever API_ALLOW_ANONYMOUS says: one photo per request, counted against
PAGE_RATE_LIMIT per client address, a budget of its own that is much smaller than the API's. Programs that need
more use the API with a token.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import replace

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from django.views.decorators.http import require_http_methods, require_safe
from PIL import Image

from webapp import feedback, selectors, services, shadow
from recognizer.manifest import QUERY_DOMAINS
from recognizer.preprocessing import accept_types, format_name, size_text
from webapp.errors import ApiError, dependency_down, error_response, expected_errors, to_api_error
from webapp.feedback_views import page_context
from webapp.i18n import reply_language
from webapp.parsing import parse_params, upload_from_file
from webapp.fleet import engine_fallback_warnings
from webapp.runtime import ModelNotReady, runtime
from webapp.throttling import PageRateThrottle

log = logging.getLogger(__name__)

_DOMAIN_NAMES = {"animal": gettext_lazy("Animals"), "bird": gettext_lazy("Birds"), "plant": gettext_lazy("Plants")}
DOMAIN_CHOICES = [("", gettext_lazy("All"))] + [(domain, _DOMAIN_NAMES.get(domain, domain)) for domain in QUERY_DOMAINS]
PREVIEW_SIDE = 480


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


class _Preview:
    """A small JPEG data URL of the upload, made from the one decoded image (so within its decoding budget)."""

    def __init__(self):
        self.url = ""

    def __call__(self, image: Image.Image) -> None:
        small = image.copy()
        small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=80)
        self.url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _upload_hint() -> str:
    """What the page takes, from the settings in force: 'JPEG, PNG, WebP, GIF or BMP, up to 10 MB (JPEG up to 40
    megapixels, other formats 16)'; sizes as the 413s say them."""
    names = [format_name(kind) for kind in settings.ALLOWED_IMAGE_FORMATS]
    formats = names[0] if len(names) == 1 else _("%(formats)s or %(last)s") % {"formats": _(", ").join(names[:-1]), "last": names[-1]}
    size, jpeg = size_text(settings.UPLOAD_MAX_BYTES).replace(" ", "\u00a0"), f"{settings.MAX_IMAGE_PIXELS / 1e6:g}"  # "10 MB" on one line
    whole = f"{min(settings.MAX_IMAGE_PIXELS, settings.MAX_FULL_DECODE_PIXELS) / 1e6:g}"  # the others are decoded whole
    if jpeg == whole or "JPEG" not in settings.ALLOWED_IMAGE_FORMATS:
        return _("%(formats)s, up to %(size)s and %(megapixels)s megapixels") % {"formats": formats, "size": size, "megapixels": whole}
    return _("%(formats)s, up to %(size)s (JPEG up to %(megapixels)s megapixels, other formats %(whole)s)") % {
        "formats": formats, "size": size, "megapixels": jpeg, "whole": whole}


def _classify(request: HttpRequest) -> tuple[services.PredictionResult, str]:
    PageRateThrottle.spend(request)
    file = request.FILES.get("image")
    if file is None:
        raise ApiError(400, "missing_image", _("Choose a photo first."))
    preview = _Preview()
    upload = replace(upload_from_file(file), on_decoded=preview)
    params = parse_params(request.POST.dict())
    result = services.prediction_create(
        upload=upload, model_name=params.model, top_k=params.top_k, domain=params.domain, explain=params.explain,
        source="page",
    )
    owner = feedback.Owner.of_page(request)
    feedback.photo_keep(prediction_id=result.id, sha256=result.input_sha256, picture=result.picture, owner=owner)
    shadow.shadow_sample_result(result=result, data=upload.data, domain=params.domain)
    return result, preview.url


@require_http_methods(["GET", "HEAD", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    context = {
        "domains": DOMAIN_CHOICES,
        "models": selectors.model_names_active(),
        "selected_model": request.POST.get("model") or settings.DEFAULT_MODEL_NAME,
        "selected_domain": request.POST.get("domain", ""),
        "max_bytes": settings.UPLOAD_MAX_BYTES,  # app.js refuses a larger file before sending it
        "upload_hint": _upload_hint(),
        "accept": accept_types(settings.ALLOWED_IMAGE_FORMATS),
        **page_context(),
    }
    if request.method != "POST":
        return render(request, "index.html", context)
    try:
        result, preview = _classify(request)
    except expected_errors() as exc:
        error = to_api_error(exc)
        if _wants_json(request):
            return error.response()
        return error.page(request, "index.html", {**context, "error": error.message})
    reply = result.to_dict(lang=reply_language())
    if _wants_json(request):
        return JsonResponse(reply)
    return render(request, "index.html", {**context, "result": reply, "preview": preview})


@require_safe  # GET, and HEAD for uptime checkers
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up (no database, no model)."""
    return JsonResponse({"status": "ok"})


@require_safe  # GET, and HEAD for uptime checkers
def readyz(request: HttpRequest) -> JsonResponse:
    """200 only when the default model's active version is loaded and warmed up in this process."""
    try:  # rate limits (and, with CACHE_URL, every host's shared counters) live in the cache
        cache.get("readyz")
    except Exception as exc:  # noqa: BLE001 - whichever backend, a cache that cannot answer fails requests
        return dependency_down(exc).response()
    try:
        with connection.cursor() as cursor:  # asked every time: a loaded model needs no query, each answer does
            cursor.execute("SELECT 1")
        loaded = runtime().get(settings.DEFAULT_MODEL_NAME)
    except ModelNotReady as exc:
        failed = runtime().failures_by_name()  # which version failed to load here, and why
        return to_api_error(exc).response(**({"failed": failed} if failed else {}))
    except DatabaseError as exc:  # every answer is recorded there: not ready, and say which dependency is down
        return dependency_down(exc).response()
    models = {name: item.version for name, item in runtime().loaded().items()}
    model = {"name": loaded.name, "version": loaded.version}
    # The engine really answering here: a compiled copy that failed to load is served by Keras.
    failed = runtime().failures_by_name()  # versions this process refused to serve, and why
    body = {"status": "ready", "model": model, "engine": loaded.engine.kind, "loaded": models, "failed": failed}
    # Still ready (answers are right), but slower than it should be: say so where operators and balancers look.
    return JsonResponse({**body, "warnings": engine_fallback_warnings()})


def _json_or_default(default, status: int, code: str, message: str):
    """Django's error views, but the API's one error shape under /api/."""

    def view(request, exception=None):
        if request.path.startswith("/api/"):
            return error_response(status, code, message)
        return default(request, exception) if exception is not None else default(request)

    return view


bad_request = _json_or_default(defaults.bad_request, 400, "bad_request", gettext_lazy("The request is malformed (for example its Host header)."))
not_found = _json_or_default(defaults.page_not_found, 404, "not_found", gettext_lazy("No API endpoint at this path."))
server_error = _json_or_default(defaults.server_error, 500, "internal_error", gettext_lazy("Something went wrong on our side; it has been logged."))
