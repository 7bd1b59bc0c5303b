"""The management commands: register_model, classify, and ensure_default_model on a default model already
registered."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import TINY_NAME
from tests.webapp.helpers import assert_error, lambda_artifact, mismatched_artifact, predict, probabilities, truncated_artifact
from webapp import runtime, services
from webapp.models import Activation, ModelVersion


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# ---- register_model ---------------------------------------------------------------------------

def test_register_model_with_activate_registers_and_activates(db, tiny_artifact):
    out = run("register_model", str(tiny_artifact), "--activate", "--notes", "first")
    version = ModelVersion.objects.get()
    assert (version.name, version.version, version.is_active, version.notes) == (TINY_NAME, 1, True, "first")
    assert out.strip() == f"registered {TINY_NAME} v1 (active, sha256 {version.sha256[:12]})"
    assert Activation.objects.get().to_version == version


def test_register_model_warns_when_the_file_is_outside_the_model_store(db, settings, tiny_artifact, tmp_path):
    # With several hosts, a file registered from a host's own folder served on that host only, and no backup had it.
    settings.MODELS_DIR = tmp_path / "store"
    err = io.StringIO()
    call_command("register_model", str(tiny_artifact), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith(f"warning: {tiny_artifact} is outside the model store RECOGNIZER_MODELS_DIR")
    inside = settings.MODELS_DIR / tiny_artifact.name
    inside.parent.mkdir()
    shutil.copy(tiny_artifact, inside)
    shutil.copy(tiny_artifact.with_suffix(".json"), inside.with_suffix(".json"))
    err = io.StringIO()
    call_command("register_model", str(inside), stdout=io.StringIO(), stderr=err)
    assert "outside the model store" not in err.getvalue()


def test_register_model_without_activate_leaves_the_active_version_alone(active_tiny, tiny_artifact_v2):
    assert "(inactive," in run("register_model", str(tiny_artifact_v2))
    assert ModelVersion.objects.get(is_active=True) == active_tiny
    assert ModelVersion.objects.get(version=2).is_active is False


@pytest.mark.parametrize(
    "kind, reason",
    [("truncated", "HDF5"), ("lambda", "Lambda"), ("sha-mismatch", "sha256"), ("missing", "No model file"),
     ("without manifest", "No manifest"), ("its manifest", "is not an .h5 file: give the model's .h5")],
)
def test_register_model_refuses_a_bad_artifact_in_one_line_and_stores_nothing(
    db, tmp_path, tiny_artifact, tiny_artifact_v2, kind, reason
):
    bad = {
        "truncated": lambda: truncated_artifact(tmp_path, tiny_artifact),
        "lambda": lambda: lambda_artifact(tmp_path),
        "sha-mismatch": lambda: mismatched_artifact(tmp_path, tiny_artifact_v2, tiny_artifact),
        "missing": lambda: tmp_path / "nowhere.h5",
        "without manifest": lambda: Path(shutil.copy(tiny_artifact, tmp_path / "lonely.h5")),
        "its manifest": lambda: tiny_artifact.with_suffix(".json"),  # it was checked as a model and "failed its sha256"
    }[kind]()
    with pytest.raises(CommandError) as raised:
        run("register_model", str(bad), "--activate")
    message = str(raised.value)
    assert message.startswith("not registered: ") and reason in message
    assert "\n" not in message
    assert not ModelVersion.objects.exists() and not Activation.objects.exists()


# ---- classify ---------------------------------------------------------------------------------

def test_classify_prints_one_json_object_per_image_with_the_active_model(active_tiny, client, photos, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    names = ["a-turkey.jpg", "b-horse.jpg", "c-rose.jpg"]
    for name, source in zip(names, ["bird/turkey.jpg", "animal/horse.jpg", "plant/rose.jpg"]):
        shutil.copyfile(photos / source, folder / name)
    lines = run("classify", str(folder), "--json").splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert [r["file"] for r in rows] == [str(folder / n) for n in names]
    for row, name in zip(rows, names):
        api = predict(client, (folder / name).read_bytes()).json()
        assert [p["label"] for p in row["predictions"]] == [p["label"] for p in api["predictions"]]
        assert probabilities(row) == pytest.approx(probabilities(api), abs=1e-5)


def test_classify_writes_a_csv_with_the_verdicts_the_api_gives(active_tiny, client, photos, tmp_path):
    import csv

    out = tmp_path / "out.csv"
    run("classify", str(photos / "bird"), "--csv", str(out), "--top-k", "1")
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    files = sorted((photos / "bird").glob("*.jpg"))
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for row, path in zip(rows, files):
        api = predict(client, path.read_bytes()).json()
        assert (row["verdict_domain"], row["verdict_status"]) == (api["verdict"]["domain"], api["verdict"]["status"])
        assert row["top1_label"] == api["predictions"][0]["label"]


def test_classify_follows_the_active_version(active_tiny, tiny_artifact_v2, client, jpeg_bytes, photos):
    path = str(photos / "bird/turkey.jpg")
    before = json.loads(run("classify", path, "--json"))
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2, activate=True)
    runtime.reset()  # a new command is a new process
    after = json.loads(run("classify", path, "--json"))
    api = predict(client, jpeg_bytes).json()
    assert api["model"]["version"] == v2.version
    assert probabilities(after) == pytest.approx(probabilities(api), abs=1e-5)
    assert probabilities(after) != pytest.approx(probabilities(before), abs=1e-3)


def test_classify_honours_top_k_and_domain(active_tiny, photos):
    path = str(photos / "bird/turkey.jpg")
    assert len(json.loads(run("classify", path, "--json", "--top-k", "2"))["predictions"]) == 2
    only = json.loads(run("classify", path, "--json", "--domain", "bird"))["predictions"]
    assert [p["label"] for p in only] == ["owl"]


def test_classify_reports_a_bad_file_goes_on_and_then_fails(active_tiny, photos, tmp_path, capsys):
    good = tmp_path / "good.jpg"
    shutil.copyfile(photos / "bird/turkey.jpg", good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"%PDF-1.4 not a photo")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 files could not be classified"):
        call_command("classify", str(bad), str(good), "--json", stdout=out)
    assert [json.loads(line)["file"] for line in out.getvalue().splitlines()] == [str(good)]
    assert "(PDF)" in capsys.readouterr().err
    with pytest.raises(CommandError, match="1 of 1 files could not be classified"):
        run("classify", str(bad), "--json")


def test_classify_without_an_active_model_is_a_command_error(db, fresh_runtime, settings, photos):
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    with pytest.raises(CommandError, match="register_model"):
        run("classify", str(photos / "bird/turkey.jpg"))


# ---- ensure_default_model ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("precision, note, hinted", [
    ("auto", "", True),  # registered in FP32 before the setting: say what applies it
    ("fp32", "", False),
    ("auto", "Serving FP32: INT8 refused by its accuracy gate.", False),  # tried already: recompiling changes nothing
], ids=["set-after-registration", "fp32", "tried-and-refused"])
def test_ensure_default_model_says_how_to_apply_a_precision_its_version_was_not_registered_in(
    default_served, default_artifact, settings, monkeypatch, precision, note, hinted
):
    monkeypatch.setenv("RECOGNIZER_MODELS_DIR", str(default_artifact.parent))
    settings.RECOGNIZER_PRECISION = precision
    ModelVersion.objects.filter(pk=default_served.pk).update(engine_note=note)

    out = run("ensure_default_model")

    assert "already registered" in out
    hint = ("imagenet-efficientnet_lite0 v1 serves in fp32: RECOGNIZER_PRECISION=auto applies to versions as they are "
            "registered; `python manage.py recompile imagenet-efficientnet_lite0 --precision auto` applies it")
    assert (hint in out) is hinted, out


@pytest.fixture
def animals_only(db, tmp_path):
    """A model of animal classes only, registered (and activated on request): no bird, plant or other class."""
    from recognizer.artifacts import save_artifact
    from recognizer.manifest import ClassInfo
    from tests.conftest import build_tiny_model, tiny_manifest

    classes = [ClassInfo(i, f"beast-{i}", f"beast {i}", "animal") for i in range(4)]
    path = tmp_path / "animals-only-v1.h5"
    save_artifact(build_tiny_model(seed=2), tiny_manifest("animals-only", classes=classes), path)

    def register(activate: bool):
        return services.model_version_register(artifact_path=path, activate=activate)

    return register


def test_a_domain_the_model_has_no_class_of_is_one_line_in_classify_and_invalid_parameter_in_the_api(
    animals_only, client, photos, jpeg_bytes
):
    animals_only(True)
    with pytest.raises(CommandError, match="^domain: the model 'animals-only' has no bird classes.$"):
        run("classify", str(photos / "bird/turkey.jpg"), "--model", "animals-only", "--domain", "bird")
    reply = predict(client, jpeg_bytes, model="animals-only", domain="bird")
    assert assert_error(reply, 400, "invalid_parameter")["message"] == "domain: the model 'animals-only' has no bird classes."


def test_a_model_registered_but_not_active_is_404_in_the_api_and_classify_says_to_activate_it(
    animals_only, active_tiny, client, photos, jpeg_bytes
):
    animals_only(False)
    reply = predict(client, jpeg_bytes, model="animals-only")  # a 503 "try again in a few seconds" did not help
    assert_error(reply, 404, "model_not_found")
    assert "Retry-After" not in reply
    with pytest.raises(CommandError, match="No active version of a model named 'animals-only'. Activate one: "):
        run("classify", str(photos / "bird/turkey.jpg"), "--model", "animals-only")
