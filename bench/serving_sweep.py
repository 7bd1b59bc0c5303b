"""The service under gunicorn with other worker, intra-op thread and gunicorn thread counts, one after another.

Same load as bench/http_bench.py (N clients posting the same 1 MP JPEG); one round per setting, the
settings interleaved over --rounds so that a change in the machine's load hits them all alike.

    .venv/bin/python bench/serving_sweep.py [--seconds 10] [--clients 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_bench import free_port, load, multipart, one_megapixel_jpeg, served_copy, start_service, stop  # noqa: E402

# (gunicorn workers, intra-op threads per worker, gunicorn threads per worker); the first is the shipped one.
SETTINGS = ((2, 1, 16), (2, 1, 4), (2, 2, 16), (1, 2, 16), (3, 1, 8), (4, 1, 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "int8", "bf16", "auto"), default=os.environ.get("RECOGNIZER_PRECISION", "fp32"))
    args = parser.parse_args()
    from recognizer.default_model import build_default

    model = served_copy(build_default().resolve())
    body, content_type = multipart(one_megapixel_jpeg())
    results = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory() as var:
        for _ in range(args.rounds):
            for workers, intra, threads in SETTINGS:
                env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev", "PYTHONPATH": str(ROOT),
                       "RECOGNIZER_PRECISION": args.precision, "WEB_WORKERS": str(workers), "RECOGNIZER_INTRA_THREADS": str(intra), "WEB_THREADS": str(threads)}
                port = free_port()
                process, _ = start_service(model, Path(var), port, env)
                try:
                    load(port, body, content_type, clients=args.clients, seconds=3, route="/api/v1/predict")
                    results[(workers, intra, threads)].append(
                        load(port, body, content_type, clients=args.clients, seconds=args.seconds, route="/api/v1/predict"))
                finally:
                    stop(process)
    report(results, args)
    return 0


def report(results, args) -> None:
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.clients} clients, {args.seconds:.0f} s x "
          f"{args.rounds} rounds per setting; {os.cpu_count()} CPUs; load average {load_avg}")
    print(f"{'workers':>7} {'intra-op':>8} {'threads':>7} {'req/s (median)':>15} {'rounds':>12} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for (workers, intra, threads), rounds in results.items():
        median = statistics.median(r["throughput"] for r in rounds)
        each = "/".join(f"{r['throughput']:.0f}" for r in rounds)
        p50 = statistics.median(r["p50"] for r in rounds)
        p99 = statistics.median(r["p99"] for r in rounds)
        print(f"{workers:>7} {intra:>8} {threads:>7} {median:>15.1f} {each:>12} {p50:>7.1f} {p99:>7.1f} {sum(r['errors'] for r in rounds):>6}")


if __name__ == "__main__":
    raise SystemExit(main())
