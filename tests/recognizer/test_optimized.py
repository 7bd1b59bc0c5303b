"""The compiled engines (ONNX Runtime, OpenVINO) against Keras: parity, its records, and the fallback to Keras."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recognizer import optimized
from recognizer.artifacts import load_artifact
from recognizer.engine import Engine
from recognizer.manifest import manifest_path
from recognizer.optimized import (
    check_parity,
    compiled_engine,
    compile_optimized,
    load_engine,
    optimize_artifact,
    parity_images,
    parity_record_path,
    unavailable_reason,
)
from recognizer.photos import photos
from tests.conftest import build_tiny_model, save_tiny

KINDS = ("onnxruntime", "openvino")


def copy_artifact(h5: Path, folder: Path) -> Path:
    """A private copy of a session artifact, so that compiled files land in this test's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(h5, folder / h5.name)
    shutil.copy(manifest_path(h5), manifest_path(folder / h5.name))
    return folder / h5.name


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Engine:
    """A Keras engine over a tiny artifact of this module's own (compiled copies are written beside it)."""
    return Engine.from_path(save_tiny(tmp_path_factory.mktemp("tiny-opt") / "tiny-wildlife-v1.h5"))


@pytest.fixture
def parity_photos(monkeypatch) -> list[Path]:
    monkeypatch.delenv(optimized.PHOTOS_ENV, raising=False)
    return parity_images()  # the repository's parity photos


@pytest.mark.parametrize("kind", KINDS)
def test_it_matches_keras_on_real_photos_with_the_tiny_model(tiny_keras, parity_photos, kind):
    compiled = compile_optimized(tiny_keras.artifact, kind)
    report = check_parity(tiny_keras, compiled_engine(tiny_keras.artifact, compiled, kind), parity_photos)
    assert report.passed, report.reason
    assert report.images == len(parity_photos) == 12
    assert report.max_abs_diff < 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_files_are_named_after_the_artifact(tiny_keras, tmp_path, kind):
    compiled = compile_optimized(tiny_keras.artifact, kind, tmp_path)
    expected = {"onnxruntime": "tiny-wildlife-v1.onnx", "openvino": "tiny-wildlife-v1.openvino.xml"}[kind]
    assert compiled == tmp_path / expected
    assert compiled.is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in optimized.runtimes.compiled_files(compiled)
    )


def test_a_different_model_fails_parity_with_a_reason(tiny_keras, parity_photos, tmp_path):
    other = load_artifact(save_tiny(tmp_path / "tiny-wildlife-v2.h5", seed=1))
    compiled = compile_optimized(other, "onnxruntime")
    report = check_parity(tiny_keras, compiled_engine(other, compiled, "onnxruntime"), parity_photos)
    assert not report.passed
    assert report.max_abs_diff >= 1e-3
    assert "difference" in report.reason or "top-" in report.reason


def test_parity_without_images_fails(tiny_keras, tmp_path):
    compiled = compile_optimized(tiny_keras.artifact, "onnxruntime", tmp_path)
    report = check_parity(tiny_keras, compiled_engine(tiny_keras.artifact, compiled, "onnxruntime"), [])
    assert not report.passed
    assert "No images" in report.reason


@pytest.mark.parametrize("kind", KINDS)
def test_it_serves_the_compiled_model_after_a_passing_check(tiny_artifact, parity_photos, tmp_path, kind):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    keras_engine = Engine.from_path(h5)
    outcome = optimize_artifact(keras_engine, kind, parity_photos)
    assert (outcome.engine, outcome.reason) == (kind, "")
    engine = load_engine(h5, kind)
    assert engine.kind == kind
    want = keras_engine.classify(parity_photos, top_k=3, domain="bird")
    got = engine.classify(parity_photos, top_k=3, domain="bird")
    assert [[p.index for p in row] for row in got] == [[p.index for p in row] for row in want]


