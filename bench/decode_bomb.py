"""Decoding bombs against the real service: peak RSS per gunicorn worker under a stream of tiny files that decode huge.

Each client posts, over and over, files of a few kilobytes that are 16 to 40 megapixels of RGBA once decoded:
lossless WebP, PNG and transparent GIF, one per request and eight to a JSON batch. The table gives what each
kind of request got (200, 413 refused from its header, 503 over the worker's decoding budget) and every
worker's peak RSS (/proc VmHWM) after warm-up and after the stream. The target is 700 MB per worker.

    .venv/bin/python bench/decode_bomb.py [--seconds 20] [--clients 8] [--model models/x.h5]
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_bench import (  # noqa: E402
    free_port, multipart, post, server_bench_setup, start_service, stop, worker_peak_rss_mb,
)

TARGET_MB = 700


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def bomb_files() -> dict[str, bytes]:
    """Files of a few kilobytes at most that decode to 16-40 megapixels (RGBA, or a palette with transparency)."""
    rgba_40 = Image.new("RGBA", (6400, 6250), (10, 200, 30, 128))
    rgba_16 = Image.new("RGBA", (4000, 4000), (200, 10, 30, 100))
    palette = Image.new("P", (4000, 4000), 0)
    palette.putpalette([0, 0, 0, 255, 255, 255] * 128)
    return {
        "webp-40mp": _save(rgba_40, "WEBP", lossless=True, quality=0, method=0),
        "webp-16mp": _save(rgba_16, "WEBP", lossless=True, quality=0, method=0),
        "png-16mp": _save(rgba_16, "PNG", compress_level=9),
        "gif-16mp": _save(palette, "GIF", transparency=0),
    }


def bomb_requests(files: dict[str, bytes]) -> dict[str, tuple[str, bytes, str]]:
    """name -> (path, body, content type): each file alone, and the issue's batch of eight 40 MP WebPs."""
    requests = {}
    for name, data in files.items():
        body, content_type = multipart(data)
        requests[name] = ("/api/v1/predict", body, content_type)
    batch = {"images_base64": [base64.b64encode(files["webp-40mp"]).decode()] * 8}
    requests["batch-8x-webp-40mp"] = ("/api/v1/predict/batch", json.dumps(batch).encode(), "application/json")
    batch = {"images_base64": [base64.b64encode(files["png-16mp"]).decode()] * 2}
    requests["batch-2x-png-16mp"] = ("/api/v1/predict/batch", json.dumps(batch).encode(), "application/json")
    return requests


def stream(port: int, requests: dict, *, clients: int, seconds: float) -> dict[str, Counter]:
    """`clients` threads cycling through the requests until time is up; replies counted by status per request."""
    counts = {name: Counter() for name in requests}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(offset: int):
        names = itertools.islice(itertools.cycle(requests), offset, None)
        for name in names:
            if time.monotonic() > stop_at:
                return
            path, body, content_type = requests[name]
            try:
                _, status, _ = post(port, body, content_type, route=path)
            except OSError:
                status = 0
            with lock:
                counts[name][status] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def main() -> int:
    args, model, env = server_bench_setup(__doc__)
    files = bomb_files()
    requests = bomb_requests(files)
    with tempfile.TemporaryDirectory() as var:
        port = free_port()
        process, _ = start_service(model, Path(var), port, env)
        try:
            warm = worker_peak_rss_mb(process.pid)
            counts = stream(port, requests, clients=args.clients, seconds=args.seconds)
            peaks = worker_peak_rss_mb(process.pid)
        finally:
            stop(process)
    report(files, counts, warm, peaks, args, model)
    return 0 if max(peaks) < TARGET_MB else 1


def report(files, counts, warm, peaks, args, model) -> None:
    print(f"model: {model.name}; {args.clients} clients for {args.seconds:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{'request':<22} {'bytes sent':>10} {'200':>6} {'413':>6} {'503':>6} {'other':>6}")
    for name, count in counts.items():
        size = len(files[name]) if name in files else 0
        other = sum(n for status, n in count.items() if status not in (200, 413, 503))
        print(f"{name:<22} {size or '-':>10} {count[200]:>6} {count[413]:>6} {count[503]:>6} {other:>6}")
    print(f"peak RSS per worker after warm-up: {' / '.join(f'{m:.0f}' for m in warm)} MB")
    print(f"peak RSS per worker after the stream: {' / '.join(f'{m:.0f}' for m in peaks)} MB (target < {TARGET_MB} MB)")


if __name__ == "__main__":
    sys.exit(main())
