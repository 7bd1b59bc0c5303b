"""INT8 copies of compiled models: the quantizer writes a real QDQ model, and the gate scores it against FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognizer import quantization, runtimes
from recognizer.artifacts import load_artifact
from recognizer.preprocessing import open_image, to_batch
from tests.conftest import TINY_SPEC


@pytest.fixture(scope="module")
def fp32_onnx(tiny_artifact, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("int8") / "tiny.onnx"
    runtimes.export(load_artifact(tiny_artifact).model, "onnxruntime", target)
    return target


@pytest.fixture
def batches(photos) -> list[np.ndarray]:
    files = sorted(photos.rglob("*.jpg"))[:12]
    return [to_batch(open_image(f), TINY_SPEC) for f in files]


def _domain(outputs) -> list[str]:
    return [("animal", "bird", "plant", "other")[int(i)] for i in runtimes.probabilities_of(outputs).argmax(axis=1)]


def test_the_quantized_copy_is_a_qdq_model_that_keeps_the_head_in_fp32(fp32_onnx, batches):
    import onnx

    target = quantization.quantize_onnx(fp32_onnx, quantization.int8_path(fp32_onnx), batches[:6])
    nodes = onnx.load(str(target)).graph.node
    ops = [n.op_type for n in nodes]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    head = next(n for n in nodes if n.op_type in ("Gemm", "MatMul"))
    assert head.input[1] not in dequantized  # the classifier's weights stay FP32
    assert any(n.op_type == "Conv" and n.input[1] in dequantized for n in nodes)  # the convolutions do not
    assert target.name == "tiny.int8.onnx"


def test_the_int8_copy_runs_and_keeps_the_tiny_models_answers(fp32_onnx, batches):
    target = quantization.quantize_onnx(fp32_onnx, fp32_onnx.with_name("tiny.q.onnx"), batches[:6])
    fp32 = runtimes.open_runner(fp32_onnx, "onnxruntime", 1)
    int8 = runtimes.open_runner(target, "onnxruntime", 1)
    report = quantization.check_gate([fp32(b) for b in batches[6:]], [int8(b) for b in batches[6:]], _domain)
    assert report.images == len(batches[6:])
    assert report.top5_shared >= 3.0  # only 4 classes: every top-5 holds all of them
    probabilities = runtimes.probabilities_of(int8(batches[6]))  # a runner also gives the feature map
    assert probabilities.shape == (1, 4) and abs(float(probabilities.sum()) - 1) < 1e-3


def test_the_gate_passes_a_copy_that_answers_exactly_like_fp32(fp32_onnx, batches):
    fp32 = runtimes.open_runner(fp32_onnx, "onnxruntime", 1)
    outputs = [fp32(b) for b in batches]
    report = quantization.check_gate(outputs, outputs, _domain)
    assert report.passed and report.top1_agreement == 1.0 and report.domain_agreement == 1.0 and not report.reason


def test_the_gate_refuses_a_copy_whose_top_class_moves(fp32_onnx, batches):
    fp32 = runtimes.open_runner(fp32_onnx, "onnxruntime", 1)
    shifted = lambda batch: np.roll(runtimes.probabilities_of(fp32(batch)), 1, axis=1)  # every best class changes
    report = quantization.check_gate([fp32(b) for b in batches], [shifted(b) for b in batches], _domain)
    assert not report.passed
    assert report.top1_agreement == 0.0 and "top-1 agreement 0.0000 is below 0.97" in report.reason
    assert "domain agreement" in report.reason


def test_the_shared_top5_floor_scales_down_for_a_model_of_fewer_than_five_classes():
    # A 3-class model shares at most 3: its INT8 copy was refused whatever it did ("3.0000 is below 4.0").
    three = [np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]] * 5)]
    assert quantization.check_gate(three, three, _domain).passed
    ten = np.tile(np.linspace(1.0, 0.1, 10), (4, 1))
    moved = ten[:, [0, 9, 8, 7, 4, 5, 6, 3, 2, 1]]  # the same best class, 2 of the top 5 shared
    report = quantization.check_gate([ten], [moved], _domain)
    assert not report.passed and "shared top-5 classes 2.0000 is below 4.0" in report.reason


def test_the_gate_refuses_when_there_is_nothing_to_score():
    report = quantization.check_gate([], [], _domain)
    assert not report.passed and "No evaluation photos" in report.reason


def test_calibration_sees_each_photo_and_seeded_scene_versions_of_it(photos):
    files = sorted(photos.rglob("*.jpg"))[:2]
    pictures = quantization.calibration_pictures(files)
    assert len(pictures) == 2 * (1 + quantization.CALIBRATION_SCENES)
    again = quantization.calibration_pictures(files)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pictures, again))  # same photos, same set
    assert np.asarray(pictures[1]).shape != np.asarray(pictures[0]).shape  # a scene, not the photo again


def test_calibration_needs_photos(fp32_onnx):
    with pytest.raises(ValueError, match="at least one photo"):
        quantization.quantize_onnx(fp32_onnx, fp32_onnx.with_name("none.onnx"), [])


@pytest.mark.parametrize("value", ["fp16", "int4", ""])
def test_an_unknown_precision_is_refused_with_the_choices(monkeypatch, value):
    monkeypatch.setenv(quantization.PRECISION_ENV, value)
    with pytest.raises(ValueError, match="fp32, int8, bf16, auto"):
        quantization.precision()


def test_the_first_two_convolutions_of_a_deeper_model_stay_fp32_and_the_rest_are_quantized(tmp_path, batches):
    import keras
    import onnx

    inputs = keras.Input((TINY_SPEC.height, TINY_SPEC.width, 3))
    x = inputs
    for n in range(4):
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=f"conv{n}")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    deeper = tmp_path / "deeper.onnx"
    runtimes.export(keras.Model(inputs, outputs), "onnxruntime", deeper)
    nodes = onnx.load(str(quantization.quantize_onnx(deeper, tmp_path / "deeper.int8.onnx", batches[:4]))).graph.node
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert [c.input[1] in dequantized for c in convs] == [False, False, True, True]
