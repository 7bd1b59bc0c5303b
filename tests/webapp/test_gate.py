"""The promotion gate: golden-set figures for candidate and active, refusal, a superuser's audited override."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
from django.test import Client

from recognizer.engine import Engine
from tests.conftest import TINY_NAME
from tests.synthetic import picture
from tests.webapp.helpers import encode
from tests.webapp.learning import keeping  # noqa: F401
from webapp import services
from webapp.models import GateCheck, GateOverride, GoldenSet, ModelVersion


@pytest.fixture
def versions(db, settings, tiny_artifact, tiny_artifact_v2, artifact_copy, fresh_runtime, tmp_path):
    """v1 active, v2 registered: two tiny models with different weights."""
    settings.VAR_DIR = tmp_path / "var"
    v1 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact, stem="v1"), activate=True)
    v2 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2, stem="v2"))
    return v1, v2


def golden_by(version: ModelVersion, folder: Path, count: int = 24) -> Path:
    """Pictures filed under the class `version` answers for each: that version scores 100% on them."""
    engine = Engine.from_path(version.artifact_path)
    kinds = ["red-stripes", "green-blocks", "blue-circle", "purple-cross"]
    for i in range(count):
        image = picture(kinds[i % 4], seed=300 + i)
        best = int(np.argmax(engine.probabilities(engine.prepare(image))[0]))
        target = folder / engine.manifest.classes[best].id
        target.mkdir(parents=True, exist_ok=True)
        image.save(target / f"g{i}.png")
    return folder


def agreement(a: ModelVersion, b: ModelVersion, folder: Path) -> float:
    """How often `b` answers the folder's class, i.e. agrees with the version the golden set was filed by."""
    engine = Engine.from_path(b.artifact_path)
    files = sorted(folder.rglob("*.png"))
    hits = sum(engine.manifest.classes[int(np.argmax(engine.probabilities(engine.prepare(_open(p)))[0]))].id == p.parent.name for p in files)
    return hits / len(files)


def _open(path: Path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_a_version_registered_where_a_golden_set_exists_is_scored_against_the_active_one(
    db, settings, tiny_artifact, tiny_artifact_v2, artifact_copy, fresh_runtime, tmp_path
):
    settings.VAR_DIR = tmp_path / "var"
    v1 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact, stem="v1"), activate=True)
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    v2 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2, stem="v2"))
    check = GateCheck.objects.get(candidate=v2)
    assert check.active == v1 and check.active_top1 == 1.0  # the golden set was filed by v1's own answers
    assert check.candidate_top1 == pytest.approx(agreement(v1, v2, tmp_path / "golden"))


def test_without_a_golden_set_the_gate_lets_the_activation_through_and_says_so(admin_client, versions):
    v1, v2 = versions
    reply = admin_client.post("/admin/webapp/modelversion/", {"action": "activate_selected", "_selected_action": [v2.pk]}, follow=True)
    assert ModelVersion.objects.get(pk=v2.pk).is_active
    assert f"{TINY_NAME} has no golden set" in reply.content.decode()  # said as written, model name in lower case


def test_a_worse_candidate_is_refused_with_both_figures(versions, tmp_path):
    v1, v2 = versions
    golden = golden_by(v1, tmp_path / "golden")
    expected = agreement(v1, v2, golden)
    assert expected < 0.99  # the two tiny models disagree on some pictures, so v2 is worse than v1 here
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden))
    with pytest.raises(services.ActivationError) as refused:
        services.model_version_activate(version=v2)
    message = str(refused.value)
    assert f"candidate v2 top-1 {expected:.1%}" in message and "active v1 top-1 100.0%" in message
    assert "a superuser may force" in message
    assert ModelVersion.objects.get(is_active=True) == v1
    check = GateCheck.objects.get()
    assert (check.candidate, check.active, check.images) == (v2, v1, 24)
    assert check.candidate_top1 == pytest.approx(expected) and check.active_top1 == 1.0


def test_a_candidate_at_least_as_good_is_activated(versions, tmp_path):
    v1, v2 = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v2, tmp_path / "golden")))
    services.model_version_activate(version=v2)  # v2 scores 100%, v1 less
    assert ModelVersion.objects.get(is_active=True) == v2


