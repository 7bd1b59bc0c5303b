"""Allowed classes kept by an admin per model name: checked when saved, applied by every worker, reported in replies."""

from __future__ import annotations

import pytest

from recognizer.manifest import ClassInfo
from tests.conftest import TINY_NAME, build_tiny_model, tiny_manifest
from tests.webapp.helpers import assert_error, predict
from webapp import services
from webapp.models import AllowedClassList, ModelVersion
from webapp.runtime import Runtime, runtime

ADD = "/admin/webapp/allowedclasslist/add/"


def labels(body: dict) -> list[str]:
    return sorted(p["label"] for p in body["predictions"])


def test_a_list_saved_in_the_admin_limits_the_answers_of_that_model(admin_client, active_tiny, jpeg_bytes):
    assert predict(admin_client, jpeg_bytes).json()["allowed_classes"] is None
    reply = admin_client.post(ADD, {"model_name": TINY_NAME, "classes": "# this farm\nowl\n2\n", "enabled": "on"})
    assert reply.status_code == 302, reply.content.decode()[:2000]
    body = predict(admin_client, jpeg_bytes).json()
    assert body["allowed_classes"] == {"applied": True, "count": 2, "source": "admin"}
    assert labels(body) == ["fern", "owl"]
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1.0, abs=1e-6)
    assert body["verdict"]["domain"] == "other"  # judged on every class: the list chooses among classes, not the domain


def test_the_admin_refuses_a_list_naming_a_class_the_active_version_lacks(admin_client, active_tiny):
    reply = admin_client.post(ADD, {"model_name": TINY_NAME, "classes": "owl\nunicorn\n", "enabled": "on"})
    assert reply.status_code == 200
    assert "unicorn" in reply.content.decode()
    assert not AllowedClassList.objects.exists()


def test_the_admin_refuses_a_list_with_no_class_in_it(admin_client, active_tiny):
    reply = admin_client.post(ADD, {"model_name": TINY_NAME, "classes": "# nothing yet\n", "enabled": "on"})
    assert reply.status_code == 200 and "lists no classes" in reply.content.decode()
    assert not AllowedClassList.objects.exists()


def test_unticking_the_list_answers_over_all_classes_again(client, active_tiny, jpeg_bytes):
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n")
    assert labels(predict(client, jpeg_bytes).json()) == ["owl"]
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n", enabled=False)
    body = predict(client, jpeg_bytes).json()
    assert body["allowed_classes"] is None and len(body["predictions"]) == 4


def test_a_domain_filter_with_no_allowed_class_in_it_says_so_instead_of_speaking_of_shares(client, active_tiny, jpeg_bytes):
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n")
    body = predict(client, jpeg_bytes, domain="plant").json()
    assert body["predictions"] == []
    assert body["domain_note"] == ("No class this service is set to answer with is among the plants, so none is listed; "
                                   "leave the filter out to see the answer.")
    chinese = predict(client, jpeg_bytes, domain="plant", lang="zh-hans").json()["domain_note"]
    assert chinese == "此服务设定可回答的类别中没有植物，因此没有列出任何类别；去掉筛选即可看到答案。"
    assert labels(predict(client, jpeg_bytes, domain="bird").json()) == ["owl"]


def test_a_list_may_name_a_class_by_the_chinese_label_its_own_manifest_gives_it(client, db, tmp_path, jpeg_bytes):
    # Only ImageNet's Chinese names were known: a trained model's own "狐狸" was "a class the model does not have".
    from dataclasses import replace

    from recognizer.artifacts import save_artifact

    manifest = replace(tiny_manifest("tiny-zh"), labels={"zh-hans": ["猫", "猫头鹰", "蕨", "茶壶"]})
    path = tmp_path / "tiny-zh-v1.h5"
    save_artifact(build_tiny_model(seed=5), manifest, path)
    services.model_version_register(artifact_path=path, activate=True)
    services.allowed_class_list_save(model_name="tiny-zh", classes="猫头鹰\n茶壶\n")
    assert sorted(labels(predict(client, jpeg_bytes, model="tiny-zh").json())) == ["owl", "teapot"]


def test_a_deleted_list_stops_applying(client, active_tiny, jpeg_bytes):
    listed = services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n")
    services.allowed_class_list_delete(listed=listed)
    assert predict(client, jpeg_bytes).json()["allowed_classes"] is None


def test_another_worker_applies_a_changed_list_on_its_next_poll(active_tiny):
    worker = Runtime()  # a second process's runtime: it learns of changes only by polling the database
    assert worker.get(TINY_NAME).allowed is None
    AllowedClassList.objects.create(model_name=TINY_NAME, classes="cat\nteapot\n")
    assert worker.get(TINY_NAME).allowed is None  # not polled yet
    worker.refresh()
    assert worker.get(TINY_NAME).allowed.count == 2
    AllowedClassList.objects.filter(model_name=TINY_NAME).update(classes="cat\n", updated_at="2030-01-01T00:00:00Z")
    worker.refresh()
    assert worker.get(TINY_NAME).allowed.count == 1


