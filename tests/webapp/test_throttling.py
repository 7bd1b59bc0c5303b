"""The rate limit's counter: exact when the workers of one host count at the same moment."""

from __future__ import annotations

import multiprocessing

import pytest
from django.test import RequestFactory

from webapp.cache import HostCache
from webapp.throttling import ClientRateThrottle

WORKERS, HITS = 4, 40


def _cache(folder: str):
    """The cache the workers of one host share when no CACHE_URL names Redis (webapp/settings/base.py)."""
    return HostCache(folder, {})


def _hammer(folder: str, key: str) -> None:
    cache = _cache(folder)
    for _ in range(HITS):
        cache.add(key, 0, 60)
        cache.incr(key)


def test_counts_from_concurrent_processes_are_all_kept(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hammer, args=(str(tmp_path), "hits")) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * WORKERS
    assert _cache(str(tmp_path)).get("hits") == WORKERS * HITS


def _spend(folder: str, results) -> None:
    throttle = ClientRateThrottle()
    throttle.cache = _cache(folder)
    request = RequestFactory().get("/api/v1/models", REMOTE_ADDR="192.0.2.7")
    results.extend([throttle.allow_request(request) for _ in range(HITS)])


@pytest.mark.django_db
def test_workers_sharing_a_host_admit_exactly_the_limit_between_them(tmp_path, settings):
    settings.API_RATE_LIMIT = "50/h"  # one window for the whole test, whenever it runs
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        results = manager.list()
        workers = [context.Process(target=_spend, args=(str(tmp_path), results)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        allowed = list(results)
    assert len(allowed) == WORKERS * HITS
    assert sum(allowed) == 50


def test_the_window_opens_with_the_first_request_and_the_wait_is_what_is_left_of_it(settings):
    settings.API_RATE_LIMIT = "2/m"
    clock = iter([1000.0, 1010.0, 1042.5])
    throttle = ClientRateThrottle()
    throttle.timer = lambda: next(clock)
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.8")
    assert [throttle.allow_request(request) for _ in range(3)] == [True, True, False]
    assert throttle.wait() == 18  # opened at 1000 s, refused at 1042.5 s


def test_a_batch_over_the_budget_is_refused_whole_and_costs_nothing(settings):
    settings.API_RATE_LIMIT = "5/m"
    throttle = ClientRateThrottle()
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.9")
    assert throttle.allow_request(request) and throttle.allow_rest_of_batch(request, 2)  # a batch of 2: 2 of 5
    assert throttle.allow_request(request)  # a batch of 4 counts its request: 3 of 5
    assert not throttle.allow_rest_of_batch(request, 4)  # 6 would be over: refused, its request taken back too
    assert [throttle.allow_request(request) for _ in range(4)] == [True, True, True, False]
