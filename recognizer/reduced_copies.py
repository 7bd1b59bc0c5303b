"""Reduced-precision copies at registration: INT8 (quantized from the ONNX copy) and OpenVINO's copy computed in
bfloat16, each scored by the accuracy gate against the passed FP32 copy and given verdict thresholds of its own.

`recognizer.optimized.optimize_artifact` calls these after the FP32 copy passed parity; the gate record
they write beside the artifact is what `optimized.unavailable_reason` reads before a copy may serve.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer import matched_thresholds, photos, quantization, runtimes
from recognizer.artifacts import Artifact
from recognizer.engine import Engine
from recognizer.optimized import ENGINE_ENV, Optimization, compile_optimized, compiled_engine, compiled_path, write_record


def try_reduced(done: Optimization, artifact: Artifact, calibration: Sequence, precision: str) -> Optimization:
    """The reduced copy `precision` asks for. auto: INT8, and when its gate refuses it on OpenVINO, on a CPU that
    computes bfloat16, the copy computed in bfloat16 (slower than INT8, nearer FP32); the note keeps both outcomes."""
    if precision == "bf16":
        return try_bf16(done, artifact, calibration)
    int8 = try_int8(done, artifact, calibration)
    bf16_possible = done.kind == "openvino" and runtimes.openvino_float_precision(reduced=True) == "bf16"
    if precision != "auto" or not int8.reduced_reason or not bf16_possible:
        return int8
    bf16 = try_bf16(done, artifact, calibration)
    return replace(bf16, reduced_reason=f"{int8.reduced_reason} {bf16.reduced_reason}".strip())


def try_bf16(done: Optimization, artifact: Artifact, calibration: Sequence) -> Optimization:
    """Serve the passed FP32 OpenVINO copy computed in bfloat16 only when the CPU has it and the gate passes."""
    if done.kind != "openvino":
        return replace(done, reduced_reason=f"bfloat16 copies run on OpenVINO only ({ENGINE_ENV}=openvino), not {done.kind}.")
    bf16_kind = f"{done.kind}-bf16"
    if runtimes.openvino_float_precision(reduced=True) != "bf16":
        reason = "this CPU computes no bfloat16 (it needs AVX512-BF16 or AMX)."
        write_record(artifact, bf16_kind, done.compiled, None, reason)
        return replace(done, reduced_reason=reason)
    return _gated(done, artifact, bf16_kind, done.compiled, "bfloat16", calibration)


def try_int8(done: Optimization, artifact: Artifact, calibration: Sequence) -> Optimization:
    """Quantize the passed FP32 copy and keep it only when the gate passes; the record says either way."""
    int8_kind = f"{done.kind}-int8"
    target = compiled_path(artifact.path, int8_kind)
    quantize = lambda pictures: _quantize(done, artifact, target, pictures)  # noqa: E731
    return _gated(done, artifact, int8_kind, target, "INT8", calibration, make=quantize)


def _gated(done: Optimization, artifact: Artifact, kind: str, target: Path, name: str, calibration: Sequence,
           make=None) -> Optimization:
    """Score the reduced `kind` copy at `target` (first built by `make(calibration batches)`, when given) against the
    passed FP32 copy on the golden photos and fit its verdict thresholds on the calibration photos; it serves only
    when the gate passed, and its record (thresholds included) says either way."""
    gate = thresholds = None
    try:
        fp32 = compiled_engine(artifact, done.compiled, done.kind)
        pictures = [fp32.prepare(p) for p in quantization.calibration_pictures(calibration)]
        if make is not None:
            make(pictures)
        reduced = compiled_engine(artifact, target, kind)
        golden = _golden_batches(fp32)
        wanted, got = _outputs(fp32, golden), _outputs(reduced, golden)  # one forward pass each, for every figure
        gate = quantization.check_gate(wanted, got, verdict_domains(fp32))
        calibrated = _batched(pictures)
        thresholds = matched_thresholds.fitted_thresholds(
            fp32.judge, _outputs(fp32, calibrated), _outputs(reduced, calibrated))
        gate = replace(gate, **matched_thresholds.kept_figures(fp32.judge, thresholds, wanted, got))
        reason = "" if gate.passed else f"{name} refused by its accuracy gate ({quantization.describe(gate)}): {gate.reason}."
    except Exception as exc:  # a quantizer or runtime failure only costs the reduced copy
        reason = f"{'Quantizing or gating' if make else 'Gating'} the {name} copy failed: {type(exc).__name__}: {exc}"
    write_record(artifact, kind, target if target.is_file() else None, gate.to_dict() if gate else None, reason,
                  thresholds=asdict(thresholds) if thresholds else None)
    return replace(done, engine=done.kind if reason else kind, gate=gate, reduced_reason=reason)


def _outputs(engine: Engine, batches: list[np.ndarray]) -> list:
    return [engine.outputs(b) for b in batches]


def _quantize(done: Optimization, artifact: Artifact, target: Path, batches: list[np.ndarray]) -> None:
    """Quantize the ONNX copy into `target`; for OpenVINO, from an ONNX export of its own that nothing serves."""
    if done.kind == "onnxruntime":
        quantization.quantize_onnx(done.compiled, target, batches)
        return
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".int8-") as scratch:
        quantization.quantize_onnx(compile_optimized(artifact, "onnxruntime", Path(scratch)), target, batches)


def _golden_batches(engine: Engine) -> list[np.ndarray]:
    """The repository's evaluation photos (never the calibration ones) as batches of `engine`'s input."""
    return _batched([engine.prepare(p) for p in photos.photo_paths("golden")])


def _batched(rows: list[np.ndarray], size: int = 16) -> list[np.ndarray]:
    return [np.concatenate(rows[i : i + size]) for i in range(0, len(rows), size)]


def verdict_domains(engine: Engine):
    """Engine outputs (probabilities, feature map) -> each image's domain as the engine's verdict decides it."""
    from recognizer.feature_maps import pooled
    from recognizer.manifest import DOMAINS

    def domains(outputs) -> list[str]:
        probabilities, feature_map = outputs
        chosen = engine.judge.domains(probabilities, None if feature_map is None else pooled(feature_map))
        return [DOMAINS[i] for i in chosen.argmax(axis=1)]

    return domains
