"""Reduced-precision copies at registration (INT8, and OpenVINO's copy computed in bfloat16): INT8 calibrated on
the parity photos, both gated on the golden ones, served only when the record still matches the files, the
runtime and the CPU's precision."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recognizer import matched_thresholds, optimized, photos, quantization, runtimes
from recognizer.artifacts import load_artifact
from recognizer.engine import Engine
from recognizer.optimized import (
    compile_optimized, compiled_path, load_engine, optimize_artifact, parity_record_path, unavailable_reason,
)
from recognizer.verdict import Thresholds
from tests.conftest import save_tiny

INT8 = "onnxruntime-int8"
PASSING_SEED = 1  # this tiny model keeps every golden answer when quantized (seed 0 loses one domain in 49)


@pytest.fixture(scope="module")
def passed(tmp_path_factory) -> tuple[Path, optimized.Optimization]:
    """A tiny artifact registered with precision int8 whose INT8 copy passed its gate (shared: compiling costs)."""
    h5 = save_tiny(tmp_path_factory.mktemp("int8-pass") / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    return h5, optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="int8")


@pytest.fixture
def copy_of(tmp_path):
    """A private copy of the passed artifact with every generated file beside it, for tests that spoil one."""
    def copy(h5: Path) -> Path:
        for source in h5.parent.glob(f"{h5.stem}*"):
            shutil.copy(source, tmp_path / source.name)
        return tmp_path / h5.name
    return copy


def test_an_int8_copy_that_passes_its_gate_on_the_golden_photos_serves(passed):
    h5, done = passed
    assert done.engine == INT8, done.note
    assert done.gate.images == len(photos.photo_paths("golden")) and done.gate.top1_agreement >= 0.97
    assert done.note.startswith("INT8 passed its accuracy gate (49 golden photos: top-1 agreement")
    record = json.loads(parity_record_path(h5, INT8).read_text())
    assert record["passed"] and record["gate"]["images"] == done.gate.images and record["runtime"].startswith("onnxruntime ")
    engine = load_engine(h5, INT8)
    assert engine.kind == INT8
    fp32 = load_engine(h5, "onnxruntime")
    golden = photos.photo_paths("golden")[:8]
    assert [a[0].label for a in engine.classify(golden)] == [a[0].label for a in fp32.classify(golden)]


def test_the_gate_is_scored_on_the_golden_photos_and_never_on_the_calibration_ones(monkeypatch, tmp_path):
    seen = {}
    real = quantization.quantize_onnx
    monkeypatch.setattr(quantization, "quantize_onnx", lambda fp32, target, batches: real(fp32, target, seen.setdefault("n", list(batches))))
    real_fit = matched_thresholds.fitted_thresholds

    def fit(judge, fp32, reduced):
        seen["fitted on"] = sum(len(probabilities) for probabilities, _ in fp32)
        return real_fit(judge, fp32, reduced)

    monkeypatch.setattr(matched_thresholds, "fitted_thresholds", fit)
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="auto")
    assert len(photos.photo_paths("parity")) == 12  # each calibrated on as it is and as a few scene versions
    assert len(seen["n"]) == 12 * (1 + quantization.CALIBRATION_SCENES)
    assert seen["fitted on"] == len(seen["n"])  # the verdict thresholds are fitted on the same pictures
    assert done.gate.images == 49
    assert not set(photos.photo_paths("parity")) & set(photos.photo_paths("golden"))


def test_a_refused_int8_copy_leaves_fp32_serving_and_records_why(monkeypatch, tmp_path):
    monkeypatch.setattr(quantization, "MIN_TOP1_AGREEMENT", 1.01)  # no copy can keep more than every answer
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="int8")
    assert done.engine == "onnxruntime" and done.reason == ""
    assert done.note.startswith("Serving FP32: INT8 refused by its accuracy gate (49 golden photos")
    assert "top-1 agreement 1.0000 is below 1.01" in done.note
    record = json.loads(parity_record_path(h5, INT8).read_text())
    assert not record["passed"] and "below 1.01" in record["reason"] and record["gate"]["top1_agreement"] == 1.0
    assert "below 1.01" in unavailable_reason(h5, INT8)
    assert load_engine(h5, INT8).kind == "onnxruntime"


def test_the_served_int8_copy_decides_at_the_verdict_thresholds_its_gate_fitted_to_it(passed, copy_of):
    h5 = copy_of(passed[0])
    record_path = parity_record_path(h5, INT8)
    record = json.loads(record_path.read_text())
    assert set(record["thresholds"]) == {"domain", "label", "group"}
    gate = record["gate"]
    assert 0.0 <= gate["verdicts_kept"] <= 1.0 and 0.0 <= gate["verdicts_kept_fitted"] <= 1.0
    assert "verdicts kept" in passed[1].note
    own = Thresholds(domain=0.61, label=0.72, group=0.83)  # as a gate that moved every threshold would write
    record_path.write_text(json.dumps({**record, "thresholds": own.__dict__}))
    assert load_engine(h5, INT8).judge.thresholds == own
    assert load_engine(h5, "onnxruntime").judge.thresholds == Thresholds()  # FP32 keeps the manifest's


def test_a_reduced_copy_gated_without_its_own_verdict_thresholds_is_not_served(passed, copy_of):
    h5 = copy_of(passed[0])
    record_path = parity_record_path(h5, INT8)
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({key: value for key, value in record.items() if key != "thresholds"}))
    assert "compile the version again (manage.py recompile) to fit them" in unavailable_reason(h5, INT8)
    assert load_engine(h5, INT8).kind == "onnxruntime"


def test_an_int8_copy_changed_after_its_gate_is_not_served(passed, copy_of):
    h5 = copy_of(passed[0])
    shutil.copy(compiled_path(h5, "onnxruntime"), compiled_path(h5, INT8))  # another file under the INT8 name
    assert "changed after its parity check" in unavailable_reason(h5, INT8)
    assert load_engine(h5, INT8).kind == "onnxruntime"


def test_an_int8_copy_gated_under_another_runtime_version_is_not_served(passed, copy_of):
    h5 = copy_of(passed[0])
    record_path = parity_record_path(h5, INT8)
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "runtime": "onnxruntime 0.0.1"}))
    assert "was checked with onnxruntime 0.0.1" in unavailable_reason(h5, INT8)
    assert load_engine(h5, INT8).kind == "onnxruntime"


def test_without_its_fp32_record_the_int8_fallback_goes_on_to_keras(passed, copy_of):
    h5 = copy_of(passed[0])
    compiled_path(h5, INT8).unlink()
    parity_record_path(h5, "onnxruntime").unlink()
    assert load_engine(h5, INT8).kind == "keras"


def test_precision_fp32_makes_no_int8_copy(tmp_path):
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="fp32")
    assert done.engine == "onnxruntime" and done.gate is None and done.note == ""
    assert not compiled_path(h5, INT8).exists() and not parity_record_path(h5, INT8).exists()


def test_an_unknown_precision_is_refused_with_the_choices(tmp_path):
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    with pytest.raises(ValueError, match="choose one of fp32, int8, bf16, auto"):
        optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="int4")


def test_openvino_serves_the_int8_copy_it_gated_itself(tmp_path):
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "openvino", precision="int8")
    assert done.engine == "openvino-int8", done.note
    assert not compiled_path(h5, "onnxruntime").exists()  # its ONNX export was a step, not a copy to serve
    assert json.loads(parity_record_path(h5, "openvino-int8").read_text())["runtime"].startswith("openvino ")
    assert load_engine(h5, "openvino-int8").kind == "openvino-int8"
    assert "no readable parity record" in unavailable_reason(h5, INT8)  # ONNX Runtime never gated this copy


def test_the_int8_gate_scores_the_openvino_copy_as_it_serves(tmp_path, monkeypatch):
    """The gate and the served engine open the INT8 copy alike (quantized), so its bfloat16 is what was judged."""
    opened = []
    real = runtimes.open_runner
    monkeypatch.setattr(runtimes, "open_runner", lambda *a, **k: opened.append((a[1], k.get("reduced"))) or real(*a, **k))
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    assert optimize_artifact(Engine.from_path(h5), "openvino", precision="int8").engine == "openvino-int8"
    gated = [q for kind, q in opened if kind == "openvino"]
    load_engine(h5, "openvino-int8")
    assert True in gated and opened[-1] == ("openvino", True)


def test_on_openvino_reduced_copies_compute_their_float_layers_in_bfloat16_and_only_where_the_cpu_has_it():
    with_bf16, without = ["FP32", "BF16", "INT8"], ["FP32", "INT8"]
    hint = lambda reduced, capabilities: runtimes.openvino_config(  # noqa: E731
        2, reduced=reduced, capabilities=capabilities)["INFERENCE_PRECISION_HINT"]
    assert (hint(True, with_bf16), hint(True, without)) == ("bf16", "f32")
    assert (hint(False, with_bf16), hint(False, without)) == ("f32", "f32")  # FP32 copies keep parity with Keras


def cpu_with(monkeypatch, *capabilities: str) -> None:
    """OpenVINO told this CPU has `capabilities` (the hint it then gets is what the record and the checks read)."""
    monkeypatch.setattr(runtimes, "_cpu_capabilities", lambda: ("FP32", "INT8", *capabilities))


def test_an_openvino_int8_copy_gated_in_another_float_precision_than_this_cpu_uses_is_not_served(tmp_path, monkeypatch):
    cpu_with(monkeypatch, "BF16")
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    assert optimize_artifact(Engine.from_path(h5), "openvino", precision="int8").engine == "openvino-int8"
    assert json.loads(parity_record_path(h5, "openvino-int8").read_text())["float_precision"] == "bf16"
    cpu_with(monkeypatch)  # the same files served on a CPU without bfloat16
    assert "compile the version again on this machine (manage.py recompile)" in unavailable_reason(h5, "openvino-int8")
    assert load_engine(h5, "openvino-int8").kind == "openvino"


def test_with_precision_bf16_openvino_serves_its_copy_in_bfloat16_once_the_gate_passed(tmp_path, monkeypatch):
    cpu_with(monkeypatch, "BF16")
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "openvino", precision="bf16")
    assert done.engine == "openvino-bf16", done.note
    assert done.note.startswith("bfloat16 passed its accuracy gate (49 golden photos")
    record = json.loads(parity_record_path(h5, "openvino-bf16").read_text())
    assert (record["passed"], record["float_precision"], record["gate"]["images"]) == (True, "bf16", 49)
    assert set(record["thresholds"]) == {"domain", "label", "group"}
    assert compiled_path(h5, "openvino-bf16") == compiled_path(h5, "openvino")  # the FP32 copy's files
    engine = load_engine(h5, "openvino-bf16")
    assert engine.kind == "openvino-bf16"
    assert engine.classify([photos.photo_paths("golden")[0]], top_k=1)[0][0].label
    cpu_with(monkeypatch)
    assert "computing in bf16, but this CPU computes it in f32" in unavailable_reason(h5, "openvino-bf16")
    assert load_engine(h5, "openvino-bf16").kind == "openvino"


def test_precision_bf16_serves_fp32_and_says_why_without_openvino_or_without_a_bfloat16_cpu(tmp_path, monkeypatch):
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    on_onnx = optimize_artifact(Engine.from_path(h5), "onnxruntime", precision="bf16")
    assert on_onnx.engine == "onnxruntime" and "OpenVINO only" in on_onnx.note
    cpu_with(monkeypatch)
    no_bf16 = optimize_artifact(Engine.from_path(h5), "openvino", precision="bf16")
    assert no_bf16.engine == "openvino" and "computes no bfloat16" in no_bf16.note
    assert json.loads(parity_record_path(h5, "openvino-bf16").read_text())["passed"] is False
    assert load_engine(h5, "openvino-bf16").kind == "openvino"


def int8_step_quantizing_another_model(monkeypatch, tmp_path) -> None:
    """The INT8 step quantizes a differently seeded model's ONNX export: a real INT8 copy that answers unlike the
    FP32 one (top-1 agreement 0.69), as a quantization gone wrong would, so that its gate refuses it."""
    other = compile_optimized(load_artifact(save_tiny(tmp_path / "other" / "tiny-wildlife-v1.h5", seed=0)), "onnxruntime")
    real = quantization.quantize_onnx
    monkeypatch.setattr(quantization, "quantize_onnx", lambda fp32, target, batches: real(other, target, batches))


def test_auto_on_openvino_serves_the_bfloat16_copy_when_the_gate_refuses_int8(tmp_path, monkeypatch):
    cpu_with(monkeypatch, "BF16")
    int8_step_quantizing_another_model(monkeypatch, tmp_path)
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "openvino", precision="auto")
    assert done.engine == "openvino-bf16", done.note
    assert done.note.startswith("bfloat16 passed its accuracy gate") and "Tried before it: INT8 refused" in done.note
    assert json.loads(parity_record_path(h5, "openvino-int8").read_text())["passed"] is False
    assert load_engine(h5, "openvino-bf16").kind == "openvino-bf16"


def test_auto_keeps_fp32_when_int8_is_refused_and_the_cpu_has_no_bfloat16(tmp_path, monkeypatch):
    cpu_with(monkeypatch)
    int8_step_quantizing_another_model(monkeypatch, tmp_path)
    h5 = save_tiny(tmp_path / "tiny-wildlife-v1.h5", seed=PASSING_SEED)
    done = optimize_artifact(Engine.from_path(h5), "openvino", precision="auto")
    assert done.engine == "openvino" and done.note.startswith("Serving FP32: INT8 refused by its accuracy gate")
    assert not parity_record_path(h5, "openvino-bf16").exists()
