"""Every path under /api/ answers the one JSON error shape with the right status, whatever the method."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import TINY_NAME
from tests.webapp.helpers import assert_error, predict, upload

UNKNOWN = ["/api/", "/api/v1/nope", "/api/v2/predict", "/api/v1/models/x/y", "/api/v1/predict/"]
WRONG_METHOD = [
    ("get", "/api/v1/predict", "POST"),
    ("put", "/api/v1/predict", "POST"),
    ("delete", "/api/v1/predict/batch", "POST"),
    ("get", "/api/v1/predict/batch", "POST"),
    ("post", "/api/v1/models", "GET"),
    ("delete", "/api/v1/models/tiny-wildlife", "GET"),
    ("patch", "/api/v1/openapi.json", "GET"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", UNKNOWN)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_a_json_404(client, method, path):
    reply = getattr(client, method)(path)
    assert_error(reply, 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, allowed", WRONG_METHOD)
def test_a_wrong_method_on_an_api_path_is_a_json_405_with_allow(client, method, path, allowed):
    reply = getattr(client, method)(path)
    assert_error(reply, 405, "method_not_allowed")
    assert allowed in [m.strip() for m in reply["Allow"].split(",")]
    assert method.upper() in reply.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_the_schema_and_the_docs_still_answer_get(client, path):
    assert client.get(path).status_code == 200


# ---- methods on the read-only paths -----------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/models", f"/api/v1/models/{TINY_NAME}", "/api/v1/openapi.json", "/api/v1/docs"])
def test_head_on_the_apis_read_paths_answers_as_get_without_a_body(client, active_tiny, path):
    got, head = client.get(path), client.head(path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b"" and head["Content-Length"] == str(len(got.content))
    assert head["Content-Type"] == got["Content-Type"]


@pytest.mark.parametrize("method", ["put", "post", "delete", "patch"])
@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs", "/healthz", "/readyz"])
def test_writing_to_the_schema_the_docs_or_a_probe_is_a_json_405_not_a_csrf_page(db, method, path):
    from django.test import Client

    reply = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert reply.status_code == 405 and reply["Allow"] == "GET, HEAD"
    assert reply.json()["error"]["code"] == "method_not_allowed"


def test_a_401_says_which_scheme_to_use(client, active_tiny, settings):
    settings.API_ALLOW_ANONYMOUS = False
    reply = client.get("/api/v1/models")
    assert reply.status_code == 401 and reply["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_api_root_points_to_the_docs_and_the_schema_and_its_bare_path_leads_there(client, db, settings):
    settings.API_ALLOW_ANONYMOUS = False  # no token needed to find the docs
    body = client.get("/api/v1/").json()
    assert body["docs"] == "http://testserver/api/v1/docs" and body["openapi"] == "http://testserver/api/v1/openapi.json"
    assert client.get("/api/v1", follow=True).json() == body


def test_a_feedback_body_sent_as_a_form_is_a_415_saying_to_send_json(client, db):
    reply = client.post("/api/v1/predictions/1/feedback", {"correct": "true"})  # multipart, as a form posts it
    assert assert_error(reply, 415, "unsupported_media_type")["message"] == "Send this body as JSON, with Content-Type: application/json."


def test_the_api_root_links_every_endpoint(client, db):
    body = client.get("/api/v1/").json()
    assert body["predict_batch"] == "http://testserver/api/v1/predict/batch"
    assert body["feedback"] == "http://testserver/api/v1/predictions/{id}/feedback"


def test_a_model_name_holding_a_nul_is_unknown_not_a_database_error(client, active_tiny, jpeg_bytes):
    # PostgreSQL refuses to compare text holding NUL (a 500 there); no registered name holds one.
    assert_error(client.get("/api/v1/models/a%00b"), 404, "model_not_found")
    assert_error(predict(client, jpeg_bytes, model="a\x00b"), 400, "unknown_model")
    body = {"image_base64": base64.b64encode(jpeg_bytes).decode(), "model": "a\x00b"}
    assert_error(client.post("/api/v1/predict", body, content_type="application/json"), 400, "unknown_model")
    page = client.post("/", {"image": upload(jpeg_bytes), "model": "a\x00b"}, headers={"Accept": "application/json"})
    assert page.status_code == 400, page.content
