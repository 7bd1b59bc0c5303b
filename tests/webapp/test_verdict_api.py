"""The real default model, compiled for ONNX Runtime, answers real photos with a verdict and a heat map."""

from __future__ import annotations

import base64
import html
import io
import re

import pytest
from PIL import Image

from recognizer.photos import role_dir
from tests.webapp.helpers import assert_error, predict, upload

pytestmark = pytest.mark.slow

GOLDEN = role_dir("golden")
VERDICT_KEYS = {"domain", "domain_probability", "status", "label", "label_en", "index", "level", "explanation"}
HAN = re.compile(r"[\u4e00-\u9fff]")
ZH_BROWSER = "zh-CN,zh;q=0.9,en;q=0.5"


def photo(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def test_a_tiger_is_a_confident_tiger_of_the_animal_domain(client, default_served):
    body = predict(client, photo("animal/tiger.jpg")).json()
    verdict = body["verdict"]
    assert set(verdict) == VERDICT_KEYS
    assert (verdict["domain"], verdict["status"], verdict["level"], verdict["label"]) == ("animal", "confident", "class", "tiger")
    assert verdict["index"] == body["predictions"][0]["index"] == 292
    assert verdict["explanation"] == "Very likely a tiger."
    assert verdict["label_en"] == "tiger"


def test_with_lang_zh_hans_the_tiger_s_verdict_is_said_in_chinese_with_its_english_label_beside(client, default_served):
    verdict = predict(client, photo("animal/tiger.jpg"), lang="zh-hans").json()["verdict"]
    assert (verdict["label"], verdict["label_en"], verdict["level"], verdict["index"]) == ("老虎", "tiger", "class", 292)
    assert verdict["explanation"] == "很可能是老虎。"


def test_a_group_verdict_names_the_group_in_the_language_asked_for(client, default_served):
    english = predict(client, photo("animal/pig.jpg")).json()["verdict"]
    chinese = predict(client, photo("animal/pig.jpg"), lang="zh").json()["verdict"]
    assert (english["level"], english["label"], english["label_en"]) == ("group", "an even-toed ungulate", "an even-toed ungulate")
    assert english["explanation"] == "Probably an even-toed ungulate, but we cannot tell which kind."
    assert (chinese["level"], chinese["label"], chinese["label_en"]) == ("group", "偶蹄动物", "an even-toed ungulate")
    assert chinese["explanation"] == "大概是偶蹄动物，但分辨不出是哪一种。"


@pytest.mark.parametrize("name", ["other/mailbox.jpg", "plant/thyme.jpg", "bird/toucan.jpg"])
def test_a_verdict_without_a_label_is_explained_in_chinese_too(client, default_served, name):
    english = predict(client, photo(name)).json()["verdict"]
    chinese = predict(client, photo(name), lang="zh-hans").json()["verdict"]
    assert (chinese["label"], chinese["label_en"]) == (None, None)
    assert HAN.search(chinese["explanation"]) and not HAN.search(english["explanation"])
    assert english["explanation"].startswith("This ")


def test_the_page_in_chinese_shows_the_chinese_verdict_and_domain(client, default_served):
    page = html.unescape(client.post("/", {"image": upload(photo("animal/tiger.jpg"), "tiger.jpg")},
                                     HTTP_ACCEPT_LANGUAGE=ZH_BROWSER).content.decode())
    assert ">很可能是老虎。<" in page and re.search(r"领域：动物（把握 \d+%）", page)
    english = html.unescape(client.post("/", {"image": upload(photo("animal/tiger.jpg"), "tiger.jpg")}).content.decode())
    assert ">Very likely a tiger.<" in english and re.search(r"Domain: animal \(\d+% sure\)", english)


@pytest.mark.parametrize("name", ["other/mailbox.jpg", "other/pickup-truck.jpg", "other/hammer.jpg"])
def test_everyday_things_are_not_wildlife_and_name_nothing(client, default_served, name):
    verdict = predict(client, photo(name)).json()["verdict"]
    assert (verdict["domain"], verdict["status"], verdict["label"], verdict["level"]) == ("other", "not_wildlife", None, None)


@pytest.mark.parametrize("name", ["plant/thyme.jpg", "plant/lantana.jpg", "plant/eggplant.jpg"])
def test_plants_whose_top_imagenet_class_is_a_thing_are_plants(client, default_served, name):
    body = predict(client, photo(name)).json()
    assert body["predictions"][0]["domain"] == "other"  # "plant pot", "hair clip": the ImageNet head alone is wrong
    assert (body["verdict"]["domain"], body["verdict"]["status"]) == ("plant", "uncertain")


def test_a_filter_that_hides_most_of_the_belief_says_so_and_keeps_both_numbers(client, default_served):
    unfiltered = {p["index"]: p["probability"] for p in predict(client, photo("plant/thyme.jpg"), top_k="20").json()["predictions"]}
    body = predict(client, photo("plant/thyme.jpg"), domain="plant").json()
    assert "rescaled" in body["domain_note"]
    assert body["domain_note"].startswith("Only ") and body["domain_note"].count("%") == 2
    chinese = predict(client, photo("plant/thyme.jpg"), domain="plant", lang="zh-hans").json()["domain_note"]
    assert chinese.startswith("模型的概率只有 ") and "植物类别" in chinese and "100%" in chinese
    shares = [p["probability_in_domain"] for p in body["predictions"]]
    assert shares == sorted(shares, reverse=True) and shares[0] > body["predictions"][0]["probability"]
    for p in body["predictions"]:
        assert p["index"] not in unfiltered or p["probability"] == pytest.approx(unfiltered[p["index"]])


def test_explain_returns_a_png_heat_map_of_the_model_input(client, default_served):
    plain = predict(client, photo("animal/tiger.jpg")).json()
    assert plain["heatmap_png_base64"] is None  # only when asked: it costs a PNG encode
    body = predict(client, photo("animal/tiger.jpg"), explain="true").json()
    picture = Image.open(io.BytesIO(base64.b64decode(body["heatmap_png_base64"])))
    assert (picture.format, picture.size) == ("PNG", (224, 224))


def test_a_version_compiled_without_its_feature_map_refuses_explain_with_409(client, default_served, monkeypatch):
    from webapp.runtime import runtime

    engine = runtime().get("imagenet-efficientnet_lite0").engine
    forward = engine._forward
    monkeypatch.setattr(engine, "_forward", lambda batch: forward(batch)[0])
    reply = predict(client, photo("animal/tiger.jpg"), explain="true")
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "explain_unavailable"
    assert "manage.py recompile" in reply.json()["error"]["message"]  # "register it again" was refused as registered
    chinese = predict(client, photo("animal/tiger.jpg"), explain="true", lang="zh-hans").json()["error"]["message"]
    assert chinese.startswith("此模型版本编译时未包含特征图")
    assert predict(client, photo("animal/tiger.jpg")).json()["verdict"]["domain"] == "animal"


def test_a_ten_pixel_picture_is_refused_as_too_small_to_judge_not_answered(client, default_served):
    small = io.BytesIO()
    Image.open(io.BytesIO(photo("animal/tiger.jpg"))).resize((10, 10)).save(small, "PNG")
    reply = predict(client, small.getvalue(), "small.png")
    error = assert_error(reply, 400, "image_too_small")
    assert error["message"] == "The image is 10x10 pixels, too small to judge: each side must be at least 32 pixels."
