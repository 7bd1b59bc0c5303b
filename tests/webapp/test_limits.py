"""Limits an abuser meets: decoding budgets, body sizes on every path, rate limits per image and per client
address (forwarded headers only from trusted proxies), and the page as a rate-limited public demo."""

from __future__ import annotations

import base64
import io
import secrets

import pytest
from django.test import Client
from PIL import Image

from tests.webapp.test_production_settings import manage
from tests.webapp.helpers import BATCH, PREDICT, assert_error, predict, upload
from tests.webapp.test_page import csrf_token, submit
from webapp import admission
from webapp.models import Prediction

MB = 2**20
pytestmark = pytest.mark.usefixtures("active_tiny")


def transparent_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (10, 200, 30, 128)).save(out, "PNG", compress_level=9)
    return out.getvalue()


@pytest.fixture(scope="module")
def png_12mp() -> bytes:
    return transparent_png((4000, 3000))  # 92 MB at its decoding peak, a few kilobytes on the wire


# ---- decoding budgets -------------------------------------------------------------------------

def test_a_batch_whose_images_would_decode_over_the_request_budget_is_413_before_any_decoding(client, png_12mp, monkeypatch):
    decoded = []
    monkeypatch.setattr(admission, "decode", lambda image, spec: decoded.append(image) or image)
    reply = client.post(BATCH, {"images": [upload(png_12mp, f"{i}.png", "image/png") for i in range(5)]})
    assert "one request may take at most 384 MB" in assert_error(reply, 413, "images_too_large")["message"]
    assert decoded == [] and not Prediction.objects.exists()


def test_a_request_beyond_the_workers_decoding_budget_gets_a_fast_503(client, png_12mp, jpeg_bytes, settings):
    with admission.worker_budget.reserve(settings.DECODE_WORKER_MAX_BYTES - 16 * MB):  # other requests decoding
        reply = predict(client, png_12mp, name="big.png")
        assert_error(reply, 503, "busy")
        assert reply["Retry-After"] == "1"
        assert predict(client, jpeg_bytes).status_code == 200  # a drafted JPEG costs a few megabytes
    assert admission.worker_budget.used == 0
    assert predict(client, png_12mp, name="big.png").status_code == 200


def test_a_png_over_the_lower_limit_for_full_decoding_is_413_though_a_jpeg_that_size_is_not(client):
    reply = predict(client, transparent_png((5000, 4000)), name="20mp.png")
    assert "16 megapixels for PNG" in assert_error(reply, 413, "image_too_large")["message"]


# ---- request bodies on every path ---------------------------------------------------------------

def big_body(settings) -> bytes:
    settings.REQUEST_MAX_BYTES = 50_000
    return b"\xff\xd8" + bytes(60_000)


def test_the_page_refuses_a_body_over_the_limit_before_reading_it(settings, monkeypatch):
    data = big_body(settings)
    browser = Client()
    token = csrf_token(browser.get("/"))
    read = []
    monkeypatch.setattr("django.http.multipartparser.MultiPartParser.parse", lambda self: read.append(1))
    reply = browser.post("/", {"csrfmiddlewaretoken": token, "image": upload(data)})
    assert reply.status_code == 413 and b"over the 50 KB limit" in reply.content
    assert read == []


def test_the_admin_refuses_a_body_over_the_limit_unless_staff_may_register_models(settings, admin_client, client, django_user_model):
    data = big_body(settings)
    register = "/admin/webapp/modelversion/register/"
    staff = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer = Client()
    viewer.force_login(staff)
    for who in (client, viewer):
        assert who.post(register, {"h5_file": upload(data, "m.h5")}).status_code == 413
        assert who.post("/admin/login/", {"username": "x" * 60_000}).status_code == 413
    settings.ADMIN_UPLOAD_MAX_BYTES = 100_000
    assert admin_client.post(register, {"h5_file": upload(data, "m.h5")}).status_code == 200  # the form, with its errors
    assert admin_client.post("/admin/webapp/apitoken/add/", {"name": "x" * 60_000}).status_code == 413



def test_the_page_hint_and_every_413_state_the_default_limits_as_configured(admin_client, client):
    """Sizes are decimal megabytes everywhere: a 10 MB default is '10 MB', not '10.5 MB' or '537 MB' for 512 MB."""
    assert "up to 10\u00a0MB" in client.get("/").content.decode()  # kept on one line
    too_big = {"CONTENT_LENGTH": str(512_000_001)}
    reply = admin_client.generic("POST", "/admin/webapp/modelversion/register/", b"", "multipart/form-data; boundary=x", **too_big)
    assert reply.status_code == 413 and "over the 512 MB limit" in reply.content.decode()
    reply = client.generic("POST", PREDICT, b"", "multipart/form-data; boundary=x", CONTENT_LENGTH=str(40_000_001))
    assert "over the 40 MB limit" in assert_error(reply, 413, "request_too_large")["message"]


def test_a_body_over_the_limit_on_the_page_is_a_page_saying_why_for_a_person_and_json_for_its_script(client):
    too_big = {"CONTENT_LENGTH": str(40_000_001)}
    page = client.generic("POST", "/", b"", "multipart/form-data; boundary=x", HTTP_ACCEPT="text/html", **too_big)
    assert page.status_code == 413 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "over the 40 MB limit" in html and 'href="/"' in html  # a way back to the recognizer
    chinese = client.generic("POST", "/", b"", "multipart/form-data; boundary=x", HTTP_ACCEPT_LANGUAGE="zh-CN", **too_big)
    assert chinese.status_code == 413 and 'lang="zh-hans"' in chinese.content.decode()
    script = client.generic("POST", "/", b"", "multipart/form-data; boundary=x", HTTP_ACCEPT="application/json", **too_big)
    assert "over the 40 MB limit" in assert_error(script, 413, "request_too_large")["message"]