def test_the_allowed_drop_is_a_setting(versions, tmp_path, settings):
    v1, v2 = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    settings.PROMOTION_MAX_DROP_POINTS = 100
    services.model_version_activate(version=v2)
    assert ModelVersion.objects.get(is_active=True) == v2


def test_a_superuser_forces_a_refused_activation_with_a_reason_that_is_audited(admin_client, admin_user, versions, tmp_path):
    v1, v2 = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    page = f"/admin/webapp/modelversion/{v2.pk}/"
    refused = admin_client.post("/admin/webapp/modelversion/", {"action": "activate_selected", "_selected_action": [v2.pk]}, follow=True)
    assert "points lower" in refused.content.decode() and not ModelVersion.objects.get(pk=v2.pk).is_active
    assert "Give the reason" in admin_client.post(f"{page}force/", {"reason": " "}, follow=True).content.decode()
    forced = admin_client.post(f"{page}force/", {"reason": "v1 misses the new species entirely"}, follow=True)
    assert ModelVersion.objects.get(pk=v2.pk).is_active
    assert [str(m) for m in forced.context["messages"]][0] == (
        f"{TINY_NAME} v2 is now active, forced against the gate (reason kept in the audit: v1 misses the new species "
        "entirely); every worker switches within a few seconds.")
    override = GateOverride.objects.get()
    assert (override.by, override.reason, override.check_run.candidate) == (admin_user, "v1 misses the new species entirely", v2)


def test_staff_who_are_not_superusers_cannot_force(django_user_model, versions, tmp_path):
    v1, v2 = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    user = django_user_model.objects.create_user("staffer", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.post(f"/admin/webapp/modelversion/{v2.pk}/force/", {"reason": "because"}).status_code == 403
    with pytest.raises(services.ActivationError):
        services.model_version_activate(version=v2, by=user, force_reason="because")  # the service checks too
    assert not GateOverride.objects.exists()


def test_the_version_page_shows_both_figures_side_by_side(admin_client, versions, tmp_path):
    v1, v2 = versions
    golden = golden_by(v1, tmp_path / "golden")
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden))
    page = f"/admin/webapp/modelversion/{v2.pk}/change/"
    assert "Not scored yet" in admin_client.get(page).content.decode()
    scored = admin_client.post(f"/admin/webapp/modelversion/{v2.pk}/gate/", follow=True)
    assert "Golden set (24 photos)" in scored.content.decode()
    html = admin_client.get(page).content.decode()
    assert 'id="gate-figures"' in html
    assert f"{agreement(v1, v2, golden):.1%}" in html and "v1: 100.0%" in html


def test_rolling_back_is_not_gated(versions, tmp_path):
    v1, v2 = versions
    services.model_version_activate(version=v2)  # before the golden set exists
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v2, tmp_path / "golden")))
    services.model_version_rollback(name=TINY_NAME)
    assert ModelVersion.objects.get(is_active=True) == v1


def test_a_version_that_knows_none_of_the_golden_classes_scores_zero(versions, tmp_path):
    from tests.synthetic import write_dataset

    v1, v2 = versions
    golden = write_dataset(tmp_path / "golden", {"heron": 2, "moss": 2})  # classes neither tiny version has
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden))
    services.model_version_activate(version=v2)  # 0% against 0%: not worse
    check = GateCheck.objects.get()
    assert (check.candidate_top1, check.active_top1) == (0.0, 0.0)


def test_a_golden_set_is_checked_when_saved_in_the_admin_so_a_bad_one_cannot_block_activations(admin_client, versions, tmp_path):
    v1, _ = versions
    add = "/admin/webapp/goldenset/add/"
    (tmp_path / "empty" / "owl").mkdir(parents=True)
    for form, problem in [
        ({"model_name": TINY_NAME, "path": str(tmp_path / "nowhere")}, "There is no folder"),
        ({"model_name": TINY_NAME, "path": str(tmp_path / "empty")}, "holds no photos"),
        ({"model_name": "no-such-model", "path": str(golden_by(v1, tmp_path / "golden"))}, "No model named"),
        ({"model_name": TINY_NAME, "path": ""}, "or choose an exported dataset"),
    ]:
        reply = admin_client.post(add, form)
        assert reply.status_code == 200 and problem in reply.content.decode(), form
    assert not GoldenSet.objects.exists()
    admin_client.post(add, {"model_name": TINY_NAME, "path": str(tmp_path / "golden")})
    assert GoldenSet.objects.get().path == str(tmp_path / "golden")


