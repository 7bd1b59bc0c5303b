"""The cache the workers of one host share when CACHE_URL names no Redis: diskcache's SQLite files.

Its `add` and `incr` are transactions, so the rate limit's counters stay exact
when workers and threads count at the same moment (Django's FileBasedCache
reads and rewrites a file instead, and loses counts).
"""

from __future__ import annotations

from diskcache import DjangoCache


class HostCache(DjangoCache):
    """diskcache's Django backend, keeping its per-thread SQLite connections from one request to the next."""

    def close(self, **kwargs):
        # Django closes every cache when a request finishes. Here that would reopen the SQLite files on the next
        # request and checkpoint their write-ahead logs now: ~15 ms of a request's wall time on a busy disk.
        pass