# ---- rate limits ------------------------------------------------------------------------------

def test_each_image_of_a_batch_counts_against_the_rate_limit(client, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "4/m"
    three = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(3)]})
    assert three.status_code == 200
    reply = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(2)]})
    assert "over your rate limit" in assert_error(reply, 429, "rate_limited")["message"]
    assert int(reply["Retry-After"]) >= 1
    body = {"images_base64": [base64.b64encode(jpeg_bytes).decode()] * 2}
    assert_error(client.post(BATCH, body, content_type="application/json"), 429, "rate_limited")
    assert Prediction.objects.count() == 3
    assert client.post(PREDICT, {"image": upload(jpeg_bytes)}).status_code == 200  # the refused batches cost nothing


def test_a_batch_over_the_whole_rate_limit_says_how_many_fit_not_to_wait(client, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "3/m"
    reply = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(4)]})
    message = assert_error(reply, 429, "rate_limited")["message"]
    assert "send at most 3 at a time" in message and "wait" not in message and "Retry-After" not in reply
    replies = [client.post(PREDICT, {"image": upload(jpeg_bytes)}).status_code for _ in range(4)]
    assert replies == [200, 200, 200, 429]


def forwarded(client, jpeg_bytes, chain: str) -> int:
    return client.post(PREDICT, {"image": upload(jpeg_bytes)}, headers={"X-Forwarded-For": chain}).status_code


def test_x_forwarded_for_does_not_reset_the_limit_without_trusted_proxies(client, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "3/m"
    replies = [forwarded(client, jpeg_bytes, f"203.0.113.{n}") for n in range(8)]
    assert replies == [200] * 3 + [429] * 5


def test_behind_one_trusted_proxy_the_address_it_saw_is_the_client(client, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "2/m"
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forges the left part; the proxy appends the address it really received from.
    forged = [forwarded(client, jpeg_bytes, f"10.0.0.{n}, 198.51.100.7") for n in range(4)]
    assert forged == [200, 200, 429, 429]
    assert forwarded(client, jpeg_bytes, "198.51.100.8") == 200  # another client behind the same proxy


def test_production_believes_x_forwarded_proto_only_behind_a_trusted_proxy():
    show = "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)"
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "recognizer.example.org"}
    direct = manage("shell", "-c", show, **env)
    proxied = manage("shell", "-c", show, TRUSTED_PROXY_COUNT="1", **env)
    assert direct.returncode == proxied.returncode == 0, direct.stderr + proxied.stderr
    assert direct.stdout.split()[-1] == "None"
    assert "HTTP_X_FORWARDED_PROTO" in proxied.stdout


# ---- the page: a public demo with its own, stricter budget ----------------------------------------

def test_with_anonymous_api_use_off_the_page_stays_a_demo_under_its_own_rate_limit(jpeg_bytes, settings):
    settings.API_ALLOW_ANONYMOUS = False
    settings.API_RATE_LIMIT = "10000/m"
    settings.PAGE_RATE_LIMIT = "2/m"
    browser = Client(enforce_csrf_checks=True)
    assert_error(predict(browser, jpeg_bytes), 401, "unauthorized")
    json_reply = {"Accept": "application/json"}
    statuses = [submit(browser, jpeg_bytes, headers=json_reply).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert_error(submit(browser, jpeg_bytes, headers=json_reply), 429, "rate_limited")
    assert Prediction.objects.filter(source="page").count() == 2


def test_page_and_api_budgets_are_apart(client, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "1/m"
    settings.PAGE_RATE_LIMIT = "1/m"
    browser = Client(enforce_csrf_checks=True)
    assert submit(browser, jpeg_bytes).status_code == 200
    assert predict(client, jpeg_bytes).status_code == 200
    assert submit(browser, jpeg_bytes).status_code == 429
    assert predict(client, jpeg_bytes).status_code == 429


def test_the_no_javascript_result_shows_a_preview_made_from_the_one_decoding(jpeg_bytes, monkeypatch):
    opened = []
    real = admission.open_image
    monkeypatch.setattr(admission, "open_image", lambda *a, **k: opened.append(1) or real(*a, **k))
    page = submit(Client(enforce_csrf_checks=True), jpeg_bytes)
    assert page.status_code == 200
    url = page.content.decode().split('class="result-photo" src="', 1)[1].split('"', 1)[0]
    preview = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert preview.format == "JPEG" and max(preview.size) <= 480
    assert opened == [1]  # the page decoded the upload once, in the service's budget


def test_password_guessing_at_the_admin_sign_in_is_rate_limited(client, admin_user, settings):
    settings.LOGIN_RATE_LIMIT = "3/m"
    guesses = [client.post("/admin/login/", {"username": "admin", "password": f"guess-{n}"}).status_code for n in range(5)]
    assert guesses == [200, 200, 200, 429, 429]
    refused = client.post("/admin/login/", {"username": "admin", "password": "guess-5"})
    assert refused["Content-Type"].startswith("text/html") and int(refused["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in refused.content.decode()
    assert client.get("/admin/login/").status_code == 200  # the form still shows
