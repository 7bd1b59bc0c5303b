"""The interactive docs' "Try it out": the values it fills in for the optional parameters give an answer, not a 400."""

from __future__ import annotations

import base64
import json

import pytest

PLACEHOLDERS = {"string": "string", "integer": 0, "number": 0, "boolean": True}


def sample(schema: dict):
    """The value Swagger UI puts in a field: its example, else default, else the first choice, else a placeholder."""
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    return PLACEHOLDERS[schema["type"]]


def filled_in(client, path: str, content_type: str, image_field: str) -> dict:
    spec = client.get("/api/v1/openapi.json").json()
    properties = spec["paths"][path]["post"]["requestBody"]["content"][content_type]["schema"]["properties"]
    return {name: sample(schema) for name, schema in properties.items() if name != image_field}


@pytest.mark.parametrize("path, field", [("/api/v1/predict", "image"), ("/api/v1/predict/batch", "images")])
def test_the_docs_sample_form_with_a_chosen_photo_is_answered(client, active_tiny, jpeg_bytes, path, field):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = filled_in(client, path, "multipart/form-data", field)
    reply = client.post(path, {**form, field: SimpleUploadedFile("turkey.jpg", jpeg_bytes, "image/jpeg")})
    assert reply.status_code == 200, (form, reply.content[:300])


@pytest.mark.parametrize(
    "path, field", [("/api/v1/predict", "image_base64"), ("/api/v1/predict/batch", "images_base64")]
)
def test_the_docs_sample_json_with_a_pasted_photo_is_answered(client, active_tiny, jpeg_bytes, path, field):
    body = filled_in(client, path, "application/json", field)
    encoded = base64.b64encode(jpeg_bytes).decode("ascii")
    body[field] = encoded if field == "image_base64" else [encoded]
    reply = client.post(path, json.dumps(body), content_type="application/json")
    assert reply.status_code == 200, (body.keys(), reply.content[:300])


@pytest.mark.parametrize("path, field", [("/api/v1/predict", "image"), ("/api/v1/predict/batch", "images")])
def test_the_schema_documents_every_parameter_in_the_query_and_its_samples_there_are_answered(
    client, active_tiny, jpeg_bytes, path, field
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    operation = client.get("/api/v1/openapi.json").json()["paths"][path]["post"]
    in_query = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    assert set(in_query) == set(filled_in(client, path, "multipart/form-data", field))
    assert "409" in operation["responses"]  # explain_unavailable
    query = "&".join(f"{name}={json.dumps(sample(s)).strip(chr(34)).lower()}" for name, s in in_query.items())
    reply = client.post(f"{path}?{query}", {field: SimpleUploadedFile("turkey.jpg", jpeg_bytes, "image/jpeg")})
    assert reply.status_code == 200, (query, reply.content[:300])