def test_staff_who_are_not_superusers_cannot_name_a_server_folder_so_refusals_map_nothing(client, django_user_model, versions, tmp_path):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staff1", password="pw-staff-123", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_goldenset", "change_goldenset", "view_goldenset"]))
    client.force_login(staff)
    golden = golden_by(versions[0], tmp_path / "golden")
    for folder in (tmp_path / "nowhere", tmp_path, golden):  # none, one without photos, a good one: all said alike
        reply = client.post("/admin/webapp/goldenset/add/", {"model_name": TINY_NAME, "path": str(folder)})
        text = html.unescape(reply.content.decode())
        assert reply.status_code == 200 and "Only a superuser may name a folder on the server" in text
        assert "There is no folder" not in text and "holds no photos" not in text
    assert not GoldenSet.objects.exists()
    kept = GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden))  # a superuser's
    reply = client.post(f"/admin/webapp/goldenset/{kept.pk}/change/", {"model_name": TINY_NAME, "path": str(golden)})
    assert "Only a superuser may name a folder on the server" in html.unescape(reply.content.decode())  # no re-read


def test_a_golden_set_naming_none_of_the_models_classes_is_refused_and_one_of_domains_is_scored_by_domain(
    admin_client, versions, tmp_path
):
    # Saved without a word, it scored every version 0% and so let any candidate through.
    from webapp import promotion

    v1, v2 = versions
    strangers = tmp_path / "strangers"
    for n, folder in enumerate(["zebra", "walrus"]):
        (strangers / folder).mkdir(parents=True)
        picture("red-stripes", seed=n).save(strangers / folder / "p.png")
    reply = admin_client.post("/admin/webapp/goldenset/add/", {"model_name": TINY_NAME, "path": str(strangers)})
    assert f"None of the subfolders of {strangers} names a class of {TINY_NAME}" in html.unescape(reply.content.decode())
    assert not GoldenSet.objects.exists()

    domains, engine = tmp_path / "domains", Engine.from_path(v1.artifact_path)
    for n, kind in enumerate(["red-stripes", "green-blocks", "blue-circle", "purple-cross"]):
        image = picture(kind, seed=n)
        best = engine.manifest.classes[int(np.argmax(engine.probabilities(engine.prepare(image))[0]))]
        (domains / best.domain).mkdir(parents=True, exist_ok=True)  # filed under the domain of v1's answer
        image.save(domains / best.domain / f"p{n}.png")
    admin_client.post("/admin/webapp/goldenset/add/", {"model_name": TINY_NAME, "path": str(domains)})
    assert GoldenSet.objects.get().path == str(domains)
    check = promotion.gate_check_run(candidate=v2)
    assert check.images == 4 and check.active_top1 == 1.0  # scored by domain: was 0% for every version


def test_only_readable_images_in_class_subfolders_make_a_golden_set(admin_client, versions, tmp_path):
    v1, v2 = versions
    loose = tmp_path / "loose"
    (loose / "owl").mkdir(parents=True)
    (loose / "a.jpg").write_text("not a photo, and not in a class folder")
    (loose / "owl" / "notes.txt").write_text("not a photo")
    reply = admin_client.post("/admin/webapp/goldenset/add/", {"model_name": TINY_NAME, "path": str(loose)})
    assert "holds no photos in class subfolders" in reply.content.decode()
    golden = golden_by(v1, tmp_path / "golden")
    (next(p for p in golden.iterdir() if p.is_dir()) / "notes.txt").write_text("not a photo")
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden))
    from webapp import promotion

    assert promotion.gate_check_run(candidate=v2).images == 24


def test_a_golden_set_whose_dataset_was_deleted_refuses_activation_instead_of_scoring_the_working_folder(versions, tmp_path):
    from webapp.models import Dataset

    v1, v2 = versions
    folder = golden_by(v1, tmp_path / "golden")
    dataset = Dataset.objects.create(path=str(folder), images=24, from_feedback=0, counts={}, files=[], digest="d" * 64)
    GoldenSet.objects.create(model_name=TINY_NAME, dataset=dataset)
    dataset.delete()
    with pytest.raises(services.ActivationError, match="lost its dataset"):
        services.model_version_activate(version=v2)
    assert not GateCheck.objects.exists() and not ModelVersion.objects.get(pk=v2.pk).is_active


