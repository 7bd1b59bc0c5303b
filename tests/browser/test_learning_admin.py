"""The learning loop's admin pages in a real chromium: the review queue, a job's live progress, the gate's figures."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP
from tests.synthetic import picture
from tests.webapp.helpers import encode

PASSWORD = "browser-admin-password"


@pytest.fixture
def admin_page(browser, live_server, live_tiny, django_user_model, settings, tmp_path):
    settings.FEEDBACK_ENABLED, settings.MEDIA_ROOT = True, tmp_path / "media"
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    context = browser.new_context(**DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(live_server.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    yield page
    context.close()


def feedback_items(live_server) -> None:
    import requests

    for seed, (kind, label, domain) in enumerate([("red-stripes", "Red fox", "animal"), ("blue-circle", "Bluebell", "plant")]):
        data = encode(picture(kind, seed=seed, size=240), "JPEG", quality=90)
        reply = requests.post(live_server.url + "/api/v1/predict", files={"image": ("p.jpg", data, "image/jpeg")}, timeout=10)
        said = requests.post(live_server.url + f"/api/v1/predictions/{reply.json()['id']}/feedback", timeout=10,
                             json={"correct": False, "label": label, "domain": domain})
        assert said.status_code == 201, said.text


@pytest.mark.browser
def test_a_reviewer_sees_the_photos_and_accepts_one_with_a_final_label(admin_page, live_server, artifacts):
    from webapp.models import Feedback

    feedback_items(live_server)
    admin_page.goto(live_server.url + "/admin/webapp/feedback/")
    thumbnails = admin_page.locator("#result_list img")
    expect(thumbnails).to_have_count(2)
    assert all(admin_page.evaluate("img => img.naturalWidth", t.element_handle()) > 0 for t in thumbnails.all())  # loaded
    admin_page.screenshot(path=str(artifacts / "review-queue.png"), full_page=True)
    admin_page.locator("#result_list").get_by_role("link", name="review", exact=True).first.click()
    admin_page.select_option("#id_decision", "accept")
    admin_page.fill("#id_label", "Bluebell (Hyacinthoides)")
    admin_page.select_option("#id_domain", "plant")
    admin_page.click("input[type=submit]")
    expect(admin_page.locator(".messagelist")).to_contain_text("accepted Bluebell (Hyacinthoides)")
    assert Feedback.objects.filter(status="accepted", final_label="Bluebell (Hyacinthoides)").count() == 1


@pytest.mark.browser
def test_a_running_jobs_page_follows_its_progress_and_shows_the_gates_figures(admin_page, live_server, live_tiny, tiny_artifact_v2, artifacts):
    from webapp.models import Dataset, GateCheck, TrainingJob

    dataset = Dataset.objects.create(path="/srv/data/reserve-2026-11", images=48, from_feedback=12, counts={"red-fox": 24, "bluebell": 24},
                                     files=[], digest="a" * 64)
    job = TrainingJob.objects.create(dataset=dataset, model_name=live_tiny.name, backbone="efficientnet_lite0", epochs=40,
                                     status="running", progress={"phase": "head", "epoch": 3, "epochs": 40, "loss": 0.91,
                                                                 "accuracy": 0.62, "val_accuracy": None, "seconds_left": 37.0})
    admin_page.goto(live_server.url + f"/admin/webapp/trainingjob/{job.pk}/change/")
    expect(admin_page.locator("#job-progress")).to_have_text("head epoch 3/40 · loss 0.910 · accuracy 0.620 · about 37 s left in this phase")
    TrainingJob.objects.filter(pk=job.pk).update(progress={**job.progress, "epoch": 4, "seconds_left": 30.0})
    expect(admin_page.locator("#job-progress")).to_contain_text("head epoch 4/40")  # the page polls, no reload
    expect(admin_page.locator("#cancel-job")).to_be_visible()
    admin_page.screenshot(path=str(artifacts / "training-job.png"), full_page=True)
    admin_page.click("#cancel-job")
    expect(admin_page.locator(".messagelist")).to_contain_text("stops between two batches")
    assert TrainingJob.objects.get(pk=job.pk).cancel_requested

    from webapp import services

    candidate = services.model_version_register(artifact_path=tiny_artifact_v2)
    GateCheck.objects.create(candidate=candidate, active=live_tiny, golden_path="/srv/golden/reserve", golden_digest="b" * 64,
                             images=60, candidate_top1=0.9333, active_top1=0.95)
    admin_page.goto(live_server.url + f"/admin/webapp/modelversion/{candidate.pk}/change/")
    expect(admin_page.locator("#gate-figures")).to_contain_text("93.3%")
    expect(admin_page.locator("#gate-figures")).to_contain_text("v1: 95.0%")
    expect(admin_page.get_by_role("button", name="Force activation")).to_be_visible()
    admin_page.locator("#gate-figures").scroll_into_view_if_needed()
    admin_page.screenshot(path=str(artifacts / "gate-figures.png"))
