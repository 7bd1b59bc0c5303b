"""Per-client rate limits: the API's (per token, or per client address) and the page's own, stricter one.

Every image of a batch counts as one request. Each budget is a fixed-window
counter in the shared cache. django-ninja's SimpleRateThrottle keeps every
request's timestamp in one cache entry and writes the whole list back: its
cost grows with the limit, and two workers writing it at once lose each
other's requests. One atomic `incr` per request (diskcache's SQLite on one
host, Redis across hosts) is exact and cheap. The window opens with a
client's first request and lasts the rate's period; the price is a fixed
window's: a client may spend one window's budget at its end and the next
one's at the start.
"""

from __future__ import annotations

import math
import threading

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle

from webapp.clients import client_address
from webapp.errors import rate_limited
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
    cache_format = "throttle-window_%(scope)s_%(ident)s"  # not the timestamp lists older releases kept
    # State kept between allow_request() and wait() for one request.
    key, now = _PerThread(), _PerThread()

    def __init__(self):
        self._local = threading.local()
        super().__init__(getattr(settings, self.setting))

    @classmethod
    def spend(cls, request: HttpRequest) -> None:
        """Count one request against the client's budget; the 429 (with Retry-After) once it is spent."""
        throttle = cls()
        if not throttle.allow_request(request):
            raise rate_limited(throttle)

    def allow_request(self, request: HttpRequest) -> bool:
        self._follow_setting()
        self.key = self.get_cache_key(request) if self.rate else None
        return self.key is None or self._spend(1)

    def allow_rest_of_batch(self, request: HttpRequest, size: int) -> bool:
        """Count the other images of a batch of `size` (the request itself was counted as one), all or none:
        a refused batch is taken back whole, the request's own unit too, so it costs nothing."""
        self._follow_setting()
        self.key = self.get_cache_key(request) if self.rate else None
        return self.key is None or size <= 1 or self._spend(size - 1, taken_back=size)

    def _spend(self, count: int, taken_back: int = 0) -> bool:
        """Add `count` to the client's window atomically; refused, `taken_back` is subtracted again."""
        self.now = self.timer()
        if self.cache.add(self.key, 0, self.duration):  # this request opens the client's window
            self.cache.set(f"{self.key}:opened", self.now, self.duration)
        try:
            total = self.cache.incr(self.key, count)
        except ValueError:  # the window closed between add and incr: this request opens the next one
            self.cache.set(self.key, total := count, self.duration)
        if total <= self.num_requests:
            return True
        if taken_back:
            self.cache.incr(self.key, -taken_back)
        return False

    def wait(self) -> int:
        """Whole seconds until the client's window closes and its budget is whole again (at least 1)."""
        opened = self.cache.get(f"{self.key}:opened", self.now)
        return max(1, math.ceil(opened + self.duration - self.now))

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
