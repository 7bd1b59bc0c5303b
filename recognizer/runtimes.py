"""The CPU runtimes an artifact can be compiled for: export a Keras model to each, and run what was exported.

Exporting needs TensorFlow (the Keras model is traced); running does not, so a
worker serving a compiled model never imports TensorFlow.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from recognizer import errors

# float32 (N, H, W, 3) -> (N, classes), or (probabilities, (N, h, w, C) feature map) when exported with it
Runner = Callable[[np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]

SUFFIXES = {"onnxruntime": ".onnx", "openvino": ".openvino.xml"}
PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
ONNX_OPSET = 17


def check_kind(kind: str) -> str:
    if kind not in SUFFIXES:
        raise ValueError(f"Unknown compiled engine {kind!r}; choose one of {', '.join(SUFFIXES)}.")
    return kind


def compiled_files(xml_or_onnx: Path) -> list[Path]:
    """Every file a compiled model consists of (OpenVINO keeps its weights in a .bin beside the .xml)."""
    if xml_or_onnx.suffix == ".xml":
        return [xml_or_onnx, xml_or_onnx.with_suffix(".bin")]
    return [xml_or_onnx]


def runtime_version(kind: str) -> str | None:
    """'<package> <version>' of the runtime that runs `kind`; None when it is not installed."""
    package = PACKAGES[check_kind(kind)]
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return None


def export(model, kind: str, target: Path) -> None:
    """Write `model` to `target` for `kind`, atomically: a reader never sees half a file."""
    from recognizer.feature_maps import feature_map_model

    check_kind(kind)
    model = feature_map_model(model)  # the heat map and the domain head read the feature map: export it too
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".compiling-") as scratch:
        staged = Path(scratch) / target.name
        (_export_onnx if kind == "onnxruntime" else _export_openvino)(model, staged)
        # The .xml last: it is the file whose presence says "compiled".
        for src, dst in reversed(list(zip(compiled_files(staged), compiled_files(target)))):
            os.replace(src, dst)


def _export_onnx(model, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # its per-pass optimizer report is noise here

    shape = (None, *model.inputs[0].shape[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET, output_path=str(path))


def _export_openvino(model, path: Path) -> None:
    import openvino as ov

    with warnings.catch_warnings():
        # The converter passes the one input as a tuple; Keras warns, and the traced graph is the same.
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match", category=UserWarning)
        converted = ov.convert_model(model)
    converted.reshape({converted.inputs[0]: [-1, *model.inputs[0].shape[1:]]})
    # save_model stores float16 weights unless told otherwise; that alone moves probabilities by ~1e-3.
    ov.save_model(converted, str(path), compress_to_fp16=False)


def open_runner(path: Path, kind: str, threads: int, *, reduced: bool = False) -> Runner:
    """Load a compiled model for inference on `threads` intra-op threads. Not thread-safe: callers serialize.

    `reduced`: an INT8 or bfloat16 copy, which its accuracy gate judges as it runs here (see openvino_config).
    """
    check_kind(kind)
    if not path.is_file():
        raise errors.ArtifactError(f"No compiled model at {path}.")
    return _onnx_runner(path, threads) if kind == "onnxruntime" else _openvino_runner(path, threads, reduced)


def _onnx_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would otherwise spin on the core the other gunicorn worker needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    if len(session.get_outputs()) > 1:
        return lambda batch: _probabilities_first(session.run(None, {name: batch}))
    return lambda batch: session.run(None, {name: batch})[0]


def probabilities_of(output) -> np.ndarray:
    """The probabilities of a runner's output, whether or not it also gives the feature map."""
    return output[0] if isinstance(output, tuple) else output


def _probabilities_first(outputs) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, feature map) whatever order a converter put them in: the 2-D one is the probabilities."""
    arrays = sorted(outputs, key=lambda a: a.ndim)
    return arrays[0], arrays[-1]


def openvino_config(threads: int, *, reduced: bool, capabilities: Sequence[str]) -> dict:
    """OpenVINO's CPU settings for a copy: FP32 copies compute in f32 (bfloat16 is ~5e-3 away from Keras, outside
    parity). A reduced copy (INT8, or the bfloat16 kind) computes its floating-point layers in bfloat16 where the
    CPU has it (AVX512-BF16, AMX): ResNet50's INT8 copy took 6.8 ms instead of 10.7 at 2 threads, the default
    model's FP32 copy 4.5 instead of 10.8 at 1 thread (2026-11-30); the accuracy gate scores each copy exactly
    as it runs, bfloat16 included."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "bf16" if reduced and "BF16" in capabilities else "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        # Pinned threads of two workers can land on the same core.
        "ENABLE_CPU_PINNING": False,
    }


def openvino_float_precision(*, reduced: bool) -> str:
    """The floating-point precision OpenVINO computes a copy in on this machine's CPU (see openvino_config)."""
    return openvino_config(1, reduced=reduced, capabilities=_cpu_capabilities())["INFERENCE_PRECISION_HINT"]


@functools.lru_cache(maxsize=1)
def _cpu_capabilities() -> tuple[str, ...]:
    import openvino as ov

    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _openvino_runner(path: Path, threads: int, reduced: bool) -> Runner:
    import openvino as ov

    config = openvino_config(threads, reduced=reduced, capabilities=_cpu_capabilities())
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    if len(compiled.outputs) > 1:
        return lambda batch: _probabilities_first(list(request.infer({0: batch}).values()))
    return lambda batch: request.infer({0: batch})[0]

