"""Who may do what: admin actions need the change permission, pictures the view permission, tokens an active user,
and history (predictions, activations) is append-only for everyone but the superuser's prune_history command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError
from django.utils import timezone

from tests.webapp.helpers import assert_error, predict, upload
from webapp import services
from webapp.models import Activation, HistoryIsAppendOnly, ModelVersion, Prediction

CHANGELIST = "/admin/webapp/modelversion/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def staff(django_user_model, name: str, *perms: str):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def act(client, name: str, *versions: ModelVersion):
    return client.post(CHANGELIST, {"action": name, "_selected_action": [v.pk for v in versions]}, follow=True)


@pytest.fixture
def two_versions(active_tiny, tiny_artifact_v2):
    return active_tiny, services.model_version_register(artifact_path=tiny_artifact_v2)


# ---- admin actions ----------------------------------------------------------------------------

def test_staff_with_only_the_view_permission_can_neither_activate_nor_roll_back(client, django_user_model, two_versions):
    v1, v2 = two_versions
    client.force_login(staff(django_user_model, "viewer", "view_modelversion"))
    assert client.get(CHANGELIST).status_code == 200

    act(client, "activate_selected", v2)
    act(client, "roll_back_selected", v1)
    act(client, "recompile_selected", v1)

    assert ModelVersion.objects.get(is_active=True) == v1
    assert Activation.objects.count() == 1
    assert not LogEntry.objects.filter(change_message__icontains="recompile").exists()
    offered = client.get(CHANGELIST).content.decode()
    assert "recompile_selected" not in offered and "activate_selected" not in offered


def test_staff_with_the_change_permission_may_activate(client, django_user_model, two_versions):
    v1, v2 = two_versions
    editor = staff(django_user_model, "editor", "view_modelversion", "change_modelversion")
    client.force_login(editor)
    act(client, "activate_selected", v2)
    assert ModelVersion.objects.get(is_active=True) == v2
    assert Activation.objects.first().by == editor


# ---- the training-picture view ----------------------------------------------------------------

@pytest.fixture
def pictured(db, settings, artifact_copy, fresh_runtime):
    """A version whose folder holds a training picture, its H5, and whose manifest may be edited."""
    h5 = artifact_copy()
    (h5.parent / "training_curves.png").write_bytes(PNG)
    version = services.model_version_register(artifact_path=h5)

    def names(**training):
        ModelVersion.objects.filter(pk=version.pk).update(manifest={**version.manifest, "training": training})
        return f"{CHANGELIST}{version.pk}/picture/curves/"

    return names


def test_a_training_picture_is_served_to_staff_who_may_view_the_version(client, django_user_model, pictured):
    url = pictured(training_curves_png="training_curves.png")
    client.force_login(staff(django_user_model, "viewer", "view_modelversion"))
    reply = client.get(url)
    assert reply.status_code == 200 and reply["Content-Type"] == "image/png"
    assert b"".join(reply.streaming_content) == PNG


def test_staff_without_the_view_permission_get_no_training_picture(client, django_user_model, pictured):
    url = pictured(training_curves_png="training_curves.png")
    client.force_login(staff(django_user_model, "nobody"))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("named", ["model.h5", "tiny-wildlife-v1.h5", "tiny-wildlife-v1.json", "../training_curves.png", "x.png"])
def test_the_picture_view_serves_no_file_but_the_pictures_the_project_writes(admin_client, pictured, named):
    assert admin_client.get(pictured(training_curves_png=named)).status_code == 404


def test_a_file_that_is_not_a_png_is_not_served_under_the_pictures_name(admin_client, pictured, artifact_copy):
    url = pictured(training_curves_png="training_curves.png")
    version = ModelVersion.objects.get()
    picture = version.artifact_path.rsplit("/", 1)[0] + "/training_curves.png"
    with open(picture, "wb") as handle:
        handle.write(b"<html>not a picture</html>")
    assert admin_client.get(url).status_code == 404


# ---- API tokens -------------------------------------------------------------------------------

def test_a_token_stops_working_when_its_user_is_deactivated(client, django_user_model, active_tiny, jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    user = django_user_model.objects.create_user("bot-owner", password="pw-owner-123")
    _, key = services.api_token_create(name="bot", user=user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, **auth).status_code == 200

    user.is_active = False
    user.save()

    assert_error(client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, **auth), 401, "unauthorized")


# ---- append-only history ----------------------------------------------------------------------

def test_no_one_can_delete_a_prediction_in_the_admin(admin_client, active_tiny, jpeg_bytes):
    assert predict(admin_client, jpeg_bytes).status_code == 200
    row = Prediction.objects.get()
    assert admin_client.get(f"/admin/webapp/prediction/{row.pk}/delete/").status_code == 403
    admin_client.post("/admin/webapp/prediction/", {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert Prediction.objects.filter(pk=row.pk).exists()


def test_history_rows_cannot_be_deleted_or_changed_from_code(active_tiny, jpeg_bytes, client):
    assert predict(client, jpeg_bytes).status_code == 200
    with pytest.raises(HistoryIsAppendOnly):
        Prediction.objects.all().delete()
    with pytest.raises(HistoryIsAppendOnly):
        Prediction.objects.get().delete()
    with pytest.raises(HistoryIsAppendOnly):
        Activation.objects.update(kind=Activation.ROLLBACK)
    activation = Activation.objects.get()
    activation.kind = Activation.ROLLBACK
    with pytest.raises(HistoryIsAppendOnly):
        activation.save()
    assert Prediction.objects.count() == 1 and Activation.objects.get().kind == Activation.ACTIVATE


def test_deleting_a_version_or_a_user_named_in_the_audit_is_refused(two_versions, admin_user):
    v1, v2 = two_versions
    services.model_version_activate(version=v2, by=admin_user)
    with pytest.raises(ProtectedError):
        v2.delete()  # was CASCADE: the activation audit went with it
    with pytest.raises(ProtectedError):
        admin_user.delete()
    assert Activation.objects.count() == 2


def test_only_a_superuser_may_prune_history_and_the_last_activation_stays(active_tiny, jpeg_bytes, client, admin_user, django_user_model):
    assert predict(client, jpeg_bytes).status_code == 200
    django_user_model.objects.create_user("staffer", password="pw-staffer-123", is_staff=True)
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")

    with pytest.raises(CommandError, match="Only an active superuser may prune the history. 'staffer' is not one."):
        call_command("prune_history", "--before", tomorrow, "--superuser", "staffer")
    assert Prediction.objects.count() == 1

    call_command("prune_history", "--before", tomorrow, "--superuser", admin_user.username)
    assert not Prediction.objects.exists()
    assert Activation.objects.count() == 1  # rolling back needs the last one
