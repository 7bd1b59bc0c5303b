"""Reduced copies: the accuracy gate's figures (INT8 on ONNX Runtime and OpenVINO, bfloat16 on OpenVINO), then
batch-1 speed, FP32 against INT8, on both runtimes.

For each model, runtime and precision, registration's own step (recognizer.optimized.optimize_artifact)
compiles the copy, quantizes it on the parity photos (INT8), fits its verdict thresholds on them and scores the
gate on the golden photos on that runtime; the record it writes is printed, with the shares of verdicts the copy
keeps at FP32's thresholds and at its own. Then the FP32 and the INT8 (QDQ) ONNX files run batch 1 at 1 and 2
intra-op threads, on ONNX Runtime and on OpenVINO (which reads the same ONNX files), in interleaved blocks of 5
warm runs, median of N runs.
ResNet50 has random weights here (speed only: its gate figures say nothing about accuracy).
With --dev DIR, the default model's gates are also scored on the photos below DIR (optional; nothing needs them).

    .venv/bin/python bench/int8_bench.py [--models default,resnet50] [--runs 40] [--dev DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.perf import DEFAULT_WORK, ensure_artifacts  # noqa: E402
from recognizer import matched_thresholds, optimized, quantization, runtimes  # noqa: E402
from recognizer import reduced_copies  # noqa: E402
from recognizer.photos import photo_paths  # noqa: E402

INT8 = "onnxruntime-int8"
GATED = (("onnxruntime", "int8"), ("openvino", "int8"), ("openvino", "bf16"))
BLOCK = 5


def gated(h5: Path, kind: str, precision: str) -> dict:
    """The `precision` record of `h5` on `kind`, made by registration's own step unless a current one exists."""
    record_path = optimized.parity_record_path(h5, f"{kind}-{precision}")
    current = record_path.is_file() and "thresholds" in json.loads(record_path.read_text())
    if optimized.unavailable_reason(h5, kind) or not current:
        from recognizer.engine import Engine

        optimized.optimize_artifact(Engine.from_path(h5), kind, precision=precision)
    return json.loads(record_path.read_text())


def speeds(h5: Path, runs: int) -> list[list]:
    """Batch-1 median ms per (runtime, precision, threads), in interleaved blocks so that load changes hit all alike."""
    from recognizer.manifest import manifest_path, read_manifest
    from recognizer.preprocessing import load_batch

    fp32, int8 = optimized.compiled_path(h5, "onnxruntime"), optimized.compiled_path(h5, INT8)
    if not fp32.is_file():  # the OpenVINO step quantizes from an ONNX export it does not keep
        from recognizer.artifacts import load_artifact

        optimized.compile_optimized(load_artifact(h5), "onnxruntime")
    batch = load_batch(photo_paths("golden")[0], read_manifest(manifest_path(h5)).input)
    rows = []
    for threads in (1, 2):
        found = {(kind, name): runtimes.open_runner(path, kind, threads, reduced=name == "int8")
                 for kind in ("onnxruntime", "openvino") for name, path in (("fp32", fp32), ("int8", int8))}
        times = {key: [] for key in found}
        # Blocks of BLOCK timed runs after an untimed one, taken in turn: a worker runs one model over and over, and
        # a runtime's first call after another runtime ran is slower (OpenVINO's INT8 ResNet50: 12.9 against 8.3 ms).
        for _ in range(max(1, runs // BLOCK)):
            for key, run in found.items():
                run(batch)
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    run(batch)
                    times[key].append(time.perf_counter() - started)
        rows += [[kind, name, threads, 1000 * statistics.median(t)] for (kind, name), t in times.items()]
    return rows


def dev_agreement(h5: Path, folder: Path, kind: str) -> quantization.GateReport:
    """The gate scored on every photo below `folder` (the development sets), FP32 against the reduced `kind` copy,
    which decides at the thresholds its gate fitted on the calibration photos."""
    fp32 = optimized.compiled_engine_from_path(h5, optimized.base_kind(kind), threads=2)
    copy = optimized.compiled_engine_from_path(h5, kind, threads=2)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    batches = [np.concatenate([fp32.prepare(f) for f in files[i : i + 16]]) for i in range(0, len(files), 16)]
    wanted, got = [fp32.outputs(b) for b in batches], [copy.outputs(b) for b in batches]
    gate = quantization.check_gate(wanted, got, reduced_copies.verdict_domains(fp32))
    return replace(gate, **matched_thresholds.kept_figures(fp32.judge, copy.judge.thresholds, wanted, got))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,resnet50")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--dev", type=Path, help="a folder of development photos to score the gate on as well")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    paths = ensure_artifacts(args.work)
    print(f"INT8 gate (floors: top-1 {quantization.MIN_TOP1_AGREEMENT}, shared top-5 {quantization.MIN_TOP5_SHARED}, "
          f"domain {quantization.MIN_DOMAIN_AGREEMENT}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for model in args.models.split(","):
        for kind, precision in GATED:
            record = gated(paths[model], kind, precision)
            gate = record["gate"] or {}
            figures = quantization.describe(quantization.GateReport(**gate)) if gate else record["reason"]
            print(f"{model:<9} {kind + '-' + precision:<17} {'passed' if record['passed'] else 'refused'}: {figures}")
            if args.dev and model == "default" and gate:
                dev = dev_agreement(paths[model], args.dev, f"{kind}-{precision}")
                print(f"{'':<27} {quantization.describe(dev, f'photos under {args.dev}')}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nbatch 1, median of {args.runs} runs; load average {load} (at the start of the timing)")
    print(f"{'model':<9} {'runtime':<12} {'threads':>7} {'fp32 ms':>8} {'int8 ms':>8} {'speed-up':>8}")
    for model in args.models.split(","):
        rows = {(k, n, t): ms for k, n, t, ms in speeds(paths[model], args.runs)}
        for kind in ("onnxruntime", "openvino"):
            for threads in (1, 2):
                a, b = rows[(kind, "fp32", threads)], rows[(kind, "int8", threads)]
                print(f"{model:<9} {kind:<12} {threads:>7} {a:>8.2f} {b:>8.2f} {a / b:>7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
