"""Serving a compiled copy of an artifact (ONNX Runtime or OpenVINO) in place of Keras, only when it answers alike.

Registration calls `optimize_artifact`: it compiles the artifact beside itself
(`<stem>.onnx`, `<stem>.openvino.xml/.bin`), compares the copy with Keras on
real photos and writes the outcome to `<stem>.<kind>.parity.json`. Workers
call `load_engine`, which serves the copy only when that record passed for
exactly these files and this runtime version, and the Keras Engine otherwise.
All of these files are generated, like the H5s beside them. An optimized
engine is the one Engine class with a compiled forward function, its `kind`
naming the runtime that runs it. With RECOGNIZER_PRECISION int8 or auto, a
copy that passed parity is also quantized (`<stem>.int8.onnx`, which both
runtimes read: kinds `onnxruntime-int8`, `openvino-int8`) and served only
when its accuracy gate passed on that runtime
(`<stem>.<kind>-int8.parity.json`); otherwise the FP32 copy serves. With
bf16, OpenVINO's copy computed in bfloat16 (kind `openvino-bf16`, the same
files) is gated and served the same way, on CPUs that have bfloat16. Those
steps live in `recognizer.reduced_copies`; a reduced copy decides its verdicts
at thresholds of its own, fitted by its gate (`recognizer.matched_thresholds`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from recognizer import errors, photos, quantization, runtimes
from recognizer.artifacts import Artifact, verify_sha256
from recognizer.engine import BF16_KINDS, INT8_KINDS, KINDS, REDUCED_KINDS, Engine
from recognizer.manifest import file_sha256, manifest_path, read_manifest
from recognizer.preprocessing import Source
from recognizer.verdict import Thresholds

log = logging.getLogger(__name__)

ENGINE_ENV = "RECOGNIZER_ENGINE"
THREADS_ENV = "RECOGNIZER_INTRA_THREADS"
PHOTOS_ENV = "RECOGNIZER_PARITY_PHOTOS"
DEFAULT_KIND = "onnxruntime"  # bench/perf.py: fastest at batch 1 on the default model, converts reliably
PARITY_TOP_K = 5
PARITY_TOLERANCE = 1e-3
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
# What a compiled copy holds, written in its parity record: 2 = the probabilities and the last feature map
# (the domain head and the heat map read it). A copy from an older release is recompiled, never served as is.
COMPILED_FORMAT = 2


def engine_kind() -> str:
    """The engine to serve with: RECOGNIZER_ENGINE (keras | openvino | onnxruntime), else DEFAULT_KIND."""
    kind = os.environ.get(ENGINE_ENV, DEFAULT_KIND).strip().lower()
    if kind not in KINDS:
        raise ValueError(f"{ENGINE_ENV}={kind!r} is not an engine; choose one of {', '.join(KINDS)}.")
    return kind


def intra_threads() -> int:
    """Intra-op threads per process: RECOGNIZER_INTRA_THREADS (gunicorn.conf.py sets cores / workers), else all cores."""
    raw = os.environ.get(THREADS_ENV, str(len(os.sched_getaffinity(0))))
    threads = int(raw) if raw.strip().isdigit() else 0
    if threads < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number of at least 1, not {raw!r}.")
    return threads


def base_kind(kind: str) -> str:
    """The runtime that runs a kind: 'onnxruntime' for 'onnxruntime-int8', the kind itself otherwise."""
    return REDUCED_KINDS.get(kind, kind)


def precision_of(kind: str) -> str:
    """The precision a kind serves in: 'int8' for 'onnxruntime-int8', 'bf16' for 'openvino-bf16', else 'fp32'."""
    return "int8" if kind in INT8_KINDS else "bf16" if kind in BF16_KINDS else "fp32"


def compiled_path(artifact_path: str | Path, kind: str, out_dir: Path | None = None) -> Path:
    """Where the `kind` copy of an artifact lives: beside it (or in out_dir), named after its stem."""
    artifact_path = Path(artifact_path)
    if kind in INT8_KINDS:  # one QDQ ONNX file, quantized from the ONNX copy, that either runtime runs
        return quantization.int8_path(compiled_path(artifact_path, "onnxruntime", out_dir))
    if kind in BF16_KINDS:  # the FP32 copy's files, computed in bfloat16
        return compiled_path(artifact_path, BF16_KINDS[kind], out_dir)
    return Path(out_dir or artifact_path.parent) / f"{artifact_path.stem}{runtimes.SUFFIXES[runtimes.check_kind(kind)]}"


def parity_record_path(artifact_path: str | Path, kind: str) -> Path:
    """The JSON record of the last parity check (or INT8 gate) of the `kind` copy."""
    artifact_path = Path(artifact_path)
    runtimes.check_kind(base_kind(kind))
    return artifact_path.with_name(f"{artifact_path.stem}.{kind}.parity.json")


def compile_optimized(artifact: Artifact, kind: str, out_dir: Path | None = None) -> Path:
    """Export the loaded Keras model for `kind` beside the artifact (or into out_dir); returns the path."""
    if artifact.model is None:
        raise ValueError("compile_optimized needs an artifact loaded with its Keras model (load_artifact).")
    target = compiled_path(artifact.path, kind, out_dir)
    runtimes.export(artifact.model, kind, target)
    return target


def compiled_engine(artifact: Artifact, compiled: Path, kind: str, *, threads: int | None = None) -> Engine:
    """An Engine whose forward pass runs the compiled copy at `compiled`; TensorFlow is never imported."""
    run = runtimes.open_runner(Path(compiled), base_kind(kind), threads or intra_threads(), reduced=kind in REDUCED_KINDS)
    return Engine(artifact, run, kind)


def compiled_engine_from_path(h5_path: str | Path, kind: str | None = None, *, threads: int | None = None) -> Engine:
    """The compiled copy beside the artifact at `h5_path`, with its checked manifest; Keras is not loaded."""
    h5_path = Path(h5_path)
    kind = kind or engine_kind()
    manifest = read_manifest(manifest_path(h5_path))
    verify_sha256(h5_path, manifest.sha256, expected_by="its manifest")
    artifact = Artifact(model=None, manifest=manifest, path=h5_path)
    engine = compiled_engine(artifact, compiled_path(h5_path, kind), kind, threads=threads)
    if kind in REDUCED_KINDS:  # it decides at the thresholds its gate fitted to its own scores
        engine.judge = engine.judge.with_thresholds(fitted_thresholds_of(h5_path, kind))
    return engine


def fitted_thresholds_of(artifact_path: str | Path, kind: str) -> Thresholds:
    """The verdict thresholds the reduced `kind` copy's gate record holds."""
    path = parity_record_path(artifact_path, kind)
    try:
        return Thresholds(**json.loads(path.read_text(encoding="utf-8"))["thresholds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.RecognizerError(f"{path.name} holds no verdict thresholds ({exc}); compile the version again (manage.py recompile).") from None


@dataclass(frozen=True)
class ParityReport:
    """Whether a compiled engine answers like Keras: same top-5 order, probabilities within tolerance."""

    passed: bool
    max_abs_diff: float
    images: int
    reason: str = ""


def check_parity(
    keras_engine: Engine,
    optimized_engine: Engine,
    images: Sequence[Image.Image | Source],
    *,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Compare two engines on `images` (as one batch, and the first alone): identical top-5, max |diff| < tolerance."""
    if not images:
        return ParityReport(False, float("nan"), 0, "No images to compare the engines on.")
    expected = keras_engine.probabilities(np.concatenate([keras_engine.prepare(i) for i in images]))
    batch = np.concatenate([optimized_engine.prepare(i) for i in images])
    try:
        actual = optimized_engine.probabilities(batch)
        alone = optimized_engine.probabilities(batch[:1])  # a batch of one can take another kernel path
    except Exception as exc:  # runtimes raise their own exception types
        return ParityReport(False, float("nan"), len(images), f"The compiled model failed to run: {exc}")
    if actual.shape != expected.shape or alone.shape != expected[:1].shape:
        return ParityReport(False, float("nan"), len(images), f"Output shape {actual.shape}, Keras gives {expected.shape}.")
    diff = float(max(np.abs(actual - expected).max(), np.abs(alone - expected[:1]).max()))
    problems = [f"max abs probability difference {diff:.2e} is not below {tolerance:.0e}"] if not diff < tolerance else []
    k = min(PARITY_TOP_K, expected.shape[1])
    for n, (want, got) in enumerate(zip(expected, actual)):
        want_top, got_top = _top(want, k), _top(got, k)
        if want_top != got_top:
            problems.append(f"image {n}: top-{k} is {got_top}, Keras says {want_top}")
    return ParityReport(not problems, diff, len(images), "; ".join(problems[:3]))


def _top(row: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-row, kind="stable")[:k]]


def parity_images(root: Path | None = None) -> list[Path]:
    """The photos engines are compared on: those under root (or RECOGNIZER_PARITY_PHOTOS), else the repository's."""
    override = root or os.environ.get(PHOTOS_ENV)
    if override:
        folder = Path(override)
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        if found:
            return found
        log.warning("no photos (%s) under %s; comparing on the repository's parity photos", PHOTO_SUFFIXES, folder)
    restore = f"restore {photos.PHOTOS_DIR} from the repository"
    try:
        found = photos.photo_paths("parity")
    except OSError as exc:
        raise errors.RecognizerError(f"The parity photos cannot be read ({exc}); {restore}.") from None
    missing = [str(p) for p in found if not p.is_file()]
    if missing or not found:
        raise errors.RecognizerError(f"Parity photos are missing: {', '.join(missing) or 'none listed'}; {restore}.")
    return found


@dataclass(frozen=True)
class Optimization:
    """What registration records: the engine to serve with, why not a faster one, and the INT8 gate's figures."""

    engine: str
    kind: str
    compiled: Path | None
    parity: ParityReport | None
    reason: str = ""
    gate: quantization.GateReport | None = None
    reduced_reason: str = ""

    @property
    def note(self) -> str:
        """The version's engine note: why Keras serves, else how the reduced copy fared (when one was tried)."""
        if self.reason:
            return self.reason
        if self.engine in REDUCED_KINDS:
            name = "INT8" if self.engine in INT8_KINDS else "bfloat16"
            before = f" Tried before it: {self.reduced_reason}" if self.reduced_reason else ""  # auto: INT8's refusal
            return f"{name} passed its accuracy gate ({quantization.describe(self.gate)}).{before}"
        return f"Serving FP32: {self.reduced_reason}" if self.reduced_reason else ""


def optimize_artifact(
    keras_engine: Engine, kind: str | None = None, images: Sequence | None = None, *, precision: str | None = None,
    recompile: bool = False,
) -> Optimization:
    """Compile the engine's artifact for `kind`, check parity against it, record the outcome beside the artifact.

    A copy already beside the artifact that may serve it (unavailable_reason: same artifact, format, runtime and
    bytes, parity passed) is checked again rather than exported again, unless `recompile`: exporting is the
    slow step (about 13 s for the default model), and registering the same file twice gives the same copy.
    With precision int8 or auto (default: RECOGNIZER_PRECISION) a copy that passed is then
    quantized (from its ONNX export) on the same photos and gated on the repository's golden photos.
    """
    kind = base_kind(kind or engine_kind())
    precision = quantization.check_precision(precision) if precision else quantization.precision()
    if kind == "keras":
        return Optimization("keras", kind, None, None, f"{ENGINE_ENV} is keras.")
    artifact = keras_engine.artifact
    images = list(images) if images is not None else parity_images()
    compiled, report = None, None
    try:
        reusable = not recompile and not unavailable_reason(artifact.path, kind)
        compiled = compiled_path(artifact.path, kind) if reusable else compile_optimized(artifact, kind)
        report = check_parity(keras_engine, compiled_engine(artifact, compiled, kind), images)
        reason = "" if report.passed else f"Parity with Keras failed: {report.reason}"
    except Exception as exc:  # converters fail in many ways; serving falls back to Keras either way
        reason = f"Compiling or checking the {kind} model failed: {type(exc).__name__}: {exc}"
    write_record(artifact, kind, compiled, asdict(report) if report else None, reason)
    done = Optimization("keras" if reason else kind, kind, compiled, report, reason)
    if reason or precision == "fp32":
        return done
    from recognizer import reduced_copies  # its steps build on this module's

    done = reduced_copies.try_reduced(done, artifact, images, precision)
    if done.reduced_reason:  # auto: FP32 is an expected outcome; int8 and bf16 asked for theirs
        log.log(logging.INFO if precision == "auto" else logging.WARNING, "%s: %s", artifact.path.name, done.note)
    return done


def _compiled_sha256(compiled: Path) -> str:
    return ":".join(file_sha256(f) for f in runtimes.compiled_files(compiled))


def write_record(artifact: Artifact, kind: str, compiled: Path | None, report: dict | None, reason: str, *,
                  thresholds: dict | None = None) -> None:
    record = {
        "kind": kind,
        "passed": not reason,
        "reason": reason,
        "gate" if kind in REDUCED_KINDS else "parity": report,
        "artifact_sha256": artifact.manifest.sha256,
        "compiled_sha256": _compiled_sha256(compiled) if compiled and compiled.is_file() else "",
        "runtime": runtimes.runtime_version(base_kind(kind)),
        "format": COMPILED_FORMAT,
    }
    if kind in REDUCED_KINDS:  # the verdict thresholds fitted to this copy's scores (recognizer.matched_thresholds)
        record["thresholds"] = thresholds
    if kind in REDUCED_KINDS and base_kind(kind) == "openvino":  # what the gate judged: the float layers' precision
        record["float_precision"] = runtimes.openvino_float_precision(reduced=True)
    path = parity_record_path(artifact.path, kind)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staged, path)


def unavailable_reason(artifact_path: str | Path, kind: str) -> str:
    """Why the `kind` copy of this artifact must not be served, for people; '' when it may be."""
    if kind == "keras":
        return f"{ENGINE_ENV} is keras."
    compiled, record_path = compiled_path(artifact_path, kind), parity_record_path(artifact_path, kind)
    if not compiled.is_file():
        return f"No compiled {kind} model at {compiled.name}; compile the version again (manage.py recompile)."
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        sha256 = read_manifest(manifest_path(artifact_path)).sha256
    except (OSError, ValueError, errors.RecognizerError) as exc:
        return f"The {kind} model has no readable parity record ({exc})."
    installed = runtimes.runtime_version(base_kind(kind))
    if installed is None:
        return f"{runtimes.PACKAGES[base_kind(kind)]} is not installed; run pip install -r requirements.txt."
    if not record.get("passed"):
        return record.get("reason") or f"The {kind} model did not pass its parity check."
    if record.get("artifact_sha256") != sha256:
        return f"{compiled.name} was compiled from another version of the artifact."
    if record.get("format", 1) != COMPILED_FORMAT:
        return f"{compiled.name} was compiled by an older release, without the feature map the verdict and heat map read."
    if record.get("runtime") != installed:
        return f"{compiled.name} was checked with {record.get('runtime')}, but {installed} is installed."
    if record.get("compiled_sha256") != _compiled_sha256(compiled):
        return f"{compiled.name} changed after its parity check."
    if kind in REDUCED_KINDS and not record.get("thresholds"):
        return (f"The {kind} copy was gated without verdict thresholds fitted to its own scores; "
                "compile the version again (manage.py recompile) to fit them.")
    if kind in REDUCED_KINDS and base_kind(kind) == "openvino":
        judged, here = record.get("float_precision", "f32"), runtimes.openvino_float_precision(reduced=True)
        if judged != here:
            return (f"The {kind} copy passed its gate computing in {judged}, but this CPU computes it in {here}; "
                    "compile the version again on this machine (manage.py recompile) to gate it here.")
    return ""


def load_engine(artifact_path: str | Path, kind: str | None = None) -> Engine:
    """The compiled engine when its file exists and passed parity (or its INT8 gate) for this artifact.

    An INT8 copy that may not serve falls back to its FP32 copy, and that one to Keras.
    """
    kind = kind or engine_kind()
    reason = unavailable_reason(artifact_path, kind)
    if not reason:
        try:
            return compiled_engine_from_path(artifact_path, kind)
        except Exception as exc:  # a runtime that cannot load the file must not take the service down
            reason = f"The {kind} model did not load: {exc}"
    if kind in REDUCED_KINDS:
        log.warning("%s: serving FP32 %s. %s", Path(artifact_path).name, base_kind(kind), reason)
        return load_engine(artifact_path, base_kind(kind))
    if kind != "keras":
        log.warning("%s: serving with Keras. %s", Path(artifact_path).name, reason)
    return Engine.from_path(artifact_path)
