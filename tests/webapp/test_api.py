"""The JSON API end to end: Django's test client against tiny real Keras models."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from recognizer.manifest import ClassInfo, DOMAINS
from tests.conftest import TINY_NAME, TINY_SPEC, build_tiny_model, tiny_manifest
from tests.webapp.helpers import BATCH, PREDICT, assert_error, predict, probabilities, upload
from webapp import services
from webapp.models import ApiToken, Prediction
from webapp.throttling import ClientRateThrottle

MANY_NAME = "tiny-many"
MANY_CLASSES = tuple(ClassInfo(i, f"c{i}", f"class {i}", DOMAINS[i % 4]) for i in range(24))
PHOTOS = ("bird/turkey.jpg", "animal/horse.jpg", "plant/rose.jpg")


@pytest.fixture(scope="session")
def many_artifact(tmp_path_factory) -> Path:
    """A tiny model with 24 classes, so that top_k can reach its bounds."""
    from recognizer.artifacts import save_artifact

    path = tmp_path_factory.mktemp("many") / "tiny-many.h5"
    save_artifact(build_tiny_model(num_classes=24, seed=2), tiny_manifest(MANY_NAME, classes=MANY_CLASSES), path)
    return path


@pytest.fixture
def active_many(active_tiny, many_artifact):
    return services.model_version_register(artifact_path=many_artifact, activate=True)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---- POST /api/v1/predict ---------------------------------------------------------------------

def test_it_classifies_a_multipart_upload_with_the_default_model(client, active_tiny, jpeg_bytes):
    reply = predict(client, jpeg_bytes)
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["model"] == {"name": TINY_NAME, "version": 1}
    labels = [p["label"] for p in body["predictions"]]
    assert sorted(labels) == ["cat", "fern", "owl", "teapot"]  # 4 classes, fewer than the default 5
    ranked = [p["probability"] for p in body["predictions"]]
    assert ranked == sorted(ranked, reverse=True)
    assert sum(ranked) == pytest.approx(1.0, abs=1e-4)
    assert {p["domain"] for p in body["predictions"]} == {"animal", "bird", "plant", "other"}
    assert set(body["timing_ms"]) == {"decode", "inference", "total"}


def test_it_answers_five_labels_by_default_and_up_to_twenty(client, active_many, jpeg_bytes):
    assert len(predict(client, jpeg_bytes, model=MANY_NAME).json()["predictions"]) == 5
    assert len(predict(client, jpeg_bytes, model=MANY_NAME, top_k="20").json()["predictions"]) == 20
    one = predict(client, jpeg_bytes, model=MANY_NAME, top_k="1").json()["predictions"]
    all_twenty = predict(client, jpeg_bytes, model=MANY_NAME, top_k="20").json()["predictions"]
    assert one == all_twenty[:1]


def test_it_uses_the_model_named_in_the_request(client, active_many, jpeg_bytes):
    assert predict(client, jpeg_bytes, model=MANY_NAME).json()["model"] == {"name": MANY_NAME, "version": 1}
    assert predict(client, jpeg_bytes).json()["model"] == {"name": TINY_NAME, "version": 1}


def test_base64_json_a_data_url_and_line_wrapped_base64_give_the_multipart_answer(client, active_tiny, jpeg_bytes):
    import base64

    expected = probabilities(predict(client, jpeg_bytes).json())
    wrapped = base64.encodebytes(jpeg_bytes).decode()  # 76 characters a line, as `base64 photo.jpg` prints it
    assert "\n" in wrapped
    for value in (b64(jpeg_bytes), "data:image/jpeg;base64," + b64(jpeg_bytes), wrapped, wrapped.replace("\n", "\r\n")):
        reply = client.post(PREDICT, {"image_base64": value, "top_k": 4}, content_type="application/json")
        assert reply.status_code == 200, reply.content
        assert probabilities(reply.json()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("domain, label", [("plant", "fern"), ("bird", "owl"), ("animal", "cat")])
def test_the_domain_filter_keeps_only_that_domain(client, active_tiny, jpeg_bytes, domain, label):
    unfiltered = {p["label"]: p["probability"] for p in predict(client, jpeg_bytes).json()["predictions"]}
    body = predict(client, jpeg_bytes, domain=domain).json()
    assert [(p["label"], p["domain"]) for p in body["predictions"]] == [(label, domain)]
    assert body["predictions"][0]["probability"] == pytest.approx(unfiltered[label])  # out of all classes
    assert body["predictions"][0]["probability_in_domain"] == pytest.approx(1.0)  # the share within the domain
    assert Prediction.objects.filter(domain=domain).count() == 1


def test_the_domain_filter_also_works_in_json(client, active_tiny, jpeg_bytes):
    reply = client.post(PREDICT, {"image_base64": b64(jpeg_bytes), "domain": "bird"}, content_type="application/json")
    assert [p["label"] for p in reply.json()["predictions"]] == ["owl"]


def test_each_prediction_is_recorded_without_the_image(client, active_tiny, jpeg_bytes, media_root):
    body = predict(client, jpeg_bytes, top_k="2").json()
    row = Prediction.objects.get()
    assert row.model_version == active_tiny
    assert row.input_sha256 == hashlib.sha256(jpeg_bytes).hexdigest()
    assert row.input_bytes == len(jpeg_bytes)
    assert row.latency_ms > 0
    assert row.source == "api"
    # The record keeps the English labels, whatever language the reply was in.
    assert row.top == [{k: v for k, v in p.items() if k != "label_en"} for p in body["predictions"]]
    assert not row.image
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))


def test_with_store_uploads_the_image_is_kept_under_its_sha256(client, active_tiny, jpeg_bytes, media_root, settings):
    settings.STORE_UPLOADS = True
    assert predict(client, jpeg_bytes, name="holiday-snap.jpg").status_code == 200
    row = Prediction.objects.get()
    digest = hashlib.sha256(jpeg_bytes).hexdigest()
    stored = Path(row.image.path)
    assert stored.stem == digest
    assert "holiday" not in row.image.name
    assert stored.resolve().is_relative_to(Path(media_root).resolve())
    assert stored.read_bytes() == jpeg_bytes


def test_the_same_photo_sent_twice_is_stored_once_under_its_sha256(client, active_tiny, jpeg_bytes, media_root, settings):
    settings.STORE_UPLOADS = True
    predict(client, jpeg_bytes, name="a.jpg")
    client.post(BATCH, {"images": [upload(jpeg_bytes, "b.jpg"), upload(jpeg_bytes, "c.jpg")]})
    names = {row.image.name for row in Prediction.objects.all()}
    assert len(names) == 1 and Path(names.pop()).name == f"{hashlib.sha256(jpeg_bytes).hexdigest()}.img"
    assert len([p for p in Path(media_root).rglob("*") if p.is_file()]) == 1


def test_an_unexpected_error_is_a_500_in_the_error_shape(client, active_tiny, jpeg_bytes, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "prediction_create", broken)
    reply = predict(client, jpeg_bytes)
    assert "secret" not in assert_error(reply, 500, "internal_error")["message"]
    assert b"Traceback" not in reply.content


# ---- POST /api/v1/predict/batch ---------------------------------------------------------------

def test_a_batch_is_answered_in_order_as_single_requests_would_be(client, active_tiny, photos):
    images = [(photos / name).read_bytes() for name in PHOTOS]
    singles = [probabilities(predict(client, data).json()) for data in images]
    assert singles[0] != pytest.approx(singles[1], abs=1e-3)  # different photos, different answers
    reply = client.post(BATCH, {"images": [upload(data, f"{i}.jpg") for i, data in enumerate(images)]})
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["model"] == {"name": TINY_NAME, "version": 1}
    assert len(body["results"]) == 3
    for single, result in zip(singles, body["results"]):
        assert probabilities(result) == pytest.approx(single, abs=1e-5)
    batch_rows = Prediction.objects.order_by("id")[3:]
    assert [r.input_sha256 for r in batch_rows] == [hashlib.sha256(d).hexdigest() for d in images]


def test_a_json_batch_is_answered_in_order(client, active_tiny, photos):
    images = [(photos / name).read_bytes() for name in PHOTOS]
    singles = [probabilities(predict(client, data).json()) for data in images]
    reply = client.post(BATCH, {"images_base64": [b64(d) for d in images], "top_k": 4}, content_type="application/json")
    assert reply.status_code == 200, reply.content
    for single, result in zip(singles, reply.json()["results"]):
        assert probabilities(result) == pytest.approx(single, abs=1e-5)


def test_a_batch_takes_sixteen_images_and_refuses_seventeen(client, active_tiny, jpeg_bytes):
    sixteen = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(16)]})
    assert sixteen.status_code == 200, sixteen.content
    assert len(sixteen.json()["results"]) == 16
    seventeen = client.post(BATCH, {"images": [upload(jpeg_bytes, f"{i}.jpg") for i in range(17)]})
    assert "16" in assert_error(seventeen, 413, "too_many_images")["message"]
    assert Prediction.objects.count() == 16


# ---- models, health, readiness ----------------------------------------------------------------

def test_the_model_list_shows_every_version_with_its_manifest(client, active_tiny, tiny_artifact_v2, jpeg_bytes):
    v2 = services.model_version_register(artifact_path=tiny_artifact_v2, notes="seed 1")
    predict(client, jpeg_bytes)
    reply = client.get("/api/v1/models")
    assert reply.status_code == 200
    listed = {(m["name"], m["version"]): m for m in reply.json()}
    assert set(listed) == {(TINY_NAME, 1), (TINY_NAME, 2)}
    one, two = listed[(TINY_NAME, 1)], listed[(TINY_NAME, 2)]
    assert (one["is_active"], two["is_active"]) == (True, False)
    assert one["sha256"] == active_tiny.sha256 and two["sha256"] == v2.sha256 != one["sha256"]
    assert one["backbone"] == "tiny" and one["engine"] == "keras"
    assert one["num_classes"] == 4
    assert one["input"] == TINY_SPEC.to_dict()
    assert (one["predictions_served"], two["predictions_served"]) == (1, 0)
    assert two["notes"] == "seed 1" and two["activated_at"] is None


def test_a_model_name_answers_its_active_version(client, active_tiny, tiny_artifact_v2):
    services.model_version_register(artifact_path=tiny_artifact_v2)
    body = client.get(f"/api/v1/models/{TINY_NAME}").json()
    assert (body["name"], body["version"], body["is_active"]) == (TINY_NAME, 1, True)
    assert body["activated_at"]


def test_an_unknown_model_name_is_404(client, active_tiny):
    assert_error(client.get("/api/v1/models/no-such-model"), 404, "model_not_found")


def test_an_unknown_api_path_is_404_in_the_error_shape(client, db):
    assert_error(client.get("/api/v1/nothing-here"), 404)


def test_healthz_answers_without_a_model(client, db):
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_readyz_is_200_with_an_active_model(client, active_tiny):
    reply = client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json()["model"] == {"name": TINY_NAME, "version": 1}



@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/"])
def test_head_answers_where_get_does_for_uptime_checkers(client, active_tiny, path):
    reply = client.head(path)
    assert reply.status_code == 200, (path, reply.status_code)
    assert reply.content == b"" and client.get(path).status_code == 200

def test_readyz_is_503_without_an_active_model(client, db, fresh_runtime, settings, tiny_artifact):
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    services.model_version_register(artifact_path=tiny_artifact)  # registered, never activated
    reply = client.get("/readyz")
    assert_error(reply, 503, "model_not_ready")
    assert reply["Retry-After"]


def test_predict_is_503_when_the_model_has_no_active_version(client, db, fresh_runtime, settings, tiny_artifact, jpeg_bytes):
    settings.DEFAULT_MODEL_NAME = TINY_NAME
    services.model_version_register(artifact_path=tiny_artifact)
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 503, "model_not_ready")
    assert reply["Retry-After"]


def test_predict_naming_no_model_is_503_not_ready_before_the_default_model_is_registered(client, db, fresh_runtime, jpeg_bytes):
    # The caller named no model: the service is not ready, as /readyz says, rather than the caller being wrong.
    assert_error(client.get("/readyz"), 503, "model_not_ready")
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 503, "model_not_ready")
    assert reply["Retry-After"]
    assert_error(predict(client, jpeg_bytes, model="no-such-model"), 400, "unknown_model")


# ---- OpenAPI and the docs page ----------------------------------------------------------------

def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_openapi_document_lists_the_endpoints_and_bodies(client, db, settings):
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    spec = reply.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    assert {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/models", "/api/v1/models/{name}"} <= set(spec["paths"])
    for path in ("/api/v1/predict", "/api/v1/predict/batch"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"multipart/form-data", "application/json"}
        assert "200" in spec["paths"][path]["post"]["responses"]
        assert "413" in spec["paths"][path]["post"]["responses"]
    batch = spec["paths"]["/api/v1/predict/batch"]["post"]
    for kind, field in (("multipart/form-data", "images"), ("application/json", "images_base64")):
        assert batch["requestBody"]["content"][kind]["schema"]["properties"][field]["maxItems"] == settings.BATCH_MAX_IMAGES
    assert "one entry in `results` per photo" in batch["description"]
    entry = _resolve(spec, batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    alternatives = [_resolve(spec, a["$ref"]) for a in entry["properties"]["results"]["items"]["anyOf"]]
    assert [sorted(a["properties"]) for a in alternatives] == [
        ["allowed_classes", "crop_note", "domain_note", "heatmap_png_base64", "id", "model", "predictions", "timing_ms",
         "verdict"],
        ["error"],
    ]
    single = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert single["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    assert "image_base64" in single["application/json"]["schema"]["required"]
    for ref in _refs(spec):
        assert isinstance(_resolve(spec, ref), dict), ref
    assert spec["components"]["securitySchemes"]


def test_the_docs_page_loads_its_scripts_and_styles_from_our_static_files(client, db, settings):
    reply = client.get("/api/v1/docs")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("text/html")
    html = reply.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    static_url = "/" + settings.STATIC_URL.strip("/") + "/"
    for asset in assets:
        assert asset.startswith(static_url), asset
        assert finders.find(asset[len(static_url):]), f"{asset} is not one of our static files"
    assert "cdn" not in html.lower()
    assert "openapi.json" in html


# ---- API tokens -------------------------------------------------------------------------------

@pytest.fixture
def tokens_required(settings, active_tiny):
    settings.API_ALLOW_ANONYMOUS = False


def test_without_a_token_the_api_is_401_when_anonymous_use_is_off(client, tokens_required, jpeg_bytes):
    assert_error(predict(client, jpeg_bytes), 401, "unauthorized")
    assert_error(client.get("/api/v1/models"), 401, "unauthorized")
    assert not Prediction.objects.exists()


def test_a_valid_token_is_accepted(client, tokens_required, jpeg_bytes):
    token, key = services.api_token_create(name="ci")
    reply = client.post(PREDICT, {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert reply.status_code == 200, reply.content
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_or_unknown_token_is_401(client, tokens_required, jpeg_bytes):
    token, key = services.api_token_create(name="old")
    ApiToken.objects.filter(pk=token.pk).update(is_active=False)
    for header in (f"Bearer {key}", "Bearer not-a-token", f"Token {key}", "Bearer "):
        reply = client.post(PREDICT, {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION=header)
        assert_error(reply, 401, "unauthorized")
    assert not Prediction.objects.exists()


def test_a_bad_token_is_401_even_when_anonymous_use_is_on(client, active_tiny, jpeg_bytes):
    reply = client.post(PREDICT, {"image": upload(jpeg_bytes)}, HTTP_AUTHORIZATION="Bearer wrong")
    assert_error(reply, 401, "unauthorized")


# ---- rate limiting ----------------------------------------------------------------------------

def test_the_third_request_in_a_minute_is_429_with_retry_after(client, active_tiny, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "2/m"
    assert predict(client, jpeg_bytes).status_code == 200
    assert predict(client, jpeg_bytes).status_code == 200
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 429, "rate_limited")
    assert 1 <= int(reply["Retry-After"]) <= 60
    assert Prediction.objects.count() == 2


def test_retry_after_is_the_time_left_in_the_window_not_its_length(client, active_tiny, jpeg_bytes, settings, monkeypatch):
    settings.API_RATE_LIMIT = "1/m"
    clock = [1_000_000.0]
    monkeypatch.setattr(ClientRateThrottle, "timer", staticmethod(lambda: clock[0]))
    assert predict(client, jpeg_bytes).status_code == 200
    clock[0] += 45.2
    reply = predict(client, jpeg_bytes)
    assert_error(reply, 429, "rate_limited")
    assert reply["Retry-After"] == "15"


def test_each_token_has_its_own_rate_budget(client, active_tiny, jpeg_bytes, settings):
    settings.API_RATE_LIMIT = "1/m"
    _, first = services.api_token_create(name="a")
    _, second = services.api_token_create(name="b")
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 200
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
    assert_error(client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {first}"), 429, "rate_limited")


@pytest.mark.parametrize("anonymous", [False, True])
def test_refused_tokens_spend_the_addresss_budget_so_guessing_is_held_to_the_rate(client, active_tiny, settings, anonymous):
    settings.API_RATE_LIMIT, settings.API_ALLOW_ANONYMOUS = "3/m", anonymous
    _, key = services.api_token_create(name="real")
    for wrong in ("Bearer guess-1", "Bearer guess-2", "Basic dXNlcjpwdw=="):  # a header that is no bearer token counts too
        assert_error(client.get("/api/v1/models", HTTP_AUTHORIZATION=wrong), 401, "unauthorized")
    reply = client.get("/api/v1/models", HTTP_AUTHORIZATION="Bearer guess-3")
    assert_error(reply, 429, "rate_limited")
    assert 1 <= int(reply["Retry-After"]) <= 60
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200  # a token's own budget


def test_a_request_with_a_foreign_host_header_gets_the_json_error_shape(client, settings):
    settings.DEBUG = False
    reply = client.get("/api/v1/models", HTTP_HOST="evil.example.com")
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "bad_request"
    page = client.get("/", HTTP_HOST="evil.example.com")
    assert page.status_code == 400
    assert "application/json" not in page["Content-Type"]


def test_an_allowed_classes_file_limits_the_answer_and_the_reply_says_so(client, active_tiny, jpeg_bytes, settings, tmp_path):
    assert predict(client, jpeg_bytes).json()["allowed_classes"] is None
    allowed = tmp_path / "farm.txt"
    allowed.write_text("# only these two live here\nowl\nfern\n")
    settings.ALLOWED_CLASSES_FILE = str(allowed)
    body = predict(client, jpeg_bytes).json()
    assert body["allowed_classes"] == {"applied": True, "count": 2, "source": "file"}
    assert sorted(p["label"] for p in body["predictions"]) == ["fern", "owl"]
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1.0, abs=1e-6)


def test_an_allowed_classes_file_naming_an_unknown_class_is_a_clear_server_side_error(client, active_tiny, jpeg_bytes, settings, tmp_path):
    allowed = tmp_path / "farm.txt"
    allowed.write_text("owl\nunicorn\n")
    settings.ALLOWED_CLASSES_FILE = str(allowed)
    error = assert_error(predict(client, jpeg_bytes), 503)
    assert error["code"] == "allowed_classes_unusable"
    assert "unicorn" in error["message"]


def test_a_panorama_says_the_model_saw_only_its_middle_and_an_ordinary_photo_says_nothing(client, active_tiny):
    import io

    from PIL import Image

    from tests.conftest import GOLDEN

    tiger = Image.open(GOLDEN / "animal" / "tiger.jpg").convert("RGB")
    panorama = Image.new("RGB", (tiger.width * 4, tiger.height))
    for n in range(4):
        panorama.paste(tiger, (n * tiger.width, 0))
    wide = io.BytesIO()
    panorama.save(wide, "JPEG")
    # Four 198x120 photos side by side: a 0.875 centre crop shows about 0.875^2 * 120 / 792 = 12% of it (the tiny
    # model's 32-pixel input rounds the crop).
    note = predict(client, wide.getvalue()).json()["crop_note"]
    match = re.fullmatch(r"The model looked only at the middle of this photo \((\d+)% of it\): crop the photo around "
                         r"the subject for a better answer\.", note)
    assert match and 10 <= int(match.group(1)) <= 13, note
    chinese = predict(client, wide.getvalue(), lang="zh-hans").json()["crop_note"]
    assert chinese == f"模型只看了这张照片的中间部分（占 {match.group(1)}%）：把照片裁剪到主体周围，结果会更准确。"
    assert predict(client, (GOLDEN / "animal" / "tiger.jpg").read_bytes()).json()["crop_note"] is None