def test_it_falls_back_to_keras_when_the_compiled_file_is_missing(tiny_artifact, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    assert "No compiled onnxruntime model" in unavailable_reason(h5, "onnxruntime")
    engine = load_engine(h5, "onnxruntime")
    assert engine.kind == "keras"


def test_it_falls_back_to_keras_when_parity_was_never_checked(tiny_artifact, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    compile_optimized(load_artifact(h5), "onnxruntime")
    assert "parity record" in unavailable_reason(h5, "onnxruntime")
    assert load_engine(h5, "onnxruntime").kind == "keras"


def test_a_failed_check_is_recorded_and_keeps_keras(tiny_artifact, parity_photos, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    keras_engine = Engine.from_path(h5)
    # The copy is compiled from another model than the one Keras runs, as a broken converter would do.
    keras_engine.artifact = replace(keras_engine.artifact, model=build_tiny_model(seed=3))
    outcome = optimize_artifact(keras_engine, "onnxruntime", parity_photos)
    assert outcome.engine == "keras"
    assert outcome.reason.startswith("Parity with Keras failed")
    record = json.loads(optimized.parity_record_path(h5, "onnxruntime").read_text())
    assert record["passed"] is False
    assert unavailable_reason(h5, "onnxruntime") == outcome.reason
    assert load_engine(h5, "onnxruntime").kind == "keras"


def test_a_compiled_file_changed_after_the_check_is_not_served(tiny_artifact, parity_photos, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    outcome = optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos)
    assert outcome.engine == "onnxruntime"
    compile_optimized(load_artifact(save_tiny(tmp_path / "other" / "tiny-wildlife-v1.h5", seed=2)), "onnxruntime", tmp_path)
    assert "changed after its parity check" in unavailable_reason(h5, "onnxruntime")
    assert load_engine(h5, "onnxruntime").kind == "keras"


def test_a_copy_compiled_by_an_older_release_without_the_feature_map_is_not_served(tiny_artifact, parity_photos, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    assert optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos).engine == "onnxruntime"
    record_path = parity_record_path(h5, "onnxruntime")
    record = json.loads(record_path.read_text())
    del record["format"]  # as the records of releases before the feature map was exported
    record_path.write_text(json.dumps(record))
    assert "older release" in unavailable_reason(h5, "onnxruntime")
    engine = load_engine(h5, "onnxruntime")
    assert engine.kind == "keras" and engine.predict([parity_photos[0]]).items[0].feature_map is not None


def test_optimizing_the_same_artifact_again_checks_its_current_copy_without_exporting_it_again(
    tiny_artifact, parity_photos, tmp_path, monkeypatch
):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    assert optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos).engine == "onnxruntime"
    record_path = parity_record_path(h5, "onnxruntime")
    record_path.write_text(record_path.read_text().replace('"max_abs_diff"', '"max_abs_diff_before"'))
    exports = []
    monkeypatch.setattr(optimized.runtimes, "export", lambda *args: exports.append(args))
    again = optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos)
    assert (again.engine, again.reason, exports) == ("onnxruntime", "", [])
    assert "max_abs_diff" in json.loads(record_path.read_text())["parity"]  # checked again, recorded again
    optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos, recompile=True)
    assert len(exports) == 1  # asked to recompile (manage.py recompile), it exports whatever is beside it


def test_a_copy_that_may_not_serve_is_exported_again_when_the_artifact_is_optimized(tiny_artifact, parity_photos, tmp_path):
    h5 = copy_artifact(tiny_artifact, tmp_path)
    compile_optimized(load_artifact(save_tiny(tmp_path / "other" / "tiny-wildlife-v1.h5", seed=2)), "onnxruntime", tmp_path)
    assert unavailable_reason(h5, "onnxruntime")  # another model's copy, never checked
    assert optimize_artifact(Engine.from_path(h5), "onnxruntime", parity_photos).engine == "onnxruntime"
    assert unavailable_reason(h5, "onnxruntime") == ""


def test_keras_kind_always_loads_the_keras_engine(tiny_artifact):
    assert load_engine(tiny_artifact, "keras").kind == "keras"


def test_the_engine_setting_is_validated(monkeypatch):
    monkeypatch.setenv("RECOGNIZER_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match="keras, onnxruntime, openvino"):
        optimized.engine_kind()
    monkeypatch.setenv("RECOGNIZER_INTRA_THREADS", "0")
    with pytest.raises(ValueError, match="RECOGNIZER_INTRA_THREADS"):
        optimized.intra_threads()


def test_concurrent_calls_give_the_serial_answers(tiny_keras, parity_photos):
    compiled = compile_optimized(tiny_keras.artifact, "onnxruntime")
    engine = compiled_engine(tiny_keras.artifact, compiled, "onnxruntime", threads=2)
    batches = [engine.prepare(p) for p in parity_photos]
    serial = [engine.probabilities(b) for b in batches]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, engine.probabilities(batches[i]))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], serial[i]) for i in range(8))


@pytest.fixture(scope="module")
def default_keras(tmp_path_factory) -> Engine:
    from recognizer.default_model import build_default

    return Engine.from_path(build_default(out=tmp_path_factory.mktemp("default") / "imagenet-efficientnet_lite0-v1.h5"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_it_matches_keras_on_real_photos_with_the_default_model(default_keras, parity_photos, kind):
    outcome = optimize_artifact(default_keras, kind, parity_photos)
    assert outcome.reason == ""
    assert outcome.parity.max_abs_diff < 1e-3
    engine = load_engine(default_keras.artifact.path, kind)
    want, got = default_keras.classify(parity_photos), engine.classify(parity_photos)
    assert [[p.index for p in row] for row in got] == [[p.index for p in row] for row in want]
    # The compiled copy also gives the feature map, so its verdicts come from the same domain head as Keras's.
    golden = [p.path for p in photos("golden")]
    verdicts = [(a.verdict.domain, a.verdict.status) for a in engine.predict(golden).items]
    assert verdicts == [(a.verdict.domain, a.verdict.status) for a in default_keras.predict(golden).items]


@pytest.mark.slow
def test_the_default_models_int8_copy_passes_its_gate_and_keeps_every_golden_verdicts_domain(default_keras, parity_photos):
    from recognizer import quantization

    done = optimize_artifact(default_keras, "onnxruntime", parity_photos, precision="int8")
    assert done.engine == "onnxruntime-int8", done.note
    assert done.gate.images == 49 and done.gate.domain_agreement == 1.0, done.note
    assert done.gate.top1_agreement >= quantization.MIN_TOP1_AGREEMENT and done.gate.top5_shared >= quantization.MIN_TOP5_SHARED
    assert load_engine(default_keras.artifact.path, "onnxruntime-int8").kind == "onnxruntime-int8"