def test_the_admin_list_wins_over_the_settings_file(client, active_tiny, jpeg_bytes, settings, tmp_path):
    allowed = tmp_path / "farm.txt"
    allowed.write_text("cat\nteapot\n")
    settings.ALLOWED_CLASSES_FILE = str(allowed)
    assert predict(client, jpeg_bytes).json()["allowed_classes"]["source"] == "file"
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n")
    body = predict(client, jpeg_bytes).json()
    assert body["allowed_classes"]["source"] == "admin" and labels(body) == ["owl"]


@pytest.fixture
def other_classes_v2(active_tiny, tmp_path):
    """Version 2 of the tiny model with classes of its own, only 'cat' in common with v1: its path."""
    from recognizer.artifacts import save_artifact

    classes = (ClassInfo(0, "cat", "cat", "animal"), ClassInfo(1, "wren", "wren", "bird"),
               ClassInfo(2, "moss", "moss", "plant"), ClassInfo(3, "kettle", "kettle", "other"))
    path = tmp_path / f"{TINY_NAME}-v2.h5"
    save_artifact(build_tiny_model(seed=3), tiny_manifest(classes=classes), path)
    return path


@pytest.mark.parametrize("listed", ["cat\nowl\n", "owl\nfern\n"])
def test_a_version_lacking_listed_classes_is_not_activated_and_the_old_one_keeps_answering(
        client, other_classes_v2, jpeg_bytes, listed):
    services.allowed_class_list_save(model_name=TINY_NAME, classes=listed)
    with pytest.raises(services.ActivationError, match="owl") as refused:
        services.model_version_register(artifact_path=other_classes_v2, activate=True)
    assert "change or untick the list" in str(refused.value) and not refused.value.version.is_active
    runtime().refresh()
    body = predict(client, jpeg_bytes).json()
    assert body["model"]["version"] == 1 and body["allowed_classes"]["source"] == "admin"


def test_register_and_activate_refused_by_the_list_still_warns_of_the_classes_and_scores_the_golden_set(
        active_tiny, other_classes_v2, tmp_path):
    # Refused before the gate, the version kept no golden-set figures, and the command dropped the classes warning.
    from io import StringIO

    from django.core.management import CommandError, call_command

    from tests.webapp.test_gate import golden_by
    from webapp.models import GateCheck, GoldenSet

    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(active_tiny, tmp_path / "golden")))
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n")
    said, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=f"registered {TINY_NAME} v2, but it is not active: .*owl"):
        call_command("register_model", str(other_classes_v2), "--activate", stdout=said, stderr=err)
    assert said.getvalue().startswith("Golden set (24 photos): candidate v2 top-1 ")
    assert err.getvalue().startswith(f"warning: {TINY_NAME} v2 has 4 classes where v1 (active) has 4: 3 new")
    assert GateCheck.objects.filter(candidate__version=2).count() == 1
    out = StringIO()  # its figures are said, as activate says them
    with pytest.raises(CommandError, match="not activated: .*owl"):
        call_command("activate", TINY_NAME, "2", stdout=out, stderr=err)
    assert err.getvalue().count(f"warning: {TINY_NAME} v2 has 4 classes where v1, which it replaces, has 4") == 1


def test_activating_a_version_with_other_classes_in_the_command_says_how_they_differ(other_classes_v2):
    from io import StringIO

    from django.core.management import call_command

    services.model_version_register(artifact_path=other_classes_v2)
    err = StringIO()
    call_command("activate", TINY_NAME, "2", stdout=StringIO(), stderr=err)
    assert f"warning: {TINY_NAME} v2 has 4 classes where v1, which it replaces, has 4: 3 new (wren, moss, kettle)" in err.getvalue()


def test_once_the_list_fits_the_new_version_it_activates_and_answers_among_the_listed_classes(client, other_classes_v2, jpeg_bytes):
    listed = services.allowed_class_list_save(model_name=TINY_NAME, classes="cat\nowl\n")
    version = services.model_version_register(artifact_path=other_classes_v2)
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\n", enabled=False)
    services.model_version_activate(version=version)
    runtime().refresh()
    assert predict(client, jpeg_bytes).json()["model"]["version"] == 2
    with pytest.raises(services.AllowedListError, match="owl"):  # and the list cannot be turned on again as it was
        services.allowed_class_list_save(model_name=TINY_NAME, classes=listed.classes)
    services.allowed_class_list_save(model_name=TINY_NAME, classes="cat\n")
    body = predict(client, jpeg_bytes).json()
    assert body["allowed_classes"]["count"] == 1 and labels(body) == ["cat"]


