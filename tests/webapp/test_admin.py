"""The admin: registering, activating and rolling back model versions; predictions; API tokens."""

from __future__ import annotations

import hashlib
import shutil
import re
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from recognizer.manifest import file_sha256
from tests.conftest import TINY_NAME
from tests.webapp.helpers import (
    assert_error, files_under, lambda_artifact, mismatched_artifact, predict, truncated_artifact, upload,
)
from webapp import services
from webapp.models import Activation, ApiToken, ModelVersion, Prediction

REGISTER = "/admin/webapp/modelversion/register/"
CHANGELIST = "/admin/webapp/modelversion/"


def upload_form(h5: Path, **fields) -> dict:
    return {
        "h5_file": upload(h5.read_bytes(), "model.h5", "application/x-hdf5"),
        "manifest_file": upload(h5.with_suffix(".json").read_bytes(), "model.json", "application/json"),
        "notes": "",
        **fields,
    }


def messages_of(reply) -> list[str]:
    return [str(m) for m in reply.context["messages"]] if reply.context else []


def action(admin_client, name: str, *versions: ModelVersion):
    return admin_client.post(CHANGELIST, {"action": name, "_selected_action": [v.pk for v in versions]}, follow=True)


# ---- the changelist ---------------------------------------------------------------------------

def test_the_changelist_shows_each_version_with_its_predictions_served(admin_client, active_tiny, tiny_artifact_v2, jpeg_bytes):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    for _ in range(3):
        assert predict(admin_client, jpeg_bytes).status_code == 200
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    served = dict(re.findall(r'href="/admin/webapp/modelversion/(\d+)/change/[^"]*">.*?<td class="field-served">(\d+)</td>', text, re.S))
    assert served == {str(active_tiny.pk): "3", str(v2.pk): "0"}


def test_the_change_page_shows_the_manifest(admin_client, active_tiny):
    page = admin_client.get(f"{CHANGELIST}{active_tiny.pk}/change/")
    assert page.status_code == 200
    assert active_tiny.sha256 in page.content.decode()
    assert "4 classes" in page.content.decode()


# ---- registering ------------------------------------------------------------------------------

def test_a_version_is_registered_from_an_uploaded_h5_and_manifest(admin_client, admin_user, models_dir, tiny_artifact):
    reply = admin_client.post(REGISTER, upload_form(tiny_artifact, notes="from the laptop", activate="on"))
    version = ModelVersion.objects.get()
    assert reply.status_code == 302 and reply["Location"] == f"{CHANGELIST}{version.pk}/change/"
    assert (version.name, version.version, version.is_active) == (TINY_NAME, 1, True)
    assert version.sha256 == file_sha256(tiny_artifact)
    assert version.notes == "from the laptop" and version.created_by == admin_user
    stored = Path(version.artifact_path)
    assert stored.is_relative_to(models_dir / "uploads") and stored.read_bytes() == tiny_artifact.read_bytes()
    assert Activation.objects.get().by == admin_user



def test_a_form_sent_to_the_add_page_goes_on_to_the_register_page_with_a_307_so_its_files_are_sent_again(admin_client, tiny_artifact):
    # A 302 makes a browser fetch the register page with GET, an empty form: the files it carried were dropped.
    assert admin_client.get(CHANGELIST + "add/")["Location"] == REGISTER
    reply = admin_client.post(CHANGELIST + "add/", upload_form(tiny_artifact, activate="on"))
    assert (reply.status_code, reply["Location"]) == (307, REGISTER)
    assert not ModelVersion.objects.exists()  # nothing registered until the form reaches the register page

def test_a_version_is_registered_from_an_artifact_under_models_dir(admin_client, models_dir, artifact_copy):
    artifact = artifact_copy(folder=models_dir / "tiny")
    form = admin_client.get(REGISTER).content.decode()
    assert 'value="tiny/tiny-wildlife-v1.h5"' in form
    reply = admin_client.post(REGISTER, {"artifact": "tiny/tiny-wildlife-v1.h5", "notes": ""})
    assert reply.status_code == 302
    version = ModelVersion.objects.get()
    assert Path(version.artifact_path) == artifact.resolve()
    assert not version.is_active and not Activation.objects.exists()


