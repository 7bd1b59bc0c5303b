"""Every path under /api/ answers the one JSON error shape with the right status, whatever the method."""

from __future__ import annotations

import pytest

from tests.webapp.helpers import assert_error

UNKNOWN = ["/api/", "/api/v1/", "/api/v1/nope", "/api/v2/predict", "/api/v1/models/x/y", "/api/v1/predict/"]
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
def test_the_api_root_without_its_slash_leads_to_the_json_404(client):
    reply = client.get("/api/v1", follow=True)
    assert_error(reply, 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_the_schema_and_the_docs_still_answer_get(client, path):
    assert client.get(path).status_code == 200
