"""End-to-end HTTP benchmark: the service, a BentoML endpoint and the naive baseline, in one run.

All three serve the same model on loopback, one after the other (never at the
same time, so they do not share the two cores), from a copy of the artifact
under var/bench/served/ (registering writes into the manifest beside the file,
which the user's own deployment reads): the service under gunicorn;
BentoML 1.4 serving the very copy the service serves, on the same runtime
(bench/bentoml_peer.py, in its own virtualenv under var/bench/, made on first use); and a Django view
calling Keras' `model.predict`. N clients post the same 1 MP JPEG for a fixed
time; the rounds repeat and the table prints each server's median round, the
ratios, peak RSS per worker and the time from start to ready. Last, the
in-process pipeline limit: decode + preprocess + inference of the same JPEG with
the service's engine in two processes, no HTTP.

    .venv/bin/python bench/http_bench.py [--seconds 20] [--clients 8] [--rounds 3] [--model models/x.h5] [--precision auto]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
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


def post(port: int, body: bytes, content_type: str, conn=None, route: str = "/api/v1/predict"):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", route, body=body, headers={"Content-Type": content_type})
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
    if not (var / "db.sqlite3").exists():  # the first round registers; later rounds serve the same version
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


PEER_VENV = ROOT / "var" / "bench" / "bentoml-venv"
PEER_PACKAGES = ("bentoml==1.4.40",)
PEER_SHARED = ("onnxruntime", "openvino", "numpy", "pillow")  # at the project's pins, so only the server differs


def peer_python() -> Path:
    """The BentoML virtualenv's python, made on first use and brought to new pins (never the project's own
    environment)."""
    python, stamp = PEER_VENV / "bin" / "python", PEER_VENV / "installed.txt"
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("==")[0].strip().lower() in PEER_SHARED]
    wanted = "\n".join([*PEER_PACKAGES, *pins])
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    if not stamp.is_file() or stamp.read_text() != wanted:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES, *pins], check=True)
        stamp.write_text(wanted)
    return python


def served_kind(model: Path) -> str:
    """The engine the service serves `model` with: registration writes it into the manifest beside the file."""
    from recognizer.manifest import manifest_path, read_manifest

    return read_manifest(manifest_path(model)).engine


def peer_kind(model: Path) -> str:
    """What the BentoML peer runs: the service's own compiled copy; the FP32 ONNX copy when Keras serves."""
    kind = served_kind(model)
    return "onnxruntime" if kind == "keras" else kind


def peer_file(model: Path) -> Path:
    from recognizer.optimized import compiled_path

    return compiled_path(model, peer_kind(model))


