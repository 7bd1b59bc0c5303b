"""The browser page: the form, the server-rendered result, and the same POST answering JSON."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from tests.conftest import TINY_NAME, save_tiny
from tests.webapp.helpers import assert_error, predict, upload
from webapp import services
from webapp.models import Prediction

OTHER_NAME = "tiny-other"


@pytest.fixture(scope="session")
def other_artifact(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("other") / "tiny-other.h5", name=OTHER_NAME, seed=3)


@pytest.fixture
def browser(active_tiny) -> Client:
    return Client(enforce_csrf_checks=True)


def csrf_token(page) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match, "the form has no CSRF token"
    return match.group(1)


def submit(browser: Client, data: bytes, name: str = "photo.jpg", headers: dict | None = None, **fields):
    token = csrf_token(browser.get("/"))
    form = {"csrfmiddlewaretoken": token, "image": upload(data, name), "top_k": "5", "domain": "", **fields}
    return browser.post("/", form, headers=headers or {})


def shown_labels(page) -> list[str]:
    """The labels of the server-rendered result list (not of the empty row template for JavaScript)."""
    result = re.search(r'<ol id="predictions".*?</ol>', page.content.decode(), re.S)
    return re.findall(r'<span class="label">([^<]*)</span>', result.group(0)) if result else []


def test_the_page_renders_the_upload_form(browser):
    page = browser.get("/")
    assert page.status_code == 200
    text = page.content.decode()
    assert csrf_token(page)
    assert 'enctype="multipart/form-data"' in text
    assert re.search(r'<input[^>]+type="file"[^>]+name="image"', text)
    assert 'name="domain"' in text
    assert '<select id="model"' not in text  # one model name: nothing to choose


def _upload_input_and_hint(page) -> tuple[str, str]:
    text = page.content.decode()
    accept = re.search(r'<input type="file" id="image"[^>]* accept="([^"]*)"', text).group(1)
    hint = html.unescape(re.search(r'<p id="image-hint" class="hint">(.*?)</p>', text, re.S).group(1))
    return accept, hint


def test_the_page_says_which_files_it_takes_as_the_settings_in_force_say(browser, settings):
    # It said "JPEG, PNG, WebP, GIF or BMP, up to 10 MB" whatever the settings, offered every image type to choose,
    # and never named the pixel limits a phone's 48-megapixel photo runs into.
    assert _upload_input_and_hint(browser.get("/")) == (
        "image/jpeg,image/png,image/webp,image/gif,image/bmp",
        "JPEG, PNG, WebP, GIF or BMP, up to 10\u00a0MB (JPEG up to 40 megapixels, other formats 16)",  # "10 MB" kept whole
    )
    assert _upload_input_and_hint(browser.get("/", headers={"Accept-Language": "zh-CN"}))[1] == (
        "JPEG、PNG、WebP、GIF 或 BMP，最大 10\u00a0MB（JPEG 最多 40 百万像素，其他格式 16 百万像素）"
    )

    settings.ALLOWED_IMAGE_FORMATS = ("JPEG", "PNG")
    settings.UPLOAD_MAX_BYTES, settings.MAX_FULL_DECODE_PIXELS = 5_500_000, 50_000_000
    assert _upload_input_and_hint(browser.get("/")) == ("image/jpeg,image/png", "JPEG or PNG, up to 5.5\u00a0MB and 40 megapixels")


def test_the_model_selector_appears_with_two_active_model_names(browser, other_artifact):
    other = services.model_version_register(artifact_path=other_artifact)
    assert '<select id="model"' not in browser.get("/").content.decode()  # registered, not active
    services.model_version_activate(version=other)
    text = browser.get("/").content.decode()
    assert '<select id="model"' in text
    assert re.findall(r'<option value="([^"]+)"', text) == sorted([TINY_NAME, OTHER_NAME])
    assert re.search(rf'<option value="{TINY_NAME}"\s+selected', text)  # the default model is preselected


def test_a_post_without_the_csrf_token_is_refused(browser, jpeg_bytes):
    browser.get("/")
    reply = browser.post("/", {"image": upload(jpeg_bytes)})
    assert reply.status_code == 403
    assert not Prediction.objects.exists()


def test_the_result_is_rendered_on_the_server(browser, client, jpeg_bytes):
    page = submit(browser, jpeg_bytes)
    assert page.status_code == 200, page.content[:500]
    expected = predict(client, jpeg_bytes).json()
    assert shown_labels(page) == [p["label"] for p in expected["predictions"]]
    text = page.content.decode()
    assert f"{TINY_NAME} v1" in text
    assert 'src="data:image/jpeg;base64,' in text  # the photo is shown back without JavaScript
    assert Prediction.objects.filter(source="page").count() == 1


def test_a_result_without_a_domain_note_leaves_its_hidden_paragraph_empty(browser, jpeg_bytes):
    text = submit(browser, jpeg_bytes).content.decode()
    note = re.search(r'<p id="domain-note"[^>]*>(.*?)</p>', text, re.S)
    assert note and "hidden" in note.group(0) and note.group(1).strip() == ""


def test_the_page_honours_top_k_and_the_domain(browser, jpeg_bytes):
    assert len(shown_labels(submit(browser, jpeg_bytes, top_k="2"))) == 2
    page = submit(browser, jpeg_bytes, domain="plant")
    assert shown_labels(page) == ["fern"]
    assert re.search(r'id="domain-plant" value="plant"\s+checked', page.content.decode())


def test_the_page_uses_the_chosen_model(browser, jpeg_bytes, other_artifact):
    services.model_version_register(artifact_path=other_artifact, activate=True)
    page = submit(browser, jpeg_bytes, model=OTHER_NAME)
    assert page.status_code == 200
    assert f"{OTHER_NAME} v1" in page.content.decode()


def test_with_accept_json_the_same_post_answers_the_api_shape(browser, client, jpeg_bytes):
    reply = submit(browser, jpeg_bytes, headers={"Accept": "application/json"})
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("application/json")
    body = reply.json()
    expected = predict(client, jpeg_bytes).json()
    assert set(body) == set(expected) == {
        "id", "model", "verdict", "predictions", "timing_ms", "domain_note", "crop_note", "heatmap_png_base64", "allowed_classes"
    }
    assert body["verdict"] == expected["verdict"]
    assert body["model"] == expected["model"]
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected["predictions"]]
    assert [p["probability"] for p in body["predictions"]] == pytest.approx([p["probability"] for p in expected["predictions"]])


def test_the_plain_form_shows_the_verdict_before_the_labels_and_a_heat_map_when_asked(browser, jpeg_bytes):
    html = submit(browser, jpeg_bytes, explain="true").content.decode()
    verdict, labels = html.index('id="verdict-text"'), html.index('id="predictions"')
    assert verdict < labels
    text = html[verdict:labels]
    assert re.search(r"Domain: (animal|bird|plant|other) \(\d+% sure\)", text)
    assert 'id="heatmap"' in text and "data:image/png;base64," in text
    assert "data:image/png;base64," not in submit(browser, jpeg_bytes).content.decode()


def test_the_page_says_when_an_allowed_class_list_limited_the_answer(browser, jpeg_bytes):
    assert "allowed list were considered" not in submit(browser, jpeg_bytes).content.decode()
    services.allowed_class_list_save(model_name=TINY_NAME, classes="owl\nfern\n")
    page = submit(browser, jpeg_bytes)
    assert "Only the classes on this site's allowed list were considered (2 in all)." in html.unescape(page.content.decode())
    assert sorted(shown_labels(page)) == ["fern", "owl"]


def test_a_pdf_gives_the_page_with_a_message_and_415(browser):
    page = submit(browser, b"%PDF-1.7\n%%EOF\n", name="scan.jpg")
    assert page.status_code == 415
    assert page["Content-Type"].startswith("text/html")
    text = html.unescape(page.content.decode())
    assert "This file is not an image we can read (PDF)." in text
    assert csrf_token(page)  # the form is there to try again
    assert shown_labels(page) == []
    assert not Prediction.objects.exists()


def test_a_pdf_with_accept_json_gets_the_error_shape(browser):
    reply = submit(browser, b"%PDF-1.7\n%%EOF\n", headers={"Accept": "application/json"})
    assert "(PDF)" in assert_error(reply, 415, "unsupported_format")["message"]


def test_a_post_without_a_photo_says_so(browser):
    token = csrf_token(browser.get("/"))
    page = browser.post("/", {"csrfmiddlewaretoken": token, "top_k": "5"})
    assert page.status_code == 400
    assert "Choose a photo first." in page.content.decode()


def test_the_page_says_the_service_is_not_ready_before_its_default_model_is_registered(db, fresh_runtime, settings, jpeg_bytes):
    settings.DEFAULT_MODEL_NAME = "never-registered"
    page = submit(Client(enforce_csrf_checks=True), jpeg_bytes)
    assert page.status_code == 503  # the person chose no model: not their mistake
    assert "No active version of the model 'never-registered' is loaded." in html.unescape(page.content.decode())


def test_the_page_says_when_the_model_is_not_ready(db, fresh_runtime, settings, tiny_artifact, jpeg_bytes):
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    services.model_version_register(artifact_path=tiny_artifact)  # registered, never activated: nothing to load
    page = submit(Client(enforce_csrf_checks=True), jpeg_bytes)
    assert page.status_code == 503
    assert page["Retry-After"] == "5"
    text = html.unescape(page.content.decode())
    assert f"No active version of the model '{TINY_NAME}' is loaded." in text and "Try again in a few seconds" in text
    assert '<form' in text  # the page itself, so the person can try again
    assert not Prediction.objects.exists()


def test_the_page_has_a_rate_limit_of_its_own(browser, jpeg_bytes, settings):
    settings.PAGE_RATE_LIMIT = "1/m"
    assert submit(browser, jpeg_bytes).status_code == 200
    page = submit(browser, jpeg_bytes)
    assert page.status_code == 429
    wait = int(page["Retry-After"])
    assert 1 <= wait <= 60
    assert f"Too many requests; try again in {wait} second{'s' if wait > 1 else ''}." in page.content.decode()
    assert Prediction.objects.count() == 1


def test_the_pages_429_says_in_json_how_many_seconds_to_wait_in_the_readers_language(browser, jpeg_bytes, settings):
    settings.PAGE_RATE_LIMIT = "1/m"
    submit(browser, jpeg_bytes)
    reply = submit(browser, jpeg_bytes, headers={"Accept": "application/json", "Accept-Language": "zh-CN"})
    wait = int(reply["Retry-After"])
    assert_error(reply, 429, "rate_limited")
    assert reply.json()["error"]["message"] == f"请求过多，请在 {wait} 秒后再试。"


def test_the_page_and_its_error_pages_name_an_icon_that_is_served(client, db):
    import re

    from django.contrib.staticfiles import finders

    for html in (client.get("/").content.decode(), client.get("/no-such-page").content.decode()):
        (href,) = re.findall(r'<link rel="icon" href="([^"]+)"', html)
        assert finders.find(href.removeprefix("/static/"))


def test_a_share_or_probability_that_rounds_to_nothing_reads_below_one_percent_as_on_the_scripted_page(rf):
    # Without JavaScript the server's rows showed "0% among animal classes" where app.js shows "<1%".
    from django.template.loader import render_to_string
    from django.utils import translation

    rows = [{"label": "tiger", "domain": "animal", "probability": 0.004, "probability_in_domain": 0.003},
            {"label": "lynx", "domain": "animal", "probability": 0.734, "probability_in_domain": 0.996}]
    with translation.override("en"):
        page = render_to_string("index.html", {"result": {"predictions": rows, "model": {}, "timing_ms": {}}}, request=rf.get("/"))
    text = re.search(r'<ol id="predictions".*?</ol>', page, re.S).group(0)  # the rows, not the script's empty template

    shares = [html.unescape(s) for s in re.findall(r'<span class="share">(.*?)</span>', text)]
    probabilities = [html.unescape(p) for p in re.findall(r'<span class="probability">(.*?)</span>', text)]
    assert shares == ["<1% among animal classes", "100% among animal classes"]
    assert probabilities == ["<1%", "73%"]


def test_the_service_pages_carry_a_content_security_policy_without_inline_scripts(client, db, admin_client):
    from webapp.middleware import PAGE_POLICY

    page = client.get("/")
    assert page["Content-Security-Policy"] == PAGE_POLICY and "script-src 'self';" in PAGE_POLICY
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.content.decode())  # every script is a file the policy allows
    assert client.get("/nowhere")["Content-Security-Policy"] == PAGE_POLICY  # an error page too
    assert "Content-Security-Policy" not in admin_client.get("/admin/")  # Django's admin keeps its own rules
    assert "Content-Security-Policy" not in client.get("/api/v1/models")