def test_rolling_back_to_a_version_the_list_does_not_fit_is_refused_too(other_classes_v2):
    services.model_version_register(artifact_path=other_classes_v2, activate=True)
    services.allowed_class_list_save(model_name=TINY_NAME, classes="wren\n")
    with pytest.raises(services.ActivationError, match="wren"):
        services.model_version_rollback(name=TINY_NAME)


def test_the_settings_file_is_checked_for_the_default_model_too(other_classes_v2, settings, tmp_path):
    allowed = tmp_path / "farm.txt"
    allowed.write_text("owl\n")
    settings.ALLOWED_CLASSES_FILE = str(allowed)
    with pytest.raises(services.ActivationError, match="change ALLOWED_CLASSES_FILE"):
        services.model_version_register(artifact_path=other_classes_v2, activate=True)


def test_a_saved_list_keeps_its_model_so_editing_it_cannot_copy_it_to_another(admin_client, active_tiny, tmp_path):
    from tests.imagenet_tiny import NAME as OTHER, save_imagenet_tiny

    services.model_version_register(artifact_path=save_imagenet_tiny(tmp_path), activate=True)  # a second model, active
    admin_client.post(ADD, {"model_name": TINY_NAME, "classes": "2\n", "enabled": "on"})  # class index 2: both have it
    listed = AllowedClassList.objects.get()
    change = f"/admin/webapp/allowedclasslist/{listed.pk}/change/"
    admin_client.post(change, {"model_name": OTHER, "classes": "2\n", "enabled": "on"})
    assert list(AllowedClassList.objects.values_list("model_name", flat=True)) == [TINY_NAME]


# ---- a version whose classes differ from the name's earlier ones ------------------------------

def test_registering_a_version_with_other_classes_warns_in_the_command_and_the_admin(admin_client, other_classes_v2, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    from tests.webapp.test_admin import REGISTER, upload_form

    out, err = StringIO(), StringIO()
    call_command("register_model", str(other_classes_v2), stdout=out, stderr=err)
    assert out.getvalue().startswith(f"registered {TINY_NAME} v2")
    assert err.getvalue().splitlines()[0] == (
        f"warning: {TINY_NAME} v2 has 4 classes where v1 (active) has 4: 3 new (wren, moss, kettle); 3 gone (owl, fern, teapot).")
    reply = admin_client.post(REGISTER, upload_form(other_classes_v2), follow=True)
    said = [str(m) for m in reply.context["messages"]]
    assert any(m.startswith(f"{TINY_NAME} v3 has 4 classes where v1 (active) has 4: 3 new") for m in said), said


def test_activating_a_version_with_other_classes_in_the_admin_says_how_they_differ(admin_client, other_classes_v2):
    # A version trained on a few classes under the default model's name replaced its 1000 without a word.
    version = services.model_version_register(artifact_path=other_classes_v2)
    reply = admin_client.post("/admin/webapp/modelversion/", {"action": "activate_selected", "_selected_action": [version.pk]},
                              follow=True)
    said = [str(m) for m in reply.context["messages"]]
    assert ModelVersion.objects.get(pk=version.pk).is_active
    assert f"{TINY_NAME} v2 has 4 classes where v1, which it replaces, has 4: 3 new (wren, moss, kettle); 3 gone (owl, fern, teapot)." in said


def test_the_same_classes_in_another_order_are_said_to_move_indices(active_tiny, tmp_path):
    from recognizer.artifacts import save_artifact
    from webapp import selectors

    reordered = tuple(ClassInfo(i, c.id, c.label, c.domain) for i, c in enumerate(reversed(tiny_manifest().classes)))
    path = tmp_path / f"{TINY_NAME}-reordered.h5"
    save_artifact(build_tiny_model(seed=4), tiny_manifest(classes=reordered), path)
    version = services.model_version_register(artifact_path=path)
    assert "in another order" in selectors.model_version_class_changes(version=version)
    assert selectors.model_version_class_changes(version=active_tiny) == ""


@pytest.mark.slow
@pytest.mark.parametrize("name, domain", [("other/sedan.jpg", "other"), ("other/teapot.jpg", "other"), ("bird/flamingo.jpg", "bird")])
def test_a_list_of_animals_does_not_make_a_car_or_a_bird_an_animal(client, default_served, name, domain):
    from recognizer.photos import role_dir

    photo = (role_dir("golden") / name).read_bytes()
    before = predict(client, photo).json()["verdict"]
    services.allowed_class_list_save(model_name="imagenet-efficientnet_lite0", classes="tiger\nn02119022\n340\n")
    after = predict(client, photo).json()
    assert after["allowed_classes"]["count"] == 3
    assert before["domain"] == after["verdict"]["domain"] == domain
    assert after["verdict"]["label"] is None  # no listed class is a sedan, a teapot or a flamingo
