"""The rate limit under concurrency against a real gunicorn: its workers share one exact count per client."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

pytestmark = pytest.mark.e2e

LIMIT, CLIENTS, EACH = 20, 8, 6


def test_concurrent_clients_get_exactly_the_limit_through_all_workers(make_server, tiny_artifact):
    server, _ = make_server(tiny_artifact, env={"API_RATE_LIMIT": f"{LIMIT}/h"})  # one window for the whole test
    statuses: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client():
        with requests.Session() as session:
            start.wait()
            for _ in range(EACH):
                status = session.get(server.url("/api/v1/models"), timeout=30).status_code
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == Counter({200: LIMIT, 429: CLIENTS * EACH - LIMIT}), statuses
