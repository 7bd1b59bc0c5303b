import base64

import pytest


def test_it_classifies_a_multipart_upload(client, active_tiny, jpeg_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    reply = client.post("/api/v1/predict", {"image": SimpleUploadedFile("t.jpg", jpeg_bytes, "image/jpeg"), "top_k": "3"})
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["model"] == {"name": "tiny-wildlife", "version": 1}
    assert len(body["predictions"]) == 3
    assert set(body["timing_ms"]) == {"decode", "inference", "total"}


def test_it_classifies_base64_json(client, active_tiny, jpeg_bytes):
    reply = client.post("/api/v1/predict", {"image_base64": base64.b64encode(jpeg_bytes).decode()}, content_type="application/json")
    assert reply.status_code == 200, reply.content
    assert len(reply.json()["predictions"]) == 4


@pytest.mark.parametrize("top_k", ["0", "21", "-1", "abc"])
def test_it_rejects_a_bad_top_k(client, active_tiny, jpeg_bytes, top_k):
    from django.core.files.uploadedfile import SimpleUploadedFile

    reply = client.post("/api/v1/predict", {"image": SimpleUploadedFile("t.jpg", jpeg_bytes), "top_k": top_k})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_parameter"


def test_it_rejects_a_pdf_with_415(client, active_tiny):
    from django.core.files.uploadedfile import SimpleUploadedFile

    reply = client.post("/api/v1/predict", {"image": SimpleUploadedFile("t.jpg", b"%PDF-1.4 hello")})
    assert reply.status_code == 415
    assert "PDF" in reply.json()["error"]["message"]


def test_it_returns_503_without_an_active_model(client, db, fresh_runtime, jpeg_bytes, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from webapp.models import ModelVersion

    reply = client.post("/api/v1/predict", {"image": SimpleUploadedFile("t.jpg", jpeg_bytes)})
    assert reply.status_code == 400  # no such model registered at all
    assert client.get("/readyz").status_code == 503
