"""Per-client rate limiting for the API and the page: a fixed-window counter per client in the shared cache.

django-ninja's SimpleRateThrottle keeps every request's timestamp in one cache
entry and writes the whole list back: its cost grows with the limit, and two
workers writing it at once lose each other's requests. One atomic `incr` per
request (diskcache's SQLite on one host, Redis across hosts) is exact and cheap; the
window opens with a client's first request and lasts the rate's period; the
price is a fixed window's: a client may spend one window's budget at its end
and the next one's at the start.
"""

from __future__ import annotations

import math
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
    cache_format = "throttle-window_%(scope)s_%(ident)s"  # not the timestamp lists older releases kept
    # State kept between allow_request() and wait() for one request.
    key, now = _PerThread(), _PerThread()

    def __init__(self):
        self._local = threading.local()
        super().__init__(settings.API_RATE_LIMIT)

    def allow_request(self, request: HttpRequest) -> bool:
        # The API's one instance is built at import: read the limit per request so the setting is always the one in force.
        if self.rate != settings.API_RATE_LIMIT:
            self.rate = settings.API_RATE_LIMIT
            self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request) if self.rate else None
        if self.key is None:
            return True
        self.now = self.timer()
        if self.cache.add(self.key, 0, self.duration):  # this request opens the client's window
            self.cache.set(f"{self.key}:opened", self.now, self.duration)
        try:
            count = self.cache.incr(self.key)
        except ValueError:  # the window closed between add and incr: this request opens the next one
            self.cache.set(self.key, count := 1, self.duration)
        return count <= self.num_requests

    def wait(self) -> int:
        """Whole seconds until the client's window closes and its budget is whole again (at least 1)."""
        opened = self.cache.get(f"{self.key}:opened", self.now)
        return max(1, math.ceil(opened + self.duration - self.now))

    def get_cache_key(self, request: HttpRequest) -> str:
        auth = getattr(request, "auth", None)
        ident = f"token-{auth.pk}" if isinstance(auth, ApiToken) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