def start_bentoml(model: Path, port: int, env: dict) -> tuple[subprocess.Popen, float]:
    from recognizer.manifest import manifest_path

    python = peer_python()
    env = {**env, "PEER_MODEL": str(peer_file(model)), "PEER_KIND": peer_kind(model), "PEER_MANIFEST": str(manifest_path(model)),
           "BENTOML_HOME": str(PEER_VENV.parent / "bentoml-home"), "BENTOML_DO_NOT_TRACK": "true"}
    started = time.perf_counter()
    command = [str(python), "-m", "bentoml", "serve", "bentoml_peer:Recognizer", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT / "bench", env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wait_ready(port, process)
    return process, time.perf_counter() - started


def load(port: int, body: bytes, content_type: str, *, clients: int, seconds: float, route: str) -> dict:
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
                conn, status, _ = post(port, body, content_type, conn, route)
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


SERVERS = {"service": "/api/v1/predict", "bentoml": "/predict", "naive": "/api/v1/predict"}


def server_bench_setup(doc: str, *, rounds: bool = False) -> tuple[argparse.Namespace, Path, dict]:
    """The command line of a benchmark against a real server: its arguments, the model, the server's environment."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    if rounds:
        parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, help="artifact .h5 (default: the default model, built if missing)")
    parser.add_argument(
        "--precision", choices=("fp32", "int8", "bf16", "auto"), default=os.environ.get("RECOGNIZER_PRECISION", "fp32"),
        help="RECOGNIZER_PRECISION the service registers the model with (default: the environment's, else fp32); "
             "its gate decides what serves, and the BentoML peer and the pipeline limit run that same copy",
    )
    args = parser.parse_args()
    from recognizer.default_model import build_default

    model = served_copy((args.model or build_default()).resolve())
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev", "PYTHONPATH": str(ROOT),
           "RECOGNIZER_PRECISION": args.precision}
    return args, model, env


SERVED_COPIES = ROOT / "var" / "bench" / "served"


def served_copy(model: Path) -> Path:
    """The artifact and its manifest copied under var/bench/served/, for the benchmark's servers to register.

    Registering writes the engine that serves a version into the manifest beside its file, and a deployment
    reads that manifest: registering the user's own file here, in the benchmark's throwaway database, told the
    user's running service that its version had been recompiled for another engine."""
    from recognizer.manifest import manifest_path

    SERVED_COPIES.mkdir(parents=True, exist_ok=True)
    copy = SERVED_COPIES / model.name
    if not copy.exists() or copy.stat().st_size != model.stat().st_size or copy.stat().st_mtime != model.stat().st_mtime:
        shutil.copy2(model, copy)
    shutil.copy2(manifest_path(model), manifest_path(copy))
    return copy


def main() -> int:
    args, model, env = server_bench_setup(__doc__, rounds=True)
    load_before, began = os.getloadavg(), time.gmtime()  # the bench's own clients and servers raise the load
    jpeg = one_megapixel_jpeg()
    body, content_type = multipart(jpeg)
    rounds, rss, ready, answers = {name: [] for name in SERVERS}, {}, {}, {}
    with tempfile.TemporaryDirectory() as var:
        starters = {
            "service": lambda p: start_service(model, Path(var), p, env),
            "bentoml": lambda p: start_bentoml(model, p, env),
            "naive": lambda p: start_naive(model, p, env),
        }
        for _ in range(args.rounds):
            for name, route in SERVERS.items():
                port = free_port()
                process, ready[name] = starters[name](port)
                try:
                    answers[name] = top5(post(port, body, content_type, route=route)[2])
                    load(port, body, content_type, clients=args.clients, seconds=3, route=route)  # warm every worker
                    rounds[name].append(load(port, body, content_type, clients=args.clients, seconds=args.seconds, route=route))
                    rss[name] = worker_peak_rss_mb(process.pid)
                finally:
                    stop(process)
    limit = pipeline_limit(model, jpeg, seconds=args.seconds)
    report(rounds, rss, ready, answers, limit, args, model, load_before, began)
    return 0


def _pipeline_worker(model: str, jpeg: bytes, seconds: float, queue) -> None:
    os.environ["RECOGNIZER_INTRA_THREADS"] = "1"
    try:
        from recognizer.optimized import load_engine

        engine = load_engine(model, served_kind(Path(model)))  # the service's own engine and precision
        engine.probabilities(engine.prepare(jpeg))
        done, stop_at = 0, time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            engine.probabilities(engine.prepare(jpeg))
            done += 1
        queue.put(done / seconds)
    except Exception as exc:  # said in the parent, which would otherwise wait for nothing
        queue.put(f"{type(exc).__name__}: {exc}")


def pipeline_limit(model: Path, body: bytes, *, seconds: float, processes: int = 2) -> float:
    """Images/s of decode + preprocess + inference with the service's engine in `processes` processes, no HTTP."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_pipeline_worker, args=(str(model), body, seconds, queue)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    rates = [queue.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    failures = [r for r in rates if isinstance(r, str)]
    if failures:
        raise RuntimeError(f"the pipeline-limit process failed: {failures[0]}")
    return sum(rates)


def _median(results: list[dict]) -> dict:
    return sorted(results, key=lambda r: r["throughput"])[len(results) // 2]


def report(rounds, rss, ready, answers, limit, args, model, load_before, began) -> None:
    before, after = (", ".join(f"{x:.2f}" for x in loads) for loads in (load_before, os.getloadavg()))
    print(f"{time.strftime('%Y-%m-%d %H:%M', began)}-{time.strftime('%H:%M UTC', time.gmtime())}; model: {model.name}; {args.clients} clients posting a 1 MP JPEG for {args.seconds:.0f} s; "
          f"{args.rounds} rounds, median shown; {os.cpu_count()} CPUs; "
          f"load average {before} before the run, {after} after it")
    print(f"service engine: {served_kind(model)} (RECOGNIZER_PRECISION={args.precision}); BentoML: {peer_file(model).name} as {peer_kind(model)}")
    print(f"{'server':<8} {'req/s':>7} {'rounds req/s':>20} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'ready s':>8} {'peak RSS/worker MB':>20}")
    medians = {name: _median(results) for name, results in rounds.items()}
    for name, r in medians.items():
        each = "/".join(f"{x['throughput']:.0f}" for x in rounds[name])
        peaks = "/".join(f"{m:.0f}" for m in rss[name])
        errors = sum(x["errors"] for x in rounds[name])
        print(f"{name:<8} {r['throughput']:>7.1f} {each:>20} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['p99']:>8.1f} {errors:>6} {ready[name]:>8.1f} {peaks:>20}")
    service = medians["service"]["throughput"]
    print(f"service/bentoml: {service / max(medians['bentoml']['throughput'], 1e-9):.2f}x (target 1.2x); "
          f"service/naive: {service / max(medians['naive']['throughput'], 1e-9):.1f}x (target 8x)")
    print(f"pipeline limit (2 processes, no HTTP): {limit:.1f} img/s; service at {service / max(limit, 1e-9):.0%} of it (target 85%)")
    same = answers["service"] == answers["bentoml"] == answers["naive"]
    print(f"identical top-5 answers: {same} ({', '.join(answers['service'])})")


if __name__ == "__main__":
    raise SystemExit(main())
