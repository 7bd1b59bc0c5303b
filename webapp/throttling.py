"""Per-client rate limits: the API's (per token, or per client address) and the page's own, stricter one.

Built on django-ninja's throttling, made safe for threads. Every image of a batch counts as one request.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle

from webapp.clients import client_address
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
    setting = "API_RATE_LIMIT"
    # State that SimpleRateThrottle keeps between allow_request() and wait() for one request.
    key, history, now = _PerThread(), _PerThread(), _PerThread()

    def __init__(self):
        self._local = threading.local()
        super().__init__(getattr(settings, self.setting))

    def allow_request(self, request: HttpRequest) -> bool:
        self._follow_setting()
        return super().allow_request(request)

    def allow_more(self, request: HttpRequest, count: int) -> bool:
        """Count `count` more requests against the same budget (the other images of a batch), all or none."""
        self._follow_setting()
        self.key = self.get_cache_key(request)
        self.history = [t for t in self.cache.get(self.key, []) if t > self.timer() - self.duration]
        self.now = self.timer()
        if len(self.history) + count > self.num_requests:
            return False
        self.history[:0] = [self.now] * count
        self.cache.set(self.key, self.history, self.duration)
        return True

    def _follow_setting(self) -> None:
        # The API's one instance is built at import: read the limit per request so the setting is always the one in force.
        rate = getattr(settings, self.setting)
        if self.rate != rate:
            self.rate = rate
            self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_ident(self, request: HttpRequest) -> str:
        return client_address(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        auth = getattr(request, "auth", None)
        ident = f"token-{auth.pk}" if isinstance(auth, ApiToken) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PageRateThrottle(ClientRateThrottle):
    """The public page's own budget per client address, apart from the API's and stricter."""

    scope = "page"
    setting = "PAGE_RATE_LIMIT"

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(PageRateThrottle):
    """Password attempts at the admin's sign-in, per client address."""

    scope = "login"
    setting = "LOGIN_RATE_LIMIT"
