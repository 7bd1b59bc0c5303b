"""Request bodies built to make the parser itself fail or work hard: each gets a clear 4xx, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.webapp.helpers import BATCH, PREDICT, assert_error, predict, upload

pytestmark = pytest.mark.usefixtures("active_tiny")
HUGE = "9" * 5000  # Python refuses to turn more than 4300 digits into an int


def post_raw(client, raw: str, url: str = PREDICT):
    return client.post(url, raw, content_type="application/json")


def image_field(jpeg_bytes: bytes) -> str:
    return base64.b64encode(jpeg_bytes).decode("ascii")


@pytest.mark.parametrize("url, field", [(PREDICT, "image_base64"), (BATCH, "images_base64")])
def test_a_json_integer_of_5000_digits_in_top_k_is_400(client, jpeg_bytes, url, field):
    image = f'"{image_field(jpeg_bytes)}"' if field == "image_base64" else f'["{image_field(jpeg_bytes)}"]'
    reply = post_raw(client, f'{{"{field}": {image}, "top_k": {HUGE}}}', url)
    assert "number" in assert_error(reply, 400, "invalid_json")["message"]


def test_a_5000_digit_integer_anywhere_in_the_json_is_400(client):
    assert_error(post_raw(client, f'{{"image_base64": "aGVsbG8=", "extra": [{HUGE}]}}'), 400, "invalid_json")


@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "1e999999", "NaN", "Infinity"])
def test_a_huge_or_non_finite_top_k_in_a_form_or_query_is_400(client, jpeg_bytes, value):
    assert "top_k" in assert_error(predict(client, jpeg_bytes, top_k=value), 400, "invalid_parameter")["message"]
    reply = client.post(f"{PREDICT}?top_k={value}", {"image": upload(jpeg_bytes)})
    assert "top_k" in assert_error(reply, 400, "invalid_parameter")["message"]


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999999"])
def test_non_finite_json_numbers_are_400(client, jpeg_bytes, raw):
    reply = post_raw(client, f'{{"image_base64": "{image_field(jpeg_bytes)}", "top_k": {raw}}}')
    assert_error(reply, 400)


def test_a_base64_string_that_decodes_over_the_upload_limit_is_413_before_decoding(client, settings):
    settings.UPLOAD_MAX_BYTES = 1_000
    reply = post_raw(client, '{"image_base64": "' + "A" * 4_000 + '"}')
    assert_error(reply, 413, "file_too_large")
