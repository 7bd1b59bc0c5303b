"""The training path end to end: `train` on a tiny generated dataset, then registry, API, admin and `evaluate`.

One model is trained once per module (module-scoped fixtures, rows removed at the end); the
tests that need their own run use the smallest dataset that still trains.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from recognizer.artifacts import load_artifact
from recognizer.datasets import scan_dataset
from recognizer.training import TrainConfig, train
from tests.synthetic import picture, png_bytes, truncated_png, write_dataset
from tests.webapp.helpers import predict
from webapp import runtime, services
from webapp.models import Activation, ModelVersion, history_maintenance

NAME = "tiny-trained"
KNOWN = ("blue-circle", "green-blocks", "red-stripes")  # sorted folder order
# label_zh is optional: green-blocks has no row, so it keeps its folder name in both languages.
CLASSES_CSV = "folder,label,domain,label_zh\nred-stripes,Red stripes,bird,红条纹\nblue-circle,Blue circle,plant,蓝圆\n"
EXPECTED_CLASSES = [
    {"index": 0, "id": "blue-circle", "label": "Blue circle", "domain": "plant"},
    {"index": 1, "id": "green-blocks", "label": "green-blocks", "domain": "animal"},  # from --domain
    {"index": 2, "id": "red-stripes", "label": "Red stripes", "domain": "bird"},
]
LABEL = {c["id"]: c["label"] for c in EXPECTED_CLASSES}


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def train_command(data: Path, *args: str, name: str = NAME) -> tuple[str, str]:
    return run("train", "--data", str(data), "--name", name, "--verbosity", "0", *args)


@dataclass
class Trained:
    data: Path
    models_dir: Path
    var_dir: Path
    stdout: str
    stderr: str

    @property
    def cache(self) -> Path:
        return self.var_dir / "feature-cache"


@pytest.fixture(scope="module")
def trained(django_db_setup, django_db_blocker, tmp_path_factory) -> Trained:
    """tiny-trained v1: 3 classes x 6 generated pictures, plus a text file and a PNG cut in half."""
    root = tmp_path_factory.mktemp("trained")
    data = write_dataset(root / "data", {kind: 6 for kind in KNOWN})
    (data / "classes.csv").write_text(CLASSES_CSV)
    (data / "red-stripes" / "notes.txt").write_text("field notes, not a picture")
    (data / "green-blocks" / "cut.png").write_bytes(truncated_png())
    models_dir, var_dir = root / "models", root / "var"
    # Served as in production, by ONNX Runtime: evaluate and the API must agree on that engine too.
    engine = override_settings(MODELS_DIR=models_dir, VAR_DIR=var_dir, RECOGNIZER_ENGINE="onnxruntime")
    with django_db_blocker.unblock(), engine:
        out, err = train_command(data, "--domain", "animal", "--epochs", "20", "--activate")
    yield Trained(data, models_dir, var_dir, out, err)
    with django_db_blocker.unblock(), history_maintenance():  # the audit of its activation goes first
        Activation.objects.filter(model_name=NAME).delete()
        ModelVersion.objects.filter(name=NAME).delete()


@pytest.fixture(scope="module")
def served():
    """One runtime for the module: the trained model is loaded once, on the first request."""
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory) -> Path:
    """New pictures of the three classes (2 each) and a class the model never saw (2 pictures)."""
    return write_dataset(tmp_path_factory.mktemp("eval"), {**{k: 2 for k in KNOWN}, "purple-cross": 2}, seed=7)


@pytest.fixture(scope="module")
def evaluated(trained, eval_data, django_db_blocker, tmp_path_factory) -> tuple[str, dict]:
    with django_db_blocker.unblock(), override_settings(VAR_DIR=tmp_path_factory.mktemp("eval-var")):
        out, _ = run("evaluate", "--data", str(eval_data), "--model", NAME, "--json")
    return out, json.loads(out)


def version(number: int = 1) -> ModelVersion:
    return ModelVersion.objects.get(name=NAME, version=number)


# ---- one training run, registered and served --------------------------------------------------

@pytest.mark.slow
def test_training_registers_and_activates_a_version_with_its_metrics(db, trained):
    v1 = version(1)
    assert v1.is_active and v1.backbone == "efficientnet_lite0"
    assert Activation.objects.filter(to_version=v1).exists()
    folder = trained.models_dir / f"{NAME}-v1"
    assert Path(v1.artifact_path) == (folder / f"{NAME}-v1.h5").resolve()
    assert {p.name for p in folder.iterdir()} >= {
        f"{NAME}-v1.h5", f"{NAME}-v1.json", "training_curves.png", "confusion_matrix.png", "metrics.json",
    }
    metrics = v1.manifest["metrics"]
    assert metrics["evaluated_on"] == "held-out validation split"
    assert metrics["n"] == 3  # one held-out picture per class
    assert metrics["top1_accuracy"] == 1.0 and metrics["top5_accuracy"] == 1.0
    assert v1.manifest["training"]["train"] == 15 and v1.manifest["training"]["skipped"] == 2
    assert f"registered {NAME} v1, active" in trained.stdout


def test_every_trained_version_is_calibrated_on_its_validation_split(db, trained):
    manifest = version(1).manifest
    calibration = manifest["extra"]["calibration"]
    assert calibration["class_temperature"] > 0
    assert set(calibration["thresholds"]) == {"domain", "label", "group"}
    assert all(0.0 <= t <= 1.0 for t in calibration["thresholds"].values())
    assert set(manifest["metrics"]["expected_calibration_error"]) == {"class_before", "class_after"}
    assert "validation split (3 images)" in calibration["fitted_on"]


@pytest.mark.slow
def test_the_manifest_keeps_the_sorted_folder_order_with_classes_csv_labels_and_domains(db, trained):
    assert version(1).manifest["classes"] == EXPECTED_CLASSES


@pytest.mark.slow
def test_unreadable_files_are_listed_on_stderr_and_skipped(db, trained):
    lines = trained.stderr.splitlines()
    notes, cut = trained.data / "red-stripes" / "notes.txt", trained.data / "green-blocks" / "cut.png"
    assert any(line.startswith(f"skipped {notes}: ") and "text" in line for line in lines), lines
    assert any(line.startswith(f"skipped {cut}: ") and "truncated" in line for line in lines), lines


@pytest.mark.slow
def test_the_feature_cache_holds_one_file_per_readable_image(trained):
    readable = [p for kind in KNOWN for p in (trained.data / kind).glob(f"{kind}-*.png")]
    assert len(readable) == 18
    assert len(list(trained.cache.glob("*.npy"))) == 18


@pytest.mark.slow
def test_a_second_run_on_the_same_data_reuses_the_cached_features(db, trained, settings, tmp_path):
    settings.VAR_DIR, settings.MODELS_DIR = trained.var_dir, tmp_path
    before = {p.name: p.stat().st_mtime_ns for p in trained.cache.glob("*.npy")}
    out, _ = train_command(trained.data, "--domain", "animal", "--epochs", "20")
    assert {p.name: p.stat().st_mtime_ns for p in trained.cache.glob("*.npy")} == before
    v2 = version(2)
    assert not v2.is_active and version(1).is_active
    assert "inactive" in out
    # Same cached features, same seed: the same model, so the same held-out metrics.
    assert v2.manifest["metrics"] == version(1).manifest["metrics"]


@pytest.mark.slow
def test_the_api_serves_the_trained_model_and_its_labels(db, client, trained, served):
    for kind in KNOWN:
        reply = predict(client, png_bytes(picture(kind, seed=999)), name="new.png", model=NAME)
        assert reply.status_code == 200, reply.content
        body = reply.json()
        assert body["model"] == {"name": NAME, "version": 1}
        assert {p["label"] for p in body["predictions"]} == set(LABEL.values())
        assert body["predictions"][0]["label"] == LABEL[kind]
    plants = predict(client, png_bytes(picture("red-stripes", seed=999)), model=NAME, domain="plant").json()
    # The one plant class: all of the share within plants, and its (small) share of all classes beside it.
    assert [(p["label"], p["probability_in_domain"]) for p in plants["predictions"]] == [("Blue circle", 1.0)]
    assert plants["predictions"][0]["probability"] < 0.5


@pytest.mark.slow
def test_a_label_zh_column_becomes_the_manifest_s_chinese_labels_and_the_api_serves_them(db, client, trained, served):
    assert version(1).manifest["labels"] == {"zh-hans": ["蓝圆", "green-blocks", "红条纹"]}
    body = predict(client, png_bytes(picture("red-stripes", seed=999)), model=NAME, lang="zh").json()
    assert (body["predictions"][0]["label"], body["predictions"][0]["label_en"]) == ("红条纹", "Red stripes")


@pytest.mark.slow
def test_the_admin_page_shows_the_metrics_and_both_pictures(admin_client, trained):
    page = admin_client.get(f"/admin/webapp/modelversion/{version(1).pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for key in ("top1_accuracy", "top5_accuracy", "held-out validation split"):
        assert key in html
    pictures = sorted(set(re.findall(r'<img src="([^"]+/picture/[^"]+)"', html)))
    assert [p.rstrip("/").rsplit("/", 1)[1] for p in pictures] == ["confusion", "curves"]
    for url in pictures:
        reply = admin_client.get(url)
        assert reply.status_code == 200 and reply["Content-Type"] == "image/png"
        assert b"".join(reply.streaming_content).startswith(b"\x89PNG\r\n\x1a\n")


# ---- evaluate --json, and no skew between evaluation, training and serving ------------------------

@pytest.mark.slow
def test_evaluate_json_counts_images_of_unknown_classes_as_errors(evaluated):
    out, report = evaluated
    assert out.strip().count("\n") == 0  # one JSON object, nothing else on stdout
    assert report["n"] == 8 and report["unknown_class_images"] == 2
    assert set(report["per_class"]) == set(KNOWN)
    assert all(row["support"] == 2 for row in report["per_class"].values())
    folders_and_answers = [(Path(item["file"]).parent.name, item["predictions"][0]["label"]) for item in report["predictions"]]
    assert len(folders_and_answers) == 8
    correct = sum(LABEL.get(folder) == answer for folder, answer in folders_and_answers)
    assert correct == 6  # the model knows its three classes...
    assert report["top1_accuracy"] == pytest.approx(6 / 8)  # ...and the unknown pictures count against it
    assert report["top5_accuracy"] == pytest.approx(6 / 8)
    assert report["skipped"] == []


@pytest.mark.slow
def test_served_predictions_equal_the_predictions_of_evaluate(db, client, evaluated, served):
    _, report = evaluated
    assert version(1).engine == "onnxruntime", version(1).engine_note
    assert report["model"] == {"name": NAME, "version": 1, "engine": "onnxruntime"}
    (listed,) = [v for v in client.get("/api/v1/models").json() if v["name"] == NAME and v["version"] == 1]
    assert len(report["predictions"]) == 8
    for item in report["predictions"]:
        reply = predict(client, Path(item["file"]).read_bytes(), name="x.png", model=NAME, top_k="3")
        served_top = reply.json()["predictions"]
        assert [p["label"] for p in served_top] == [p["label"] for p in item["predictions"]]
        np.testing.assert_allclose(
            [p["probability"] for p in served_top], [p["probability"] for p in item["predictions"]], atol=1e-6
        )
    assert listed["engine"] == "onnxruntime"  # the engine that answered above, loaded in this process


@pytest.mark.slow
def test_the_cached_training_features_and_the_head_give_the_served_probabilities(db, client, trained, served):
    head = load_artifact(version(1).artifact_path).model.get_layer("head_predictions")
    kernel, bias = (w.astype(np.float64) for w in head.get_weights())
    for kind in KNOWN:
        image = trained.data / kind / f"{kind}-0.png"
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        (cached,) = trained.cache.glob(f"*-{digest}.npy")
        logits = np.load(cached).astype(np.float64) @ kernel + bias
        trained_probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        reply = predict(client, image.read_bytes(), name="x.png", model=NAME, top_k="3").json()
        by_index = {p["index"]: p["probability"] for p in reply["predictions"]}
        np.testing.assert_allclose([by_index[i] for i in range(3)], trained_probabilities, atol=1e-5)


# ---- determinism -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_same_seed_twice_gives_the_same_model(trained):
    def once():
        dataset = scan_dataset(trained.data, domain="animal")
        config = TrainConfig(name="determinism", epochs=5, seed=3, cache_dir=trained.cache, progress=False)
        return train(dataset, config, log=lambda message: None)

    first, second = once(), once()
    heads = [result.model.get_layer("head_predictions").get_weights() for result in (first, second)]
    for a, b in zip(*heads):
        np.testing.assert_array_equal(a, b)
    assert first.history == second.history
    images = np.concatenate([_batch(trained.data / kind / f"{kind}-1.png") for kind in KNOWN])
    np.testing.assert_array_equal(np.asarray(first.model([images])), np.asarray(second.model([images])))


def _batch(path: Path) -> np.ndarray:
    from recognizer.backbones import get_backbone
    from recognizer.preprocessing import load_batch

    return load_batch(path, get_backbone("efficientnet_lite0").input_spec)


# ---- data problems stop the command with a message -------------------------------------------------

@pytest.fixture
def folders(settings, tmp_path):
    settings.MODELS_DIR, settings.VAR_DIR = tmp_path / "models", tmp_path / "var"
    return tmp_path


def assert_nothing_registered(folders: Path) -> None:
    assert not ModelVersion.objects.filter(name="refused").exists()
    assert not (folders / "models").exists() or not any((folders / "models").iterdir())


def test_a_missing_folder_is_an_error(db, folders):
    with pytest.raises(CommandError, match="is not a folder"):
        train_command(folders / "nowhere", "--domain", "animal", name="refused")
    assert_nothing_registered(folders)


def test_an_empty_folder_is_an_error(db, folders):
    (folders / "empty").mkdir()
    with pytest.raises(CommandError, match="no class subfolders"):
        train_command(folders / "empty", "--domain", "animal", name="refused")
    (folders / "empty" / "cats").mkdir()
    with pytest.raises(CommandError, match="holds no readable images"):
        train_command(folders / "empty", "--domain", "animal", name="refused")
    assert_nothing_registered(folders)


def test_a_class_with_one_image_is_refused_naming_it(db, folders):
    data = write_dataset(folders / "data", {"red-stripes": 3, "blue-circle": 1})
    with pytest.raises(CommandError, match=r"at least 2 readable images; too few in: blue-circle \(1\)"):
        train_command(data, "--domain", "plant", name="refused")
    assert_nothing_registered(folders)


def test_more_folds_than_a_class_has_images_is_refused_before_training(db, folders):
    # The folds left empty scored NaN, which the database refused, and that was reported as a concurrent registration.
    data = write_dataset(folders / "data", {"red-stripes": 6, "blue-circle": 3})
    with pytest.raises(CommandError, match="4 folds need at least 4 images in every class; blue-circle has 3"):
        train_command(data, "--domain", "plant", "--folds", "4", name="refused")
    assert_nothing_registered(folders)


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_numpy_cannot_take_is_one_line(db, folders, seed):
    data = write_dataset(folders / "data", {"red-stripes": 2, "blue-circle": 2})
    with pytest.raises(CommandError, match="--seed must be a whole number from 0 to 4294967295"):
        train_command(data, "--domain", "plant", "--seed", seed, name="refused")


def test_a_second_training_on_the_machine_is_refused_while_one_runs(db, folders):
    # Two at once picked the same version number and wrote the same H5: one crashed, the other registered 0 bytes.
    from webapp import training_jobs

    data = write_dataset(folders / "data", {"red-stripes": 2, "blue-circle": 2})
    with training_jobs.machine_lock(wait=False) as slot:
        assert slot
        with pytest.raises(CommandError, match="Another training runs on this machine"):
            train_command(data, "--domain", "plant", name="refused")
    assert_nothing_registered(folders)


@pytest.mark.parametrize("during", ["export", "compile"])
def test_a_stop_asked_for_while_the_run_is_exported_or_compiled_registers_nothing(db, folders, monkeypatch, during):
    # A cancel pressed during the export or the compile was confirmed, and the run then registered a version all the same.
    import threading

    from recognizer import errors
    from recognizer.progress import TrainingHooks
    from webapp import runs

    stop = threading.Event()
    module, name = (runs, "export_run") if during == "export" else (services, "optimize_artifact")
    original = getattr(module, name)

    def then_stop(*args, **kwargs):
        done = original(*args, **kwargs)
        stop.set()
        return done

    monkeypatch.setattr(module, name, then_stop)
    data = write_dataset(folders / "data", {"red-stripes": 3, "blue-circle": 3})
    config = TrainConfig(name="refused", epochs=1, progress=False, hooks=TrainingHooks(should_stop=stop.is_set))
    with pytest.raises(errors.TrainingCancelled):
        runs.model_version_train(data=data, config=config, domain="plant", log=lambda line: None)
    assert stop.is_set()
    assert_nothing_registered(folders)


def test_without_domain_or_classes_csv_the_class_is_named(db, folders):
    data = write_dataset(folders / "data", {"red-stripes": 2, "blue-circle": 2})
    with pytest.raises(CommandError, match="No domain for class 'blue-circle'.*--domain"):
        train_command(data, name="refused")
    assert_nothing_registered(folders)


def test_resnet50_without_its_weights_says_how_to_supply_them(db, folders, monkeypatch):
    monkeypatch.setenv("RECOGNIZER_RESNET50_WEIGHTS", str(folders / "missing.h5"))
    data = write_dataset(folders / "data", {"red-stripes": 2, "blue-circle": 2})
    with pytest.raises(CommandError, match="RECOGNIZER_RESNET50_WEIGHTS names .*missing.h5, which does not exist"):
        train_command(data, "--domain", "bird", "--backbone", "resnet50", name="refused")
    assert_nothing_registered(folders)


@pytest.mark.slow
def test_a_class_left_thin_by_a_file_that_fails_to_decode_is_refused_and_the_file_listed(db, folders):
    data = write_dataset(folders / "data", {"red-stripes": 2, "blue-circle": 1})
    cut = data / "blue-circle" / "cut.png"
    cut.write_bytes(truncated_png())
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"too few in: blue-circle \(1\)"):
        call_command("train", "--data", str(data), "--name", "refused", "--domain", "plant", "--verbosity", "0",
                     stdout=io.StringIO(), stderr=err)
    assert f"skipped {cut}: " in err.getvalue()
    assert_nothing_registered(folders)


# ---- fine-tuning and training from scratch ----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.filterwarnings("error:The structure of `inputs`:UserWarning")  # Keras' warning was in train's output
def test_fine_tuning_trains_the_top_layers_and_keeps_batchnorm_frozen(db, folders, monkeypatch):
    import keras

    seen = []
    original = keras.Model.train_on_batch

    def spy(model, x, y, *args, **kwargs):
        watched = ("head_bn", "head_conv", "stem_conv")
        before = {name: model.get_layer(name).get_weights() for name in watched}
        result = original(model, x, y, *args, **kwargs)
        after = {name: model.get_layer(name).get_weights() for name in watched}
        changed = {name for name in watched if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}
        trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
        frozen_bn = all(not layer.trainable for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
        seen.append((trainable, frozen_bn, changed))
        return result

    monkeypatch.setattr(keras.Model, "train_on_batch", spy)
    data = write_dataset(folders / "data", {kind: 3 for kind in KNOWN})
    out, _ = train_command(data, "--name", "tuned", "--domain", "animal", "--epochs", "2",
                           "--fine-tune-layers", "2", "--fine-tune-epochs", "1")
    assert "fine-tuning 2 backbone layers for 1 epochs" in out
    assert seen == [({"block15_project_conv", "head_conv", "head_predictions"}, True, {"head_conv"})]
    tuned = ModelVersion.objects.get(name="tuned")
    assert tuned.manifest["training"]["fine_tune_layers"] == 2
    report = json.loads((Path(tuned.artifact_path).parent / "metrics.json").read_text())
    assert len(report["history"]["fine_tune_loss"]) == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("error:The structure of `inputs`:UserWarning")
def test_from_scratch_finishes_and_registers_without_using_the_feature_cache(db, folders):
    data = write_dataset(folders / "data", {kind: 2 for kind in KNOWN})
    out, _ = train_command(data, "--name", "scratch", "--domain", "animal", "--from-scratch",
                           "--epochs", "1", "--fine-tune-epochs", "1")
    assert re.search(r"fine-tuning \d+ backbone layers for 1 epochs", out)
    scratch = ModelVersion.objects.get(name="scratch")
    assert scratch.manifest["training"]["from_scratch"] is True
    assert [c["id"] for c in scratch.manifest["classes"]] == list(KNOWN)
    assert not list((folders / "var").rglob("*.npy"))  # random weights: features are not worth caching


def test_evaluate_names_a_version_that_does_not_exist(db, trained, eval_data):
    with pytest.raises(CommandError, match=f"'{NAME}' has no version 9"):
        run("evaluate", "--data", str(eval_data), "--model", NAME, "--model-version", "9", "--json")


def test_training_without_a_validation_split_does_not_count_held_out_images(db, tmp_path, settings):
    settings.MODELS_DIR, settings.VAR_DIR = tmp_path / "models", tmp_path / "var"
    data = write_dataset(tmp_path / "data", {kind: 3 for kind in KNOWN})
    out, _ = train_command(data, "--domain", "animal", "--epochs", "1", "--val-split", "0", name="no-split")
    assert "evaluated on: training images (no validation split)\n" in out  # not "(0 images not trained on)"


def test_the_first_ctrl_c_asks_the_train_command_to_stop_and_the_second_interrupts():
    import os
    import signal

    from webapp.management.commands.train import _interrupt_stops

    said = []
    before = signal.getsignal(signal.SIGINT)
    with _interrupt_stops(said.append) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and said == ["stopping between two batches; nothing will be registered (Ctrl-C again to stop at once)"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
