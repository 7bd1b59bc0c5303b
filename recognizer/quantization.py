"""INT8 copies of compiled ONNX models, served only when an accuracy gate says they answer like FP32.

Static post-training quantization (ONNX Runtime's QDQ quantizer, per-channel
INT8 weights, UINT8 activations calibrated with MinMax on the repository's
calibration photos, each also seen as a few scene versions: cut-outs on
white alone give activation ranges narrower than real uploads reach). The
classifier head and the softmax stay in FP32: they are cheap, and
quantizing them moves the probabilities the gate compares. So do the first
two convolutions, nearest the photo's normalized pixels (on EfficientNet-Lite0,
the stem and the first depthwise layer). Quantizing them changed the verdict's domain of 1 golden photo in 49 and 1
development photo in 273 and FP32's top-1 class on 7.3% of the development
photos; kept in FP32, no domain and 3.3% of top-1 classes, for about 2% of the
INT8 copy's time (measured 2026-12-01 with the development sets). The gate is
scored on other photos than the calibration ones, and compares the verdict's
domain, not only the classes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from recognizer import runtimes

PRECISION_ENV = "RECOGNIZER_PRECISION"
PRECISIONS = ("fp32", "int8", "bf16", "auto")
DEFAULT_PRECISION = "fp32"
# The copy is served only when, on the evaluation photos, it keeps FP32's answers this well.
MIN_TOP1_AGREEMENT = 0.97
MIN_TOP5_SHARED = 4.0
MIN_DOMAIN_AGREEMENT = 0.98
KEPT_IN_FP32 = ("Gemm", "MatMul", "Softmax")
LEADING_CONVS_IN_FP32 = 2  # all but the last convolution of a model that has fewer
CALIBRATION_SCENES = 5  # scene versions per calibration photo (recognizer.scenes), besides the photo itself


def precision() -> str:
    """RECOGNIZER_PRECISION: fp32 (never reduced), int8 (INT8 when it passes its gate, warn when not), bf16 (OpenVINO's
    copy computed in bfloat16 when the CPU has it and it passes the same gate, warn when not) or auto (INT8, and on
    OpenVINO bfloat16 when INT8 is refused, quietly)."""
    return check_precision(os.environ.get(PRECISION_ENV, DEFAULT_PRECISION))


def check_precision(value: str) -> str:
    """`value`, normalized, when it names a precision; ValueError otherwise."""
    value = value.strip().lower()
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}={value!r} is not a precision; choose one of {', '.join(PRECISIONS)}.")
    return value


def int8_path(onnx_path: str | Path) -> Path:
    """Where the INT8 copy of an FP32 ONNX model lives: beside it, `<stem>.int8.onnx`."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.int8.onnx")


def calibration_pictures(images: Sequence) -> list:
    """The calibration photos (paths or PIL images) and CALIBRATION_SCENES seeded scene versions of each."""
    from recognizer.preprocessing import open_image
    from recognizer.scenes import in_scene

    pictures = []
    for n, image in enumerate(images):
        picture = open_image(image) if not hasattr(image, "convert") else image
        pictures += [picture] + [in_scene(picture, np.random.default_rng([n, k])) for k in range(CALIBRATION_SCENES)]
    return pictures


def quantize_onnx(fp32: Path, target: Path, calibration: Iterable[np.ndarray]) -> Path:
    """Write a QDQ INT8 copy of `fp32` to `target`, calibrated on (1, H, W, 3) batches; atomic like every export."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    if not batches:
        raise ValueError("INT8 calibration needs at least one photo.")
    input_name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantizing-") as scratch:
        prepared, staged = Path(scratch) / "prepared.onnx", Path(scratch) / target.name
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph  # in topological order, so its first convolutions read the input
        convs = [n.name for n in graph.node if n.op_type == "Conv"]
        kept = [n.name for n in graph.node if n.op_type in KEPT_IN_FP32] + convs[: min(LEADING_CONVS_IN_FP32, len(convs) - 1)]
        quantize_static(
            str(prepared), str(staged), _Reader(input_name, batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=kept,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        os.replace(staged, target)
    return target


class _Reader:
    """ONNX Runtime's calibration data reader over prepared batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self._feeds = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self):  # some calibrators read the data twice
        pass


@dataclass(frozen=True)
class GateReport:
    """How closely the INT8 or bfloat16 copy keeps FP32's answers on the evaluation photos."""

    passed: bool
    images: int
    top1_agreement: float
    top5_shared: float
    domain_agreement: float
    reason: str = ""
    # Shares of verdicts (domain, status, label) kept: deciding at FP32's thresholds, and at the copy's own
    # (recognizer.matched_thresholds); reported, not gated: the domain floor above bounds how far they move.
    verdicts_kept: float | None = None
    verdicts_kept_fitted: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def check_gate(
    fp32: Sequence[object], reduced: Sequence[object], domains_of: Callable[[object], Sequence[str]]
) -> GateReport:
    """Score the reduced copy against FP32 on the same batches: top-1 agreement, shared top-5 classes, unchanged domain.

    `fp32` and `reduced` hold each batch's output, as a compiled model gives it (the probabilities, or the
    probabilities and the feature map); `domains_of` turns one output into the domain of each image, as the
    verdict decides it.
    """
    if not fp32:
        return GateReport(False, 0, 0.0, 0.0, 0.0, "No evaluation photos to score the INT8 copy on.")
    top1 = shared = domains = n = 0
    top_k = 5
    for outputs in zip(fp32, reduced):
        wanted, gotten = (np.asarray(runtimes.probabilities_of(out)) for out in outputs)
        top_k = min(5, wanted.shape[-1])  # a model of 3 classes shares at most 3
        for want, got in zip(wanted, gotten):
            top1 += int(want.argmax() == got.argmax())
            shared += len(set(np.argsort(-want)[:5].tolist()) & set(np.argsort(-got)[:5].tolist()))
        domains += sum(a == b for a, b in zip(*(domains_of(out) for out in outputs)))
        n += len(wanted)
    report = (top1 / n, shared / n, domains / n)
    problems = [
        f"{name} {value:.4f} is below {floor}"
        for name, value, floor in zip(
            ("top-1 agreement", "shared top-5 classes", "domain agreement"),
            report,
            (MIN_TOP1_AGREEMENT, MIN_TOP5_SHARED * top_k / 5, MIN_DOMAIN_AGREEMENT),
        )
        if value < floor
    ]
    return GateReport(not problems, n, *report, reason="; ".join(problems))


def describe(report: GateReport | None, photos: str = "golden photos") -> str:
    """The gate's figures in one line, for version notes and logs."""
    if report is None:
        return "not scored"
    kept = "" if report.verdicts_kept is None else (
        f"; verdicts kept {report.verdicts_kept:.4f} at FP32's thresholds, {report.verdicts_kept_fitted:.4f} at its own"
    )
    return (
        f"{report.images} {photos}: top-1 agreement {report.top1_agreement:.4f}, "
        f"shared top-5 {report.top5_shared:.2f}, domain agreement {report.domain_agreement:.4f}{kept}"
    )
