"""Per-client rate limiting for the API and the page (django-ninja's throttling, made safe for threads)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle

from webapp.models import ApiToken


class _PerThread:
    """An attribute kept per thread: ninja shares one throttle object between the threads of a worker."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        return getattr(obj._local, self.name, None) if obj is not None else self

    def __set__(self, obj, value):
        setattr(obj._local, self.name, value)


class ClientRateThrottle(SimpleRateThrottle):
    """One budget per API token, or per client address for anonymous callers."""

    scope = "client"
    # State that SimpleRateThrottle keeps between allow_request() and wait() for one request.
    key, history, now = _PerThread(), _PerThread(), _PerThread()

    def __init__(self):
        self._local = threading.local()
        super().__init__(settings.API_RATE_LIMIT)

    def allow_request(self, request: HttpRequest) -> bool:
        # The API's one instance is built at import: read the limit per request so the setting is always the one in force.
        if self.rate != settings.API_RATE_LIMIT:
            self.rate = settings.API_RATE_LIMIT
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        auth = getattr(request, "auth", None)
        ident = f"token-{auth.pk}" if isinstance(auth, ApiToken) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
