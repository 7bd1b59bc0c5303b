"""End-to-end HTTP benchmark: the real service under gunicorn against the naive baseline, in one run.

Both serve the same H5 on loopback, one after the other (never at the same
time, so they do not share the two cores). N clients post the same 1 MP JPEG
for a fixed time; the table gives throughput, latency percentiles, errors and
the ratio, then peak RSS per worker and the time from start to ready.

    .venv/bin/python bench/http_bench.py [--seconds 20] [--clients 8] [--model models/x.h5]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recognizer.photos import role_dir  # noqa: E402

PHOTO = role_dir("golden") / "animal" / "tiger.jpg"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_megapixel_jpeg() -> bytes:
    with Image.open(PHOTO) as photo:
        image = photo.convert("RGB").resize((1155, 866), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode() + data + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str, conn=None):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/predict", body=body, headers={"Content-Type": content_type})
    reply = conn.getresponse()
    return conn, reply.status, reply.read()


def wait_ready(port: int, process: subprocess.Popen, deadline: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} was not ready within {deadline:.0f} s")


def start_service(model: Path, var: Path, port: int, env: dict) -> tuple[subprocess.Popen, float]:
    """The real app: migrate, register + activate the model, then gunicorn with the project's config."""
    env = {**env, "VAR_DIR": str(var), "PORT": str(port), "ACCESS_LOG": "/dev/null", "API_RATE_LIMIT": "1000000/m"}
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run(manage + ["migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(manage + ["register_model", str(model), "--activate"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return process, time.perf_counter() - started


def start_naive(model: Path, port: int, env: dict) -> tuple[subprocess.Popen, float]:
    env = {**env, "NAIVE_MODEL": str(model)}
    started = time.perf_counter()
    command = [str(BIN / "gunicorn"), "bench.naive_app:application", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "120"]
    # From bench/, so that gunicorn does not pick up the service's gunicorn.conf.py.
    process = subprocess.Popen(command, cwd=ROOT / "bench", env=env, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return process, time.perf_counter() - started


def load(port: int, body: bytes, content_type: str, *, clients: int, seconds: float) -> dict:
    """N client threads posting for a fixed time; latencies of 200s and a count of everything else."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client():
        conn = None
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            try:
                conn, status, _ = post(port, body, content_type, conn)
            except OSError:
                conn, status = None, 0
            with lock:
                if status == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = np.array(latencies) * 1000
    return {
        "ok": len(latencies),
        "errors": errors[0],
        "throughput": len(latencies) / seconds,
        "p50": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p95": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
        "p99": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
    }


def worker_peak_rss_mb(master_pid: int) -> list[float]:
    """VmHWM (peak resident memory) of each worker process of a gunicorn master."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def top5(payload: bytes) -> list[str]:
    return [p["label"] for p in json.loads(payload)["predictions"]]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--model", type=Path, help="artifact .h5 (default: the default model, built if missing)")
    args = parser.parse_args()
    from recognizer.default_model import build_default

    model = (args.model or build_default()).resolve()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev", "PYTHONPATH": str(ROOT)}
    body, content_type = multipart(one_megapixel_jpeg())
    results, rss, ready, answers = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as var:
        for name, starter in (("service", lambda p: start_service(model, Path(var), p, env)), ("naive", lambda p: start_naive(model, p, env))):
            port = free_port()
            process, ready[name] = starter(port)
            try:
                answers[name] = top5(post(port, body, content_type)[2])
                load(port, body, content_type, clients=args.clients, seconds=3)  # warm every worker
                results[name] = load(port, body, content_type, clients=args.clients, seconds=args.seconds)
                rss[name] = worker_peak_rss_mb(process.pid)
            finally:
                stop(process)
    report(results, rss, ready, answers, args, model)
    return 0


def report(results, rss, ready, answers, args, model) -> None:
    print(f"model: {model.name}; {args.clients} clients posting a 1 MP JPEG for {args.seconds:.0f} s each; {os.cpu_count()} CPUs")
    print(f"{'server':<8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'ok':>6} {'errors':>6} {'ready s':>8} {'peak RSS/worker MB':>20}")
    for name, r in results.items():
        peaks = "/".join(f"{m:.0f}" for m in rss[name])
        print(f"{name:<8} {r['throughput']:>7.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['p99']:>8.1f} {r['ok']:>6} {r['errors']:>6} {ready[name]:>8.1f} {peaks:>20}")
    ratio = results["service"]["throughput"] / max(results["naive"]["throughput"], 1e-9)
    print(f"throughput ratio service/naive: {ratio:.1f}x")
    print(f"identical top-5 answers: {answers['service'] == answers['naive']} ({', '.join(answers['service'])})")


if __name__ == "__main__":
    raise SystemExit(main())
