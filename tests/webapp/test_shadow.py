"""Shadow comparison: an inactive version classifies a sample of live requests in the background; the admin
shows how often it agrees with the active version and where it differs."""

from __future__ import annotations

import pytest

from recognizer.engine import Engine
from recognizer.preprocessing import open_image
from tests.synthetic import picture
from tests.webapp.helpers import encode, predict
from webapp import services, shadow
from webapp.models import Shadow, ShadowResult

KINDS = ["red-stripes", "green-blocks", "blue-circle", "purple-cross"]


@pytest.fixture
def in_shadow(transactional_db, settings, tiny_artifact, tiny_artifact_v2, artifact_copy, fresh_runtime):
    """v1 active (the default model), v2 in shadow, every request sampled."""
    from tests.conftest import TINY_NAME

    settings.DEFAULT_MODEL_NAME, settings.SHADOW_SAMPLE_RATE = TINY_NAME, 1.0
    services.model_version_register(artifact_path=artifact_copy(tiny_artifact, stem="v1"), activate=True)
    v2 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact_v2, stem="v2"))
    return shadow.shadow_start(version=v2)


def sampled(client, data: bytes) -> dict:
    """Predict, then let the shadow finish: beyond a backlog of 4 the shadow skips samples, by design."""
    body = predict(client, data).json()
    shadow.runner().wait()
    return body


def photos(count: int = 8) -> list[bytes]:
    return [encode(picture(KINDS[i % 4], seed=40 + i), "JPEG", quality=90) for i in range(count)]


def top1(version, data: bytes) -> str:
    engine = Engine.from_path(version.artifact_path)
    return engine.rank(engine.probabilities(engine.prepare(open_image(data))), top_k=1)[0][0].label


def test_sampled_requests_are_also_classified_by_the_shadow_and_compared(client, in_shadow):
    sent = photos()
    bodies = [sampled(client, data) for data in sent]
    results = {r.prediction_id: r for r in ShadowResult.objects.filter(shadow=in_shadow)}
    assert set(results) == {b["id"] for b in bodies}
    for data, body in zip(sent, bodies):
        result = results[body["id"]]
        assert result.active_label == body["predictions"][0]["label"]
        assert result.shadow_label == top1(in_shadow.version, data)
        assert result.agrees == (result.active_label == result.shadow_label)
    summary = shadow.shadow_agreement(shadow=in_shadow)
    agreeing = sum(r.agrees for r in results.values())
    assert summary["compared"] == 8 and summary["agreement"] == pytest.approx(agreeing / 8)
    assert sum(d["count"] for d in summary["differences"]) == 8 - agreeing


def test_the_replies_are_the_active_versions_whatever_the_shadow_says(client, in_shadow):
    assert sampled(client, photos(1)[0])["model"]["version"] == 1


def test_a_shadow_that_falls_behind_skips_samples_instead_of_queueing_them(client, in_shadow):
    gate = __import__("threading").Event()
    shadow.runner().executor.submit(gate.wait)  # the shadow's thread is busy
    for data in photos(8):
        predict(client, data)
    gate.set()
    shadow.runner().wait()
    assert ShadowResult.objects.count() == shadow.BACKLOG


def test_no_request_is_sampled_at_rate_zero_or_once_the_shadow_stops(client, in_shadow, settings):
    settings.SHADOW_SAMPLE_RATE = 0.0
    predict(client, photos(1)[0])
    settings.SHADOW_SAMPLE_RATE = 1.0
    shadow.shadow_stop(shadow=in_shadow)
    predict(client, photos(1)[0])
    shadow.runner().wait()
    assert not ShadowResult.objects.exists()


def test_stopping_a_stopped_shadow_says_so_and_keeps_its_stop_time(admin_client, in_shadow):
    assert shadow.shadow_stop(shadow=in_shadow) is True
    stopped_at = Shadow.objects.get(pk=in_shadow.pk).stopped_at
    reply = admin_client.post("/admin/webapp/shadow/", {"action": "stop_selected", "_selected_action": [in_shadow.pk]}, follow=True)
    page = reply.content.decode()
    assert "already stopped; nothing changed" in page and "Stopped 1" not in page
    assert Shadow.objects.get(pk=in_shadow.pk).stopped_at == stopped_at


