"""The bad-input battery: every malformed request is a 4xx in the one error shape, never a 500,
and nothing lands under a public folder."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.webapp.helpers import (
    BATCH, PREDICT, assert_error, corrupt_idat, encode, files_under, jpeg_claiming, photo, png_header_only,
    png_with_text, predict, probabilities, upload,
)
from webapp.models import Prediction

pytestmark = pytest.mark.usefixtures("active_tiny")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture(autouse=True)
def nothing_public_is_written(settings, media_root):
    """No request of this file may add a file under static/, STATIC_ROOT, or MEDIA_ROOT (when uploads are not kept)."""
    public = [Path(p) for p in settings.STATICFILES_DIRS] + [Path(settings.STATIC_ROOT)]
    before = files_under(*public)
    yield
    assert files_under(*public) == before
    if not settings.STORE_UPLOADS:
        assert files_under(media_root) == set()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def post_json(client, body, url=PREDICT):
    return client.post(url, body, content_type="application/json")


def small_png(photos, **options) -> bytes:
    return encode(photo(photos, "animal/horse.jpg", size=96), "PNG", **options)


# ---- not images, broken images, images out of bounds ------------------------------------------

def _bad_upload(kind: str, photos: Path) -> bytes:
    jpeg = (photos / "bird/turkey.jpg").read_bytes()
    return {
        "empty": lambda: b"",
        "text": lambda: b"just a note, not a photo\n" * 4,
        "pdf": lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "html": lambda: HTML,
        "svg": lambda: SVG,
        "svg-xml": lambda: b'<?xml version="1.0"?>\n' + SVG,
        "truncated-jpeg": lambda: jpeg[: len(jpeg) // 2],
        "corrupt-png": lambda: corrupt_idat(small_png(photos)),
        "tiff": lambda: encode(photo(photos, "animal/horse.jpg", size=64), "TIFF"),
        "1x1": lambda: encode(Image.new("RGB", (1, 1)), "PNG"),
        "1x50000": lambda: encode(Image.new("L", (1, 50_000)), "PNG"),
        "50000x1": lambda: encode(Image.new("L", (50_000, 1)), "PNG"),
        "30000x30000-png": lambda: png_header_only(30_000, 30_000),
        "100mp-jpeg": lambda: jpeg_claiming(jpeg, 10_000, 10_000),
    }[kind]()


BAD_UPLOADS = [
    # kind, file name, status, code, words the message must contain
    ("empty", "empty.jpg", 400, "empty_image", "empty"),
    ("text", "note.jpg", 415, "unsupported_format", "(text)"),
    ("pdf", "invoice.jpg", 415, "unsupported_format", "(PDF)"),
    ("html", "page.jpg", 415, "unsupported_format", "(HTML)"),
    ("svg", "drawing.svg", 415, "unsupported_format", "SVG"),
    ("svg-xml", "drawing.jpg", 415, "unsupported_format", "SVG"),
    ("truncated-jpeg", "cut.jpg", 400, "unreadable_image", "truncated"),
    ("corrupt-png", "broken.png", 400, "unreadable_image", "damaged"),
    ("tiff", "scan.jpg", 415, "unsupported_format", "TIFF"),
    ("1x1", "dot.png", 400, "image_too_small", "1x1"),
    ("1x50000", "line.png", 400, "image_too_small", "1x50000"),
    ("50000x1", "line.png", 400, "image_too_small", "50000x1"),
    ("30000x30000-png", "bomb.png", 413, "image_too_large", "megapixels"),
    ("100mp-jpeg", "bomb.jpg", 413, "image_too_large", "10000x10000"),
]


@pytest.mark.parametrize("kind, name, status, code, words", BAD_UPLOADS, ids=[row[0] for row in BAD_UPLOADS])
def test_a_bad_upload_is_refused_with_a_clear_4xx(client, photos, kind, name, status, code, words):
    data = _bad_upload(kind, photos)
    error = assert_error(predict(client, data, name=name), status, code)
    assert words in error["message"]
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("kind, name, status, code, words", BAD_UPLOADS, ids=[row[0] for row in BAD_UPLOADS])
def test_a_bad_upload_is_explained_in_chinese_with_the_same_status_and_code(client, photos, kind, name, status, code, words):
    error = assert_error(predict(client, _bad_upload(kind, photos), name=name, lang="zh"), status, code)
    assert re.search(r"[\u4e00-\u9fff]", error["message"]), error["message"]


BASE64_CASES = [row for row in BAD_UPLOADS if row[0] != "empty"]  # an empty image_base64 is invalid_base64


@pytest.mark.parametrize("kind, name, status, code, words", BASE64_CASES, ids=[row[0] for row in BASE64_CASES])
def test_a_bad_image_sent_as_base64_gets_the_same_answer(client, photos, kind, name, status, code, words):
    reply = post_json(client, {"image_base64": b64(_bad_upload(kind, photos))})
    assert words in assert_error(reply, status, code)["message"]


def test_the_too_large_images_are_refused_from_the_header_without_decoding(client, photos, monkeypatch):
    decoded = []
    real_load = ImageFile.ImageFile.load

    def counting_load(image):
        decoded.append(image.size)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    for kind, claimed in (("30000x30000-png", 30_000 * 30_000), ("100mp-jpeg", 10_000 * 10_000)):
        data = _bad_upload(kind, photos)
        assert len(data) < 100_000
        tracemalloc.start()
        try:
            reply = predict(client, data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert_error(reply, 413, "image_too_large")
        assert peak < claimed // 20, f"{kind}: peak {peak / 1e6:.0f} MB for a {claimed / 1e6:.0f} MP image"
    assert decoded == []
    assert predict(client, (photos / "bird/turkey.jpg").read_bytes()).status_code == 200
    assert decoded, "the spy must see the decoding of an ordinary photo"


# ---- missing parts, bad JSON, wrong media type ------------------------------------------------

def test_a_request_without_an_image_is_400(client):
    assert_error(client.post(PREDICT, {"top_k": "3"}), 400, "missing_image")


def test_a_misnamed_file_field_is_400(client, jpeg_bytes):
    error = assert_error(client.post(PREDICT, {"file": upload(jpeg_bytes)}), 400, "missing_image")
    assert "'image'" in error["message"]


def test_two_images_on_the_single_endpoint_are_400(client, jpeg_bytes):
    reply = client.post(PREDICT, {"image": [upload(jpeg_bytes, "a.jpg"), upload(jpeg_bytes, "b.jpg")]})
    assert_error(reply, 400, "one_image_expected")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"image": "x"}, "missing_image"),
        ({"image_base64": "not base64!!"}, "invalid_base64"),
        ({"image_base64": "data:image/jpeg;base64,@@@@"}, "invalid_base64"),
        ({"image_base64": ""}, "invalid_base64"),
        ({"image_base64": None}, "invalid_base64"),
        ({"image_base64": 12345}, "invalid_base64"),
        ({"image_base64": ["aGVsbG8="]}, "invalid_base64"),
        ([{"image_base64": "aGVsbG8="}], "invalid_json"),
        ("just a string", "invalid_json"),
    ],
    ids=["no-field", "bad-chars", "bad-data-url", "empty", "null", "number", "list", "array", "string"],
)
def test_a_bad_json_body_is_400(client, body, code):
    assert_error(post_json(client, body), 400, code)


def test_a_data_url_prefix_is_accepted(client, jpeg_bytes):
    reply = post_json(client, {"image_base64": "data:image/jpeg;base64," + b64(jpeg_bytes)})
    assert reply.status_code == 200, reply.content


@pytest.mark.parametrize("url", [PREDICT, BATCH])
@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"image_base64": "abc"', b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000,
            b'{"image_base64": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    ids=["broken", "unclosed", "not-utf8", "nested-100000", "nested-in-field"],
)
def test_invalid_json_is_400_and_deep_nesting_is_no_recursion_error(client, url, raw):
    reply = client.post(url, raw, content_type="application/json")
    assert_error(reply, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/jpeg", "application/octet-stream"])
def test_a_body_that_is_neither_multipart_nor_json_is_415(client, jpeg_bytes, content_type):
    assert_error(client.post(PREDICT, jpeg_bytes, content_type=content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize("url, fields", [(PREDICT, "an 'image' file"), (BATCH, "'images' files")])
def test_a_415_names_the_fields_of_the_endpoint_it_came_to(client, jpeg_bytes, url, fields):
    assert fields in assert_error(client.post(url, jpeg_bytes, content_type="image/jpeg"), 415, "unsupported_media_type")["message"]


@pytest.mark.parametrize("url, example", [(PREDICT, '{"image_base64": "..."}'), (BATCH, '{"images_base64": ["...", "..."]}')])
def test_a_json_body_that_is_not_an_object_shows_the_endpoints_own_field(client, url, example):
    message = assert_error(client.post(url, "[1]", content_type="application/json"), 400, "invalid_json")["message"]
    assert message == f"The JSON body must be an object, e.g. {example}."


@pytest.mark.parametrize("value", ["abc", {"a": "b"}, 5])
def test_images_base64_that_is_not_a_list_is_an_invalid_parameter_not_a_missing_image(client, value):
    message = assert_error(post_json(client, {"images_base64": value}, url=BATCH), 400, "invalid_parameter")["message"]
    assert message.startswith("images_base64: must be a list")


@pytest.mark.parametrize("url", [PREDICT, BATCH])
def test_a_url_encoded_form_which_can_carry_no_file_is_415_not_missing_image(client, jpeg_bytes, url):
    body = "image_base64=" + base64.b64encode(jpeg_bytes).decode().replace("+", "%2B").replace("/", "%2F")
    reply = client.post(url, body, content_type="application/x-www-form-urlencoded")
    assert "multipart/form-data" in assert_error(reply, 415, "unsupported_media_type")["message"]


# ---- sizes and counts -------------------------------------------------------------------------

def test_a_body_over_the_request_limit_is_413_before_it_is_read(client, jpeg_bytes, settings):
    settings.REQUEST_MAX_BYTES = 2_000
    assert_error(predict(client, jpeg_bytes), 413, "request_too_large")
    assert_error(post_json(client, {"image_base64": b64(jpeg_bytes)}), 413, "request_too_large")


def test_a_file_over_the_upload_limit_is_413_file_too_large_however_it_is_sent(client, jpeg_bytes, settings):
    settings.UPLOAD_MAX_BYTES = len(jpeg_bytes) - 1
    assert_error(predict(client, jpeg_bytes), 413, "file_too_large")
    assert_error(post_json(client, {"image_base64": b64(jpeg_bytes)}), 413, "file_too_large")
    settings.UPLOAD_MAX_BYTES = len(jpeg_bytes)
    assert predict(client, jpeg_bytes).status_code == 200


def test_a_json_body_over_djangos_memory_limit_is_413(client, jpeg_bytes, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    assert_error(post_json(client, {"image_base64": b64(jpeg_bytes)}), 413)


def test_more_files_than_the_batch_limit_is_413(client, jpeg_bytes, settings):
    settings.BATCH_MAX_IMAGES = 3
    reply = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(4)]})
    assert_error(reply, 413, "too_many_images")
    reply = post_json(client, {"images_base64": [b64(jpeg_bytes)] * 4}, url=BATCH)
    assert_error(reply, 413, "too_many_images")


def test_more_files_than_django_parses_is_413(client, jpeg_bytes, settings):
    many = settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1
    reply = client.post(BATCH, {"images": [upload(b"x", f"{i}.jpg") for i in range(many)]})
    assert_error(reply, 413)


def test_a_batch_with_bad_images_answers_each_in_order_and_records_only_the_good(client, jpeg_bytes, settings):
    settings.UPLOAD_MAX_BYTES = len(jpeg_bytes) + 10
    items = [jpeg_bytes, b"%PDF-1.4", jpeg_bytes + bytes(100), b"", jpeg_bytes]
    reply = client.post(BATCH, {"images": [upload(data, f"{i}.jpg") for i, data in enumerate(items)]})
    assert reply.status_code == 200, reply.content[:300]
    results = reply.json()["results"]
    assert len(results) == len(items)
    assert [r["error"]["code"] if "error" in r else "ok" for r in results] == [
        "ok", "unsupported_format", "file_too_large", "empty_image", "ok"
    ]
    for bad in (results[1], results[2], results[3]):
        assert set(bad) == {"error"} and set(bad["error"]) == {"code", "message", "request_id"} and bad["error"]["message"]
    assert results[0]["predictions"] == results[4]["predictions"]
    assert Prediction.objects.count() == 2


def test_a_json_batch_with_an_image_over_the_pixel_limit_fails_that_item_alone(client, jpeg_bytes, photos, settings):
    settings.MAX_IMAGE_PIXELS = 120 * 120
    big = encode(photo(photos, "animal/horse.jpg"), "JPEG")  # 200x138
    reply = post_json(client, {"images_base64": [b64(big), b64(encode(photo(photos, "animal/horse.jpg", size=100), "JPEG"))]}, url=BATCH)
    assert reply.status_code == 200
    first, second = reply.json()["results"]
    assert first["error"]["code"] == "image_too_large"
    assert second["predictions"]


def test_a_batch_whose_images_all_fail_is_still_answered_item_by_item(client):
    reply = client.post(BATCH, {"images": [upload(b"%PDF-1.4", "a.jpg"), upload(b"", "b.jpg")]})
    assert reply.status_code == 200
    assert reply.json()["model"]["version"] == 1
    assert [r["error"]["code"] for r in reply.json()["results"]] == ["unsupported_format", "empty_image"]
    assert not Prediction.objects.exists()



def test_a_json_batch_with_bad_base64_items_fails_those_items_alone_and_names_them(client, jpeg_bytes, settings):
    settings.UPLOAD_MAX_BYTES = len(jpeg_bytes) + 10
    oversized = b64(jpeg_bytes + bytes(100))
    reply = post_json(client, {"images_base64": [b64(jpeg_bytes), "!!!", "", 5, oversized, b64(jpeg_bytes)]}, url=BATCH)
    assert reply.status_code == 200, reply.content[:300]
    results = reply.json()["results"]
    assert [r["error"]["code"] if "error" in r else "ok" for r in results] == [
        "ok", "invalid_base64", "invalid_base64", "invalid_base64", "file_too_large", "ok"
    ]
    assert [r["error"]["message"].split()[0] for r in results[1:5]] == [f"images_base64[{n}]" for n in range(1, 5)]
    assert Prediction.objects.count() == 2


def test_a_chunked_body_without_a_length_is_411_not_taken_for_a_request_without_an_image(client, jpeg_bytes):
    # Django reads no body of unknown length: without this, the photo would be dropped and "missing_image" said.
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}
    reply = client.generic("POST", PREDICT, jpeg_bytes, content_type="image/jpeg", **chunked)
    assert "Content-Length" in assert_error(reply, 411, "length_required")["message"]
    page = client.generic("POST", "/", jpeg_bytes, content_type="multipart/form-data; boundary=x", **chunked)
    assert page.status_code == 411 and b"Content-Length" in page.content
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("url", [PREDICT, BATCH])
@pytest.mark.parametrize("content_type", [
    "multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\u00e9t\u00e9",
], ids=["no boundary", "empty boundary", "non-ASCII boundary"])
def test_a_multipart_body_with_a_bad_boundary_is_400_not_500(client, url, content_type):
    reply = client.generic("POST", url, b"--x\r\n\r\n", content_type=content_type)
    assert "malformed" in assert_error(reply, 400, "invalid_multipart")["message"]

# ---- polyglots --------------------------------------------------------------------------------

def test_an_html_png_polyglot_is_never_served_back_as_html(client, photos, settings):
    settings.STORE_UPLOADS = True
    data = png_with_text(small_png(photos), b"Comment", HTML) + HTML
    reply = predict(client, data, name="page.html")
    assert reply.status_code == 200, reply.content  # it decodes as a PNG, so it is classified as one
    assert reply["Content-Type"].startswith("application/json")
    assert reply["X-Content-Type-Options"] == "nosniff"
    assert b"<script" not in reply.content
    for row in Prediction.objects.all():
        assert not row.image.name.endswith((".html", ".htm", ".png"))
        assert client.get(settings.MEDIA_URL + row.image.name).status_code == 404  # uploads are never served


# ---- images that need converting --------------------------------------------------------------

def _converted_cases(photos: Path) -> dict[str, tuple[bytes, bytes]]:
    """name -> (the unusual image, a plain RGB PNG of what the model must see)."""
    rgb = photo(photos, "animal/horse.jpg", size=96)
    gray = rgb.convert("L")
    level = np.asarray(gray, dtype=np.uint16)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    white = Image.new("RGBA", rgb.size, (255, 255, 255, 255))

    def on_white(image):
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")

    return {
        "grayscale": (encode(gray, "PNG"), encode(gray.convert("RGB"), "PNG")),
        "grayscale-jpeg": _jpeg_and_its_rgb(gray),
        "cmyk-jpeg": _jpeg_and_its_rgb(rgb.convert("CMYK")),
        "16-bit": (encode(Image.fromarray(level * 257), "PNG"), encode(gray.convert("RGB"), "PNG")),
        "palette-transparent": (encode(palette, "PNG"), encode(on_white(encode_reopen(palette)), "PNG")),
        "rgba": (encode(rgba, "PNG"), encode(on_white(rgba), "PNG")),
        "rgba-opaque": (encode(rgb.convert("RGBA"), "PNG"), encode(rgb, "PNG")),
    }


def _jpeg_and_its_rgb(image: Image.Image) -> tuple[bytes, bytes]:
    """A JPEG in the image's mode, and a lossless PNG of the same decoded photo converted to RGB.

    64 px: small enough that decoding at reduced scale (JPEG draft mode) cannot apply, so both
    replies must come from the very same pixels.
    """
    small = image.resize((64, 43))
    jpeg = encode(small, "JPEG", quality=95)
    decoded = Image.open(io.BytesIO(jpeg))
    assert decoded.mode == small.mode
    return jpeg, encode(decoded.convert("RGB"), "PNG")


def encode_reopen(image: Image.Image) -> Image.Image:
    return Image.open(io.BytesIO(encode(image, "PNG")))


@pytest.mark.parametrize(
    "case", ["grayscale", "grayscale-jpeg", "cmyk-jpeg", "16-bit", "palette-transparent", "rgba", "rgba-opaque"]
)
def test_unusual_pixel_formats_are_accepted_and_converted(client, photos, case):
    data, reference = _converted_cases(photos)[case]
    reply = predict(client, data, name=f"{case}.png")
    assert reply.status_code == 200, reply.content
    got = probabilities(reply.json())
    assert got == pytest.approx(probabilities(predict(client, reference).json()), abs=1e-5)


def test_an_exif_rotated_photo_is_seen_upright(client, photos):
    upright = photo(photos, "bird/toucan.jpg")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    expected = predict(client, encode(upright, "JPEG", quality=95)).json()
    rotated = predict(client, encode(sideways, "JPEG", quality=95, exif=exif.tobytes())).json()
    ignored = predict(client, encode(sideways, "JPEG", quality=95)).json()
    assert rotated["predictions"][0]["label"] == expected["predictions"][0]["label"]
    assert probabilities(rotated) == pytest.approx(probabilities(expected), abs=1e-3)
    # Without the tag the tiny model sees another picture (its answer moves 4x more than JPEG noise does),
    # so the check above would notice a lost rotation.
    assert probabilities(ignored) != pytest.approx(probabilities(expected), abs=4e-3)


def test_an_animated_gif_is_classified_by_its_first_frame(client, photos):
    first = photo(photos, "plant/rose.jpg", size=96).resize((96, 96))
    second = photo(photos, "bird/flamingo.jpg", size=96).resize((96, 96))
    animated = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    frames = Image.open(io.BytesIO(animated))
    assert frames.n_frames == 2
    frames.seek(0)
    first_as_png = encode(frames.convert("RGB"), "PNG")
    frames.seek(1)
    second_as_png = encode(frames.convert("RGB"), "PNG")
    reply = predict(client, animated, name="anim.gif")
    assert reply.status_code == 200, reply.content
    got = probabilities(reply.json())
    assert got == pytest.approx(probabilities(predict(client, first_as_png).json()), abs=1e-5)
    assert got != pytest.approx(probabilities(predict(client, second_as_png).json()), abs=1e-3)


# ---- file names -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name",
    ["../../../etc/passwd.jpg", "..\\..\\windows\\win.ini", "a\x00b.jpg", "x" * 10_000 + ".jpg",
     "photo\u202egpj.exe", "/tmp/absolute.jpg", "<script>.jpg"],
    ids=["dot-dot", "backslashes", "nul", "10000-chars", "rtl-override", "absolute", "markup"],
)
def test_a_hostile_file_name_is_never_used_as_a_path(client, jpeg_bytes, media_root, settings, tmp_path, name):
    settings.STORE_UPLOADS = True
    around = files_under(tmp_path)
    reply = predict(client, jpeg_bytes, name=name)
    assert reply.status_code == 200, reply.content
    row = Prediction.objects.get()
    digest = hashlib.sha256(jpeg_bytes).hexdigest()
    stored = Path(row.image.path).resolve()
    assert stored.is_relative_to(Path(media_root).resolve())
    assert stored.name == f"{digest}.img"
    assert files_under(tmp_path) - around == {str(Path(row.image.path))}


# ---- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("top_k", ["0", "21", "-1", "abc", "2.5", "1e3"])
def test_a_bad_top_k_is_400(client, jpeg_bytes, top_k):
    error = assert_error(predict(client, jpeg_bytes, top_k=top_k), 400, "invalid_parameter")
    assert "top_k" in error["message"]


@pytest.mark.parametrize("top_k", [0, 21, -1, "abc", [5], {"k": 1}, True, False])
def test_a_bad_top_k_in_json_is_400(client, jpeg_bytes, top_k):
    reply = post_json(client, {"image_base64": b64(jpeg_bytes), "top_k": top_k})
    assert "top_k" in assert_error(reply, 400, "invalid_parameter")["message"]


def test_a_boolean_top_k_is_refused_as_no_whole_number_in_the_callers_language(client, jpeg_bytes):
    reply = post_json(client, {"image_base64": b64(jpeg_bytes), "top_k": True, "lang": "zh"})
    assert assert_error(reply, 400, "invalid_parameter")["message"] == "参数 top_k 无效：必须是整数。"


@pytest.mark.parametrize("domain", ["fish", "other", "ANIMAL", "plant;drop table"])
def test_an_unknown_domain_is_400(client, jpeg_bytes, domain):
    error = assert_error(predict(client, jpeg_bytes, domain=domain), 400, "invalid_parameter")
    assert "domain" in error["message"]


def test_an_unknown_model_name_is_400(client, jpeg_bytes):
    error = assert_error(predict(client, jpeg_bytes, model="no-such-model"), 400, "unknown_model")
    assert "no-such-model" in error["message"]
    assert_error(predict(client, jpeg_bytes, model="m" * 101), 400, "invalid_parameter")
    assert not Prediction.objects.exists()


def test_bad_parameters_are_checked_on_the_batch_endpoint_too(client, jpeg_bytes):
    images = [upload(jpeg_bytes, "a.jpg")]
    assert_error(client.post(BATCH, {"images": images, "top_k": "0"}), 400, "invalid_parameter")
    assert_error(client.post(BATCH, {"images": [upload(jpeg_bytes)], "domain": "fish"}), 400, "invalid_parameter")
    assert_error(client.post(BATCH, {"images": [upload(jpeg_bytes)], "model": "nope"}), 400, "unknown_model")
    assert_error(client.post(BATCH, {"image": [upload(jpeg_bytes)]}), 400, "missing_image")
