"""The service rules themselves: version numbers, register-then-activate, integrity, batches, training and evaluation runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recognizer import errors as core
from recognizer.datasets import scan_dataset
from recognizer.training import TrainConfig, train
from tests.conftest import TINY_NAME
from tests.synthetic import truncated_png, write_dataset
from tests.webapp.helpers import upload
from webapp import runs, services
from webapp.models import ModelVersion, Prediction


# ---- registration and activation --------------------------------------------------------------

def test_versions_are_numbered_in_order_and_a_taken_number_is_refused(db, fresh_runtime, tiny_artifact, tiny_artifact_v2):
    first = services.model_version_register(artifact_path=tiny_artifact)
    assert services.model_version_next_number(name=TINY_NAME) == 2
    with pytest.raises(services.RegistrationError, match="registered at the same moment"):
        services.model_version_register(artifact_path=tiny_artifact_v2, number=1)
    second = services.model_version_register(artifact_path=tiny_artifact_v2)
    assert (first.version, second.version) == (1, 2)
    assert list(ModelVersion.objects.values_list("version", flat=True)) == [2, 1]


def _refuse_every_activation(monkeypatch):
    def changed(*, version):
        raise core.ChecksumMismatch("the file changed")

    monkeypatch.setattr(services, "model_version_verify", changed)


def test_a_refused_activation_after_registration_leaves_the_version_registered_and_says_so(db, fresh_runtime, tiny_artifact, monkeypatch):
    _refuse_every_activation(monkeypatch)
    with pytest.raises(services.ActivationError, match="changed on disk") as refused:
        services.model_version_register(artifact_path=tiny_artifact, activate=True)
    (version,) = ModelVersion.objects.all()
    assert refused.value.version == version
    assert not version.is_active and not version.activations.exists()


def test_an_activation_checked_against_a_version_replaced_meanwhile_is_refused(
        active_tiny, tiny_artifact_v2, artifact_copy, monkeypatch):
    from webapp import promotion

    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    v3 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2))
    gate = promotion.gate_enforce

    def slow_gate(*, candidate, **kwargs):  # another admin activates v2 while v3 is being scored against v1
        gate(candidate=candidate, **kwargs)
        if candidate == v3:
            services.model_version_activate(version=v2)

    monkeypatch.setattr(promotion, "gate_enforce", slow_gate)
    with pytest.raises(services.ActivationError, match=f"{TINY_NAME} v2 became the active version") as refused:
        services.model_version_activate(version=v3)
    assert refused.value.version == v3
    assert ModelVersion.objects.get(is_active=True) == v2
    assert list(v3.activations.all()) == []
    monkeypatch.setattr(promotion, "gate_enforce", gate)
    assert services.model_version_activate(version=v3).is_active  # asked again, it is checked against v2


def test_an_upload_whose_activation_is_refused_keeps_its_files(db, fresh_runtime, models_dir, tiny_artifact, monkeypatch):
    _refuse_every_activation(monkeypatch)
    h5, manifest = (upload(p.read_bytes(), p.name) for p in (tiny_artifact, tiny_artifact.with_suffix(".json")))
    with pytest.raises(services.ActivationError) as refused:
        services.model_version_register_upload(h5_file=h5, manifest_file=manifest, activate=True)
    path = Path(refused.value.version.artifact_path)
    assert path.is_file() and path.with_suffix(".json").is_file() and models_dir in path.parents


def test_verify_refuses_a_changed_file_and_a_missing_one(db, fresh_runtime, artifact_copy):
    path = artifact_copy()
    version = services.model_version_register(artifact_path=path)
    services.model_version_verify(version=version)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(core.ChecksumMismatch, match=f"the registration of {version}"):
        services.model_version_verify(version=version)
    path.unlink()
    with pytest.raises(core.ArtifactError, match="No model file"):
        services.model_version_verify(version=version)


# ---- predictions ------------------------------------------------------------------------------

def test_a_batch_answers_each_upload_in_order_and_records_only_the_answered(active_tiny, jpeg_bytes):
    uploads = [services.Upload(jpeg_bytes), services.Upload(b"not an image"), services.Upload(jpeg_bytes)]
    batch = services.prediction_create_batch(uploads=uploads, top_k=2)
    good, bad, again = batch.items
    assert (batch.model_name, batch.model_version) == (TINY_NAME, 1)
    assert isinstance(bad, core.UnsupportedImageFormat)
    assert good.predictions == again.predictions and len(good.predictions) == 2
    assert Prediction.objects.count() == 2


def test_one_prediction_raises_its_images_error(active_tiny, settings, jpeg_bytes):
    settings.UPLOAD_MAX_BYTES = len(jpeg_bytes) - 1
    with pytest.raises(core.FileTooLarge):
        services.prediction_create(upload=services.Upload(jpeg_bytes))
    assert not Prediction.objects.exists()


# ---- training and evaluation runs -------------------------------------------------------------

@pytest.mark.slow
def test_a_registration_racing_a_training_run_never_files_a_version_under_another_number(
    db, fresh_runtime, settings, tmp_path, tiny_artifact, monkeypatch
):
    settings.MODELS_DIR, settings.VAR_DIR = tmp_path / "models", tmp_path / "var"
    data = write_dataset(tmp_path / "data", {"red-stripes": 2, "blue-circle": 2})
    export = runs.export_run

    def racing(result, folder):  # another registration of the name lands while this run exports
        rival = shutil.copy(tiny_artifact, tmp_path / "rival.h5")
        shutil.copy(tiny_artifact.with_suffix(".json"), tmp_path / "rival.json")
        services.model_version_register(artifact_path=Path(rival))
        return export(result, folder)

    monkeypatch.setattr(runs, "export_run", racing)
    config = TrainConfig(name=TINY_NAME, epochs=1, progress=False)
    with pytest.raises(services.RegistrationError, match="same moment"):
        runs.model_version_train(data=data, config=config, domain="plant", log=lambda line: None)
    (rival,) = ModelVersion.objects.all()
    assert rival.version == 1 and Path(rival.artifact_path).name == "rival.h5"
    assert (settings.MODELS_DIR / f"{TINY_NAME}-v1").is_dir()  # the run's folder, never registered as v2


@pytest.mark.slow
def test_training_leaves_the_callers_dataset_as_it_was_and_returns_what_it_skipped(tmp_path):
    data = write_dataset(tmp_path / "data", {"red-stripes": 3, "blue-circle": 3})
    cut = data / "blue-circle" / "cut.png"
    cut.write_bytes(truncated_png())
    dataset = scan_dataset(data, domain="plant")
    items, skipped = list(dataset.items), list(dataset.skipped)
    assert cut in [p for p, _ in items]  # its header reads: only decoding finds it cut

    result = train(dataset, TrainConfig(name="untouched", epochs=1, progress=False), log=lambda line: None)
    assert (dataset.items, dataset.skipped) == (items, skipped)
    assert [p for p, _ in result.skipped] == [cut]
    assert result.split["skipped"] == 1


@pytest.mark.slow
def test_evaluation_runs_the_version_on_the_engine_that_serves_it(db, fresh_runtime, settings, artifact_copy, photos, tmp_path):
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    version = services.model_version_register(artifact_path=artifact_copy())
    assert version.engine == "onnxruntime", version.engine_note
    for class_id, name in (("cat", "animal/tiger.jpg"), ("owl", "bird/flamingo.jpg"), ("fern", "plant/rose.jpg")):
        (tmp_path / "eval" / class_id).mkdir(parents=True)
        shutil.copy(photos / name, tmp_path / "eval" / class_id / Path(name).name)
    run = runs.model_version_evaluate(version=version, data=tmp_path / "eval", out=tmp_path / "out")
    assert run.metrics["model"] == {"name": TINY_NAME, "version": 1, "engine": "onnxruntime"}
    assert run.metrics["n"] == 3 and len(run.metrics["predictions"]) == 3
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"confusion_matrix.png", "metrics.json"}


def _eval_set(root: Path, photos: Path, layout: dict[str, list[str]]) -> Path:
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(photos / name, root / folder / Path(name).name)
    return root


def test_domain_folders_are_scored_by_domain_on_the_served_probabilities(active_tiny, photos, tmp_path):
    data = _eval_set(tmp_path / "eval", photos, {"animal": ["animal/tiger.jpg", "animal/horse.jpg"], "bird": ["bird/flamingo.jpg"]})
    metrics = runs.model_version_evaluate(version=active_tiny, data=data, out=tmp_path / "out").metrics
    assert metrics["scored_by"] == "domain" and metrics["class_ids"] == ["animal", "bird", "plant", "other"]
    assert metrics["n"] == 3 and [metrics["per_class"][d]["support"] for d in ("animal", "bird")] == [2, 1]
    columns = {"animal": 0, "bird": 1, "plant": 2, "other": 3}
    for item in metrics["predictions"]:  # one class per domain in the tiny model: the top class's domain wins
        row = columns[Path(item["file"]).parent.name]
        assert metrics["confusion_matrix"][row][columns[item["predictions"][0]["domain"]]] >= 1


def test_a_set_that_names_no_class_and_no_domain_is_refused_before_the_model_loads(active_tiny, photos, tmp_path, monkeypatch):
    data = _eval_set(tmp_path / "eval", photos, {"tigers": ["animal/tiger.jpg"]})

    def never(version):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(runs, "engine_for", never)
    with pytest.raises(core.DatasetError, match=r"None of the folders \(tigers\)"):
        runs.model_version_evaluate(version=active_tiny, data=data, out=tmp_path / "out")
