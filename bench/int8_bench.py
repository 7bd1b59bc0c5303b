"""Reduced copies: the accuracy gate's figures (INT8 on ONNX Runtime and OpenVINO, bfloat16 on OpenVINO), then
batch-1 speed, FP32 against INT8 and bfloat16, on both runtimes, and the latency targets as ratios of FP32.

For each model, runtime and precision, registration's own step (recognizer.optimized.optimize_artifact)
compiles the copy, quantizes it on the parity photos (INT8), fits its verdict thresholds on them and scores the
gate on the golden photos on that runtime; the record it writes is printed, with the shares of verdicts the copy
keeps at FP32's thresholds and at its own. Then the FP32 and the INT8 (QDQ) ONNX files run batch 1 at 1 and 2
intra-op threads, on ONNX Runtime and on OpenVINO (which reads the same ONNX files, and also runs the FP32 one
computed in bfloat16), in interleaved blocks of 5 warm runs, median of N runs. Last, each reduced copy against the
issue's latency targets (3 ms for the default model at 1 thread when FP32 took 5.3 ms; 10 ms for ResNet50 at 2
threads when FP32 took 17.9 ms), as ratios of FP32 timed in the same run, with whether its gate lets it serve.
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


# What each copy is timed as: (runtime, precision) -> (compiled file, reduced); OpenVINO reads the ONNX files too.
COPIES = (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8"), ("openvino", "bf16"))
# The latency targets, set against FP32 on ONNX Runtime measured then: (threads, target ms, FP32 ms then).
# This machine's speed changes by 2-5x from hour to hour, so they are judged as ratios of FP32 timed in the same run.
TARGETS = {"default": (1, 3.0, 5.3), "resnet50": (2, 10.0, 17.9)}


def speeds(h5: Path, runs: int) -> dict:
    """Batch-1 median ms per (runtime, precision, threads), in interleaved blocks so that load changes hit all alike."""
    from recognizer.manifest import manifest_path, read_manifest
    from recognizer.preprocessing import load_batch

    fp32, int8 = optimized.compiled_path(h5, "onnxruntime"), optimized.compiled_path(h5, INT8)
    if not fp32.is_file():  # the OpenVINO step quantizes from an ONNX export it does not keep
        from recognizer.artifacts import load_artifact

        optimized.compile_optimized(load_artifact(h5), "onnxruntime")
    batch = load_batch(photo_paths("golden")[0], read_manifest(manifest_path(h5)).input)
    bf16 = runtimes.openvino_float_precision(reduced=True) == "bf16"  # elsewhere it would time f32 under its name
    timed = {}
    for threads in (1, 2):
        found = {(kind, name): runtimes.open_runner(int8 if name == "int8" else fp32, kind, threads, reduced=name != "fp32")
                 for kind, name in COPIES if name != "bf16" or bf16}
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
        timed.update({(kind, name, threads): 1000 * statistics.median(t) for (kind, name), t in times.items()})
    return timed


def speed_rows(model: str, timed: dict) -> list[str]:
    rows = []
    for kind in ("onnxruntime", "openvino"):
        for threads in (1, 2):
            fp32 = timed[(kind, "fp32", threads)]
            cells = [f"{timed[(kind, p, threads)]:>8.2f} {fp32 / timed[(kind, p, threads)]:>7.2f}x"
                     if (kind, p, threads) in timed else f"{'-':>8} {'-':>8}" for p in ("int8", "bf16")]
            rows.append(f"{model:<9} {kind:<12} {threads:>7} {fp32:>8.2f} {' '.join(cells)}")
    return rows


def target_lines(model: str, timed: dict, passed: dict) -> list[str]:
    """Each reduced copy against the model's latency target, in ms and as a ratio of ONNX Runtime FP32 in this run."""
    if model not in TARGETS:
        return []
    threads, target_ms, fp32_then = TARGETS[model]
    fp32 = timed[("onnxruntime", "fp32", threads)]
    limit = target_ms / fp32_then
    lines = [f"{model} at {threads} thread(s): at most {target_ms:g} ms, set when FP32 took {fp32_then:g} ms, so at most "
             f"{limit:.2f}x of FP32 (here {fp32:.2f} ms)"]
    for kind, name in COPIES:
        if name == "fp32" or (kind, name, threads) not in timed:
            continue
        ms = timed[(kind, name, threads)]
        gate = passed.get(f"{kind}-{name}")
        said = "gate not run" if gate is None else "gate passed" if gate else "gate refused: not served"
        lines.append(f"  {kind + '-' + name:<17} {ms:>6.2f} ms ({'within' if ms <= target_ms else 'above'} {target_ms:g} ms), "
                     f"{ms / fp32:.2f}x of FP32 ({'within' if ms / fp32 <= limit else 'above'} {limit:.2f}x); {said}")
    return lines


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
    passed = {}
    for model in args.models.split(","):
        for kind, precision in GATED:
            record = gated(paths[model], kind, precision)
            passed[(model, f"{kind}-{precision}")] = record["passed"]
            gate = record["gate"] or {}
            figures = quantization.describe(quantization.GateReport(**gate)) if gate else record["reason"]
            print(f"{model:<9} {kind + '-' + precision:<17} {'passed' if record['passed'] else 'refused'}: {figures}")
            if args.dev and model == "default" and gate:
                dev = dev_agreement(paths[model], args.dev, f"{kind}-{precision}")
                print(f"{'':<27} {quantization.describe(dev, f'photos under {args.dev}')}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nbatch 1, median of {args.runs} runs; load average {load} (at the start of the timing)")
    print(f"{'model':<9} {'runtime':<12} {'threads':>7} {'fp32 ms':>8} {'int8 ms':>8} {'speed-up':>8} {'bf16 ms':>8} {'speed-up':>8}")
    targets = []
    for model in args.models.split(","):
        timed = speeds(paths[model], args.runs)
        print("\n".join(speed_rows(model, timed)))
        targets += target_lines(model, timed, {k: v for (m, k), v in passed.items() if m == model})
    print("\nlatency targets, in ms and as ratios of ONNX Runtime FP32 timed in this run:")
    print("\n".join(targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