def test_only_artifacts_under_models_dir_can_be_named(admin_client, models_dir, tiny_artifact):
    reply = admin_client.post(REGISTER, {"artifact": str(tiny_artifact), "notes": ""})
    assert reply.status_code == 200
    assert "Select a valid choice" in reply.content.decode()
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "fields, message",
    [({}, "Either upload"), ({"artifact": "x"}, "Select a valid choice"), ("h5-only", "Upload both")],
    ids=["nothing", "unknown-artifact", "h5-without-manifest"],
)
def test_an_incomplete_register_form_is_refused(admin_client, models_dir, tiny_artifact, fields, message):
    if fields == "h5-only":
        fields = {"h5_file": upload(tiny_artifact.read_bytes(), "model.h5")}
    reply = admin_client.post(REGISTER, {"notes": "", **fields})
    assert reply.status_code == 200
    assert message in reply.content.decode()
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "kind, reason",
    [("truncated", "not a readable HDF5 file"), ("lambda", "Lambda layer"), ("sha-mismatch", "sha256")],
)
def test_a_corrupt_upload_shows_an_error_and_stores_nothing(
    admin_client, models_dir, tmp_path, tiny_artifact, tiny_artifact_v2, kind, reason
):
    bad = {
        "truncated": lambda: truncated_artifact(tmp_path, tiny_artifact),
        "lambda": lambda: lambda_artifact(tmp_path),
        "sha-mismatch": lambda: mismatched_artifact(tmp_path, tiny_artifact_v2, tiny_artifact),
    }[kind]()
    reply = admin_client.post(REGISTER, upload_form(bad, activate="on"))
    assert reply.status_code == 200
    shown = messages_of(reply)
    assert len(shown) == 1 and shown[0].startswith("Not registered:") and reason in shown[0], shown
    assert "Not registered:" in reply.content.decode()
    assert not ModelVersion.objects.exists() and not Activation.objects.exists()
    assert files_under(models_dir / "uploads") == set()


def test_a_registered_version_whose_activation_is_refused_says_so_truthfully(admin_client, models_dir, tiny_artifact, monkeypatch):
    def refuse(*, version, by=None, kind=Activation.ACTIVATE):
        raise services.ActivationError(f"Another activation of {version.name} happened at the same time; try again.", version)

    monkeypatch.setattr(services, "model_version_activate", refuse)
    reply = admin_client.post(REGISTER, upload_form(tiny_artifact, activate="on"), follow=True)
    (version,) = ModelVersion.objects.all()
    assert not version.is_active
    assert reply.redirect_chain[-1][0] == f"{CHANGELIST}{version.pk}/change/"  # off the form: no second submit
    assert messages_of(reply) == [
        f"Registered {version}, but it is not active: Another activation of {TINY_NAME} happened at the same time; try again."
    ]
    assert Path(version.artifact_path).is_file()


def test_a_corrupt_artifact_under_models_dir_is_not_registered(admin_client, models_dir, tiny_artifact, tiny_artifact_v2):
    mismatched_artifact(models_dir, tiny_artifact_v2, tiny_artifact)
    reply = admin_client.post(REGISTER, {"artifact": "mismatch.h5", "notes": ""})
    assert reply.status_code == 200
    assert any("sha256" in m for m in messages_of(reply))
    assert not ModelVersion.objects.exists()


# ---- activation and roll-back -----------------------------------------------------------------

def test_the_activate_action_switches_versions_and_audits_it(admin_client, admin_user, active_tiny, tiny_artifact_v2):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    reply = action(admin_client, "activate_selected", v2)
    assert reply.status_code == 200
    assert any("is now active" in m for m in messages_of(reply))
    active_tiny.refresh_from_db(), v2.refresh_from_db()
    assert (active_tiny.is_active, v2.is_active) == (False, True)
    last = Activation.objects.first()
    assert (last.by, last.from_version, last.to_version, last.kind) == (admin_user, active_tiny, v2, Activation.ACTIVATE)


def test_activating_two_versions_at_once_is_refused(admin_client, active_tiny, tiny_artifact_v2):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    reply = action(admin_client, "activate_selected", active_tiny, v2)
    assert any("exactly one" in m for m in messages_of(reply))
    assert ModelVersion.objects.get(is_active=True) == active_tiny


def test_roll_back_reactivates_the_previous_version(admin_client, admin_user, active_tiny, tiny_artifact_v2):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    action(admin_client, "activate_selected", v2)
    reply = action(admin_client, "roll_back_selected", v2)
    assert any("Rolled back" in m and "v1" in m for m in messages_of(reply))
    assert ModelVersion.objects.get(is_active=True) == active_tiny
    last = Activation.objects.first()
    assert (last.kind, last.from_version, last.to_version, last.by) == (Activation.ROLLBACK, v2, active_tiny, admin_user)