def test_the_activate_command_forces_a_refused_activation_only_for_a_superuser_and_audits_it(versions, tmp_path, admin_user, django_user_model):
    import io

    from django.core.management import CommandError, call_command

    v1, v2 = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    django_user_model.objects.create_user("staffer", is_staff=True)
    out = io.StringIO()
    run = lambda *args: call_command("activate", TINY_NAME, "2", *args, stdout=out)  # noqa: E731
    with pytest.raises(CommandError, match="manage.py activate NAME VERSION --force REASON --by SUPERUSER"):
        run()
    for by in ((), ("--by", "staffer")):
        with pytest.raises(CommandError, match="--force needs --by naming an active superuser"):
            run("--force", "because", *by)
    for empty in ("", "  "):  # an empty reason was dropped without a word, and the gate's refusal said it again
        with pytest.raises(CommandError, match="--force needs a reason"):
            run("--force", empty, "--by", admin_user.username)
    assert not GateOverride.objects.exists() and not ModelVersion.objects.get(pk=v2.pk).is_active
    run("--force", "v1 misses the new species", "--by", admin_user.username)
    assert ModelVersion.objects.get(pk=v2.pk).is_active
    assert out.getvalue().startswith(f"{TINY_NAME} v2 is active, forced against the gate (audited: v1 misses the new species);")
    assert f"\nGolden set (" in out.getvalue()  # the figures the override went against, as the admin shows them
    assert (GateOverride.objects.get().by, GateOverride.objects.get().reason) == (admin_user, "v1 misses the new species")



def test_a_golden_photo_someone_uploaded_and_a_job_trained_on_is_flagged_though_its_kept_copy_differs(
    client, keeping, tiny_artifact_v2, artifact_copy, tmp_path
):
    # Kept photos are re-encoded, so the dataset's file never had the golden photo's digest: the flag missed it.
    from tests.webapp.learning import feedback_on
    from webapp import promotion
    from webapp.models import Dataset, Feedback, TrainingJob

    golden = tmp_path / "golden" / "owl"
    golden.mkdir(parents=True)
    photo = golden / "owl.jpg"
    photo.write_bytes(encode(picture("red-stripes", seed=5), "JPEG", quality=95))
    item = Feedback.objects.get(prediction_id=feedback_on(client, photo.read_bytes(), label="owl", domain="bird"))
    dataset = Dataset.objects.create(path=str(tmp_path / "data"), images=1, from_feedback=1, counts={"owl": 1},
                                     files=[["owl/kept.jpg", "0" * 64]], digest="d" * 64)
    dataset.feedback.set([item])
    candidate = services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2, stem="v2"))
    TrainingJob.objects.create(dataset=dataset, model_name=TINY_NAME, backbone="efficientnet_lite0", epochs=1,
                               version=candidate, status="succeeded")
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(tmp_path / "golden"))
    assert promotion.gate_check_run(candidate=candidate).trained_on_golden == 1



def test_scoring_the_active_version_says_it_is_the_figure_candidates_meet_not_that_none_is_active(admin_client, versions, tmp_path):
    v1, _ = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden")))
    page = admin_client.post(f"/admin/webapp/modelversion/{v1.pk}/gate/", follow=True).content.decode()
    assert "This is the active version: candidates are compared with this figure." in page
    assert "No active version to compare with" not in page


def test_the_gate_sentence_names_one_photo_and_the_active_version_as_such(admin_client, versions, tmp_path):
    v1, _ = versions
    GoldenSet.objects.create(model_name=TINY_NAME, path=str(golden_by(v1, tmp_path / "golden", count=1)))
    page = admin_client.post(f"/admin/webapp/modelversion/{v1.pk}/gate/", follow=True).content.decode()
    assert "Golden set (1 photo): active v1 top-1 100.0%." in page  # not "(1 photos): candidate v1"


def test_without_a_golden_set_the_chinese_admin_says_so_in_chinese(admin_client, versions):
    _, v2 = versions
    reply = admin_client.post("/admin/webapp/modelversion/", {"action": "activate_selected", "_selected_action": [v2.pk]},
                              follow=True, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert f"{TINY_NAME} 没有黄金集" in reply.content.decode()
