"""Abuse against a real gunicorn: decoding bombs within each worker's memory target, and forged X-Forwarded-For."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from bench.decode_bomb import TARGET_MB, bomb_files, bomb_requests

pytestmark = pytest.mark.e2e


def worker_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_a_stream_of_decoding_bombs_keeps_every_worker_under_its_memory_target(make_server, tiny_artifact):
    server, _ = make_server(tiny_artifact)
    plan = bomb_requests(bomb_files())
    statuses: dict[str, Counter] = {name: Counter() for name in plan}
    lock = threading.Lock()

    def client(order: list[str]):
        for name in order:
            path, body, content_type = plan[name]
            try:
                reply = requests.post(server.url(path), data=body, headers={"Content-Type": content_type}, timeout=60)
                status = reply.status_code
                if status == 200 and "results" in reply.json():  # a batch answers each image on its own
                    codes = {item.get("error", {}).get("code") for item in reply.json()["results"]}
                    if codes != {None}:  # None: every image was answered
                        status = "200, every image 413" if codes == {"image_too_large"} else f"200, {sorted(map(str, codes))}"
            except requests.RequestException:
                status = None
            with lock:
                statuses[name][status] += 1

    names = list(plan)
    clients = [threading.Thread(target=client, args=(names[i:] + names[:i],)) for i in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()

    peaks = {pid: worker_peak_mb(pid) for pid in server.worker_pids()}
    assert max(peaks.values()) < TARGET_MB, (peaks, statuses)
    assert all(set(count) <= {200, 413, 503, "200, every image 413"} for count in statuses.values()), statuses
    assert statuses["webp-40mp"] == Counter({413: 4})
    assert statuses["batch-8x-webp-40mp"] == Counter({"200, every image 413": 4})
    assert sum(statuses[name][200] for name in ("webp-16mp", "png-16mp", "gif-16mp")) > 0, statuses
    print(f"peak RSS per worker: {peaks}; replies: {statuses}")


def test_new_x_forwarded_for_values_do_not_reset_the_rate_limit(make_server, tiny_artifact, jpeg_bytes):
    server, _ = make_server(tiny_artifact, env={"API_RATE_LIMIT": "3/m"})
    replies = [
        requests.post(
            server.url("/api/v1/predict"), files={"image": ("t.jpg", jpeg_bytes, "image/jpeg")},
            headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=30,
        ).status_code
        for n in range(8)
    ]
    assert replies == [200] * 3 + [429] * 5