def test_roll_back_without_a_previous_version_says_so(admin_client, active_tiny):
    reply = action(admin_client, "roll_back_selected", active_tiny)
    assert any("no previously active version" in m for m in messages_of(reply))
    assert ModelVersion.objects.get(is_active=True) == active_tiny


def test_roll_back_and_activation_refusals_speak_the_admin_s_language(admin_client, active_tiny, tiny_artifact_v2, artifact_copy):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    rolled = messages_of(action(admin_client, "roll_back_selected", active_tiny))
    assert f"{TINY_NAME} 没有可以回滚到的先前启用版本。" in rolled, rolled
    path = artifact_copy(tiny_artifact_v2, stem="changed")
    v2 = services.model_version_register(artifact_path=path)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    refused = messages_of(action(admin_client, "activate_selected", v2))
    assert f"{TINY_NAME} v2 的模型文件自注册以来已在磁盘上被更改：请放回注册时的文件，或把更改后的模型（H5 和清单）以新文件名导出，再注册为新版本。" in refused, refused


def test_the_database_refuses_two_active_versions_of_one_name(active_tiny, tiny_artifact_v2):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=v2.pk).update(is_active=True)
    assert list(ModelVersion.objects.filter(is_active=True)) == [active_tiny]


# ---- who may enter ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/admin/", CHANGELIST, REGISTER, "/admin/webapp/apitoken/add/"])
def test_a_user_who_is_not_staff_cannot_reach_the_admin(client, django_user_model, url):
    user = django_user_model.objects.create_user("visitor", password="pw-visitor-123")
    client.force_login(user)
    reply = client.get(url)
    assert reply.status_code == 302 and reply["Location"].startswith("/admin/login/")


def test_staff_without_permissions_cannot_register_a_model(client, django_user_model, models_dir, tiny_artifact):
    user = django_user_model.objects.create_user("helper", password="pw-helper-123", is_staff=True)
    client.force_login(user)
    assert client.get(REGISTER).status_code == 403
    assert client.post(REGISTER, upload_form(tiny_artifact)).status_code == 403
    assert client.get(CHANGELIST).status_code == 403
    assert not ModelVersion.objects.exists()