def test_an_active_version_cannot_be_put_in_shadow(in_shadow):
    from webapp.models import ModelVersion

    with pytest.raises(shadow.ShadowError, match="is active"):
        shadow.shadow_start(version=ModelVersion.objects.get(is_active=True))


def test_a_version_whose_file_changed_since_registration_cannot_be_put_in_shadow(in_shadow):
    # It was accepted, then every sample failed with a checksum traceback in the log and "0 compared" on the page.
    from pathlib import Path

    version = in_shadow.version
    shadow.shadow_stop(shadow=in_shadow)
    with open(Path(version.artifact_path), "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(shadow.ShadowError, match="changed on disk since it was registered"):
        shadow.shadow_start(version=version)
    assert not Shadow.objects.filter(stopped_at__isnull=True).exists()


def test_the_admin_puts_a_version_in_shadow_and_shows_agreement_and_differences(admin_client, client, in_shadow):
    from webapp.models import ModelVersion

    v2 = in_shadow.version
    reply = admin_client.post("/admin/webapp/modelversion/", {"action": "shadow_selected", "_selected_action": [v2.pk]}, follow=True)
    assert "in shadow" in reply.content.decode()
    current = Shadow.objects.get(stopped_at__isnull=True)
    assert current.version == v2 and Shadow.objects.get(pk=in_shadow.pk).stopped_at is not None  # replaced
    for data in photos():
        sampled(client, data)
    summary = shadow.shadow_agreement(shadow=current)
    listing = admin_client.get("/admin/webapp/shadow/").content.decode()
    assert f"{summary['agreement']:.1%}" in listing
    page = admin_client.get(f"/admin/webapp/shadow/{current.pk}/change/").content.decode()
    if summary["differences"]:
        first = summary["differences"][0]
        assert 'id="shadow-differences"' in page and f"<td>{first['active_label']}</td><td>{first['shadow_label']}</td>" in page
    assert not ModelVersion.objects.get(pk=v2.pk).is_active


def test_the_shadow_pages_speak_the_admin_s_language(admin_client, in_shadow):
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
    listing = admin_client.get("/admin/webapp/shadow/", **zh).content.decode()
    assert "停止所选影子" in listing and "已比较的请求" in listing and "与当前版本一致" in listing
    reply = admin_client.post("/admin/webapp/shadow/", {"action": "stop_selected", "_selected_action": [in_shadow.pk]}, follow=True, **zh)
    assert "已停止 1 个影子。" in reply.content.decode()
    version_page = admin_client.get(f"/admin/webapp/modelversion/{in_shadow.version.pk}/change/", **zh).content.decode()
    assert "在黄金集上评分" in version_page and "上线把关" in version_page


def test_activating_the_version_in_shadow_ends_its_shadow(in_shadow):
    services.model_version_activate(version=in_shadow.version)
    assert Shadow.objects.get(pk=in_shadow.pk).stopped_at is not None


def test_agreement_counts_only_comparisons_with_the_version_active_now(admin_client, client, in_shadow, tiny_artifact, artifact_copy):
    # Comparisons with v1 and with v3 were one figure: "16 compared, 75%" after an activation in between.
    for data in photos(4):
        sampled(client, data)
    v3 = services.model_version_register(artifact_path=artifact_copy(tiny_artifact, stem="v3"))
    services.model_version_activate(version=v3)
    from webapp import runtime

    runtime.runtime().refresh()
    for data in photos(2):
        sampled(client, data)
    summary = shadow.shadow_agreement(shadow=in_shadow)
    assert (summary["compared"], summary["earlier"]) == (2, 4)
    assert "2 (and 4 with a version active before, not counted)" in admin_client.get("/admin/webapp/shadow/").content.decode()
