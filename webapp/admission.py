"""How much decoding a request may start: memory budgets per request and per worker, checked from headers first.

Small files can decode huge (a lossless WebP of 38 bytes can hold 6400x6250 RGBA pixels, 160 MB decoded, and libwebp
needs about five such frames at its peak). So before any pixel is decoded, every image's header is read and
its peak decoding cost estimated (recognizer.preprocessing.header_cost). A request whose images together
cost more than DECODE_REQUEST_MAX_BYTES is refused (413); a request that would take the worker's decoding
in flight over DECODE_WORKER_MAX_BYTES gets a fast 503 (Busy). Images of one request are decoded one after
the other, so a request holds its largest image's cost while it decodes.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from django.conf import settings
from PIL import Image

from recognizer import errors as core
from recognizer.errors import gettext_noop
from recognizer.preprocessing import InputSpec, decode, header_cost, open_image
from webapp.runtime import Busy


class DecodeBudgetExceeded(core.ImageTooLarge):
    code = "images_too_large"


class _WorkerBudget:
    """Bytes of decoding in flight in this process; the capacity is read from the settings at each reservation."""

    def __init__(self):
        self._lock = threading.Lock()
        self.used = 0

    @contextlib.contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        with self._lock:
            if self.used + amount > settings.DECODE_WORKER_MAX_BYTES:
                raise Busy(gettext_noop("The service is decoding as many images as it can hold; try again in a moment."))
            self.used += amount
        try:
            yield
        finally:
            with self._lock:
                self.used -= amount


worker_budget = _WorkerBudget()


def _limits() -> dict:
    return {
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_pixels": settings.MAX_IMAGE_PIXELS,
        "max_full_decode_pixels": settings.MAX_FULL_DECODE_PIXELS,
        "formats": settings.ALLOWED_IMAGE_FORMATS,
    }


def _cost(upload, spec: InputSpec) -> int | core.ImageError:
    if getattr(upload, "refused", None) is not None:
        return upload.refused
    try:
        return header_cost(upload.data, spec, **_limits())
    except core.ImageError as exc:  # this image alone is refused; the others of a batch go on
        return exc


def request_cost(*, uploads, spec: InputSpec) -> list[int | core.ImageError]:
    """Check every upload from its header (bytes, format, pixels) and the request's budget: each one's cost or error."""
    costs = [_cost(upload, spec) for upload in uploads]
    total = sum(cost for cost in costs if isinstance(cost, int))
    allowed = min(settings.DECODE_REQUEST_MAX_BYTES, settings.DECODE_WORKER_MAX_BYTES)
    if total > allowed:
        raise DecodeBudgetExceeded(
            gettext_noop(
                "These images would take %(total).0f MB to decode; one request may take at most %(allowed).0f MB. "
                "Send fewer images, or smaller ones (JPEG decodes at reduced size)."
            ),
            total=total / 2**20, allowed=allowed / 2**20,
        )
    return costs


def decoded_uploads(*, uploads, spec: InputSpec) -> list[Image.Image | core.ImageError]:
    """Each upload decoded once, one after the other, within both budgets (413 or Busy); a bad one is its own error."""
    costs = request_cost(uploads=uploads, spec=spec)
    with worker_budget.reserve(max((c for c in costs if isinstance(c, int)), default=0)):
        return [cost if isinstance(cost, core.ImageError) else _decoded(upload, spec) for upload, cost in zip(uploads, costs)]


def _decoded(upload, spec: InputSpec) -> Image.Image | core.ImageError:
    try:
        image = decode(open_image(upload.data, **_limits()), spec)
    except core.ImageError as exc:
        return exc
    if getattr(upload, "on_decoded", None) is not None:
        upload.on_decoded(image)  # the page's preview, from the same decoded pixels
    return image