def test_view_only_staff_read_a_version_without_the_gate_buttons_they_may_not_use(client, django_user_model, active_tiny):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("reader", password="pw-reader-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(user)
    page = client.get(f"{CHANGELIST}{active_tiny.pk}/change/")
    assert page.status_code == 200 and TINY_NAME in page.content.decode()
    assert 'id="gate-actions"' not in page.content.decode()
    assert client.post(f"{CHANGELIST}{active_tiny.pk}/gate/").status_code == 403
    assert client.get(REGISTER).status_code == 403


def test_staff_who_may_change_versions_see_the_gate_buttons(admin_client, active_tiny):
    assert 'id="gate-actions"' in admin_client.get(f"{CHANGELIST}{active_tiny.pk}/change/").content.decode()


# ---- predictions and tokens -------------------------------------------------------------------

def test_the_prediction_changelist_renders(admin_client, active_tiny, jpeg_bytes):
    best = predict(admin_client, jpeg_bytes).json()["predictions"][0]["label"]
    page = admin_client.get("/admin/webapp/prediction/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'<td class="field-best">{best}</td>' in text
    assert f"{TINY_NAME} v1" in text
    assert admin_client.get(f"/admin/webapp/prediction/{Prediction.objects.get().pk}/change/").status_code == 200


def test_a_token_made_in_the_admin_is_shown_once_and_stored_as_a_hash(admin_client, active_tiny, jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    reply = admin_client.post("/admin/webapp/apitoken/add/", {"name": "ci-bot", "is_active": "on"}, follow=True)
    assert reply.status_code == 200
    found = [re.search(r"Token for ci-bot: (\S+) \(copy it now", m) for m in messages_of(reply)]
    keys = [m.group(1) for m in found if m]
    assert len(keys) == 1
    key = keys[0]
    token = ApiToken.objects.get()
    assert token.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:8]
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.get(object_id=str(token.pk)).object_repr == f"ci-bot ({key[:8]}...)"  # was "ci-bot (...)"
    assert key not in {str(getattr(token, f.attname)) for f in ApiToken._meta.fields}
    assert key not in admin_client.get(f"/admin/webapp/apitoken/{token.pk}/change/").content.decode()
    assert key not in admin_client.get("/admin/webapp/apitoken/").content.decode()
    assert admin_client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_a_token_made_inactive_in_the_admin_does_not_authenticate(admin_client, active_tiny, jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    reply = admin_client.post("/admin/webapp/apitoken/add/", {"name": "later"}, follow=True)
    key = next(re.search(r"Token for later: (\S+) ", m).group(1) for m in messages_of(reply) if "Token for" in m)
    assert ApiToken.objects.get().is_active is False
    reply = admin_client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_error(reply, 401, "unauthorized")



def test_a_revoked_token_cannot_be_turned_back_on_in_the_admin(admin_client, active_tiny, jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    token, key = services.api_token_create(name="bot", user=None, is_active=True)
    changelist = "/admin/webapp/apitoken/"
    admin_client.post(changelist, {"action": "revoke_selected", "_selected_action": [token.pk]}, follow=True)
    assert ApiToken.objects.get().is_active is False
    admin_client.post(f"{changelist}{token.pk}/change/", {"name": "bot", "is_active": "on"}, follow=True)
    assert ApiToken.objects.get().is_active is False
    reply = admin_client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_error(reply, 401, "unauthorized")


def test_a_tokens_user_cannot_be_changed_so_a_deactivated_users_token_stays_dead(admin_client, django_user_model, active_tiny, jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    owner = django_user_model.objects.create_user("plain", password="pw-plain-123")
    token, key = services.api_token_create(name="bot", user=owner, is_active=True)
    owner.is_active = False
    owner.save()
    admin_client.post(f"/admin/webapp/apitoken/{token.pk}/change/", {"name": "bot", "user": ""}, follow=True)
    assert ApiToken.objects.get().user_id == owner.pk
    reply = admin_client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_error(reply, 401, "unauthorized")


def test_staff_who_are_not_superusers_make_tokens_in_their_own_name_only(client, django_user_model, admin_user):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staff1", password="pw-staff-123", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken", "change_apitoken"]))
    client.force_login(staff)
    form = client.get("/admin/webapp/apitoken/add/").content.decode()
    assert f'<option value="{staff.pk}"' in form and f'<option value="{admin_user.pk}"' not in form
    assert '<option value=""' not in form  # nor "no user", which outlives its maker's deactivation
    client.post("/admin/webapp/apitoken/add/", {"name": "as-root", "user": admin_user.pk, "is_active": "on"})
    client.post("/admin/webapp/apitoken/add/", {"name": "as-nobody", "user": "", "is_active": "on"})
    client.post("/admin/webapp/apitoken/add/", {"name": "mine", "user": staff.pk, "is_active": "on"})
    assert list(ApiToken.objects.values_list("name", "user__username")) == [("mine", "staff1")]


@pytest.mark.parametrize("query", ["name=a%00b", "name__exact=a%00b", "a%00=1"])
def test_an_admin_filter_holding_a_nul_is_a_400_not_a_database_error(admin_client, active_tiny, query):
    # PostgreSQL refuses to compare text holding NUL: the admin's filters were a 500 with a traceback there.
    reply = admin_client.get(f"{CHANGELIST}?{query}")
    assert reply.status_code == 400 and b"NUL" in reply.content
    assert admin_client.get(f"{CHANGELIST}?name={TINY_NAME}").status_code == 200


def test_the_revoke_action_counts_only_the_tokens_it_turned_off(admin_client):
    on, _ = services.api_token_create(name="on", user=None, is_active=True)
    off, _ = services.api_token_create(name="off", user=None, is_active=True)
    services.api_token_revoke(token=off)
    reply = admin_client.post("/admin/webapp/apitoken/", {"action": "revoke_selected", "_selected_action": [on.pk, off.pk]}, follow=True)
    said = messages_of(reply)
    assert any("Revoked 1 token;" in m for m in said) and any("already revoked" in m for m in said)
    assert not ApiToken.objects.filter(is_active=True).exists()


def test_activating_the_active_version_says_nothing_changed_and_audits_nothing(admin_client, active_tiny):
    before = Activation.objects.count()
    reply = action(admin_client, "activate_selected", active_tiny)
    assert any("already the active version" in m for m in messages_of(reply))
    assert Activation.objects.count() == before


def test_a_manifest_whose_model_name_could_leave_a_folder_is_not_registered(admin_client, models_dir, tiny_artifact):
    import json as json_module

    h5 = models_dir / "odd.h5"
    shutil.copy(tiny_artifact, h5)
    manifest = json_module.loads(tiny_artifact.with_suffix(".json").read_text())
    (models_dir / "odd.json").write_text(json_module.dumps({**manifest, "name": "Bad Name/../x"}))
    with pytest.raises(services.RegistrationError, match="lowercase letters"):
        services.model_version_register(artifact_path=h5)
    assert not ModelVersion.objects.filter(name="Bad Name/../x").exists()
