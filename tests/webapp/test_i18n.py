"""Chinese and English: the API by its `lang` parameter, the page and the admin by the reader's browser or choice."""

from __future__ import annotations

import base64
import html
import io
import json
import re

import numpy as np
import pytest

from recognizer.groups import imagenet_groups
from recognizer.labels import imagenet_classes
from recognizer.verdict import Thresholds, decide
from tests.conftest import random_photo
from tests.imagenet_tiny import CLASSES, NAME, jpeg_photo, save_imagenet_tiny
from tests.webapp.helpers import assert_error, upload
from webapp.verdicts import verdict_reply

PREDICT = "/api/v1/predict"
ZH_BROWSER = "zh-CN,zh;q=0.9,en;q=0.5"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def imagenet_tiny(tmp_path_factory):
    return save_imagenet_tiny(tmp_path_factory.mktemp("imagenet-tiny"))


@pytest.fixture
def active(db, settings, imagenet_tiny, fresh_runtime):
    from webapp import services

    settings.DEFAULT_MODEL_NAME = NAME
    return services.model_version_register(artifact_path=imagenet_tiny, activate=True)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return jpeg_photo()


def labels(body: dict) -> list[tuple[str, str]]:
    return [(p["label_en"], p["label"]) for p in body["predictions"]]


# ---- the API: `lang` decides, never Accept-Language ------------------------------------------

def test_the_api_answers_in_english_even_to_a_client_whose_headers_prefer_chinese(client, active, jpeg):
    reply = client.post(PREDICT, {"image": upload(jpeg)}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    assert reply.status_code == 200
    pairs = labels(reply.json())
    assert len(pairs) == 4 and all(english == label for english, label in pairs)
    assert {english for english, _ in pairs} == {english for english, _ in CLASSES.values()}


@pytest.mark.parametrize("lang", ["zh-hans", "zh", "ZH-Hans"])
def test_lang_in_the_query_answers_chinese_labels_with_the_english_beside_them(client, active, jpeg, lang):
    reply = client.post(f"{PREDICT}?lang={lang}", {"image": upload(jpeg)})
    assert reply.status_code == 200
    assert sorted(labels(reply.json())) == sorted(CLASSES.values())


def test_lang_in_a_multipart_body_or_a_json_body_works_the_same(client, active, jpeg):
    multipart = client.post(PREDICT, {"image": upload(jpeg), "lang": "zh"})
    body = {"image_base64": base64.b64encode(jpeg).decode(), "lang": "zh-hans"}
    as_json = client.post(PREDICT, body, content_type="application/json")
    assert sorted(labels(multipart.json())) == sorted(labels(as_json.json())) == sorted(CLASSES.values())


def test_lang_en_answers_english_and_the_batch_endpoint_takes_lang_too(client, active, jpeg):
    english = client.post(f"{PREDICT}?lang=en", {"image": upload(jpeg)}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER).json()
    assert all(english_label == label for english_label, label in labels(english))
    batch = client.post("/api/v1/predict/batch", {"images": [upload(jpeg), upload(jpeg)], "lang": "zh"}).json()
    assert [sorted(labels(r)) for r in batch["results"]] == [sorted(CLASSES.values())] * 2


def test_in_a_batch_an_image_s_own_error_speaks_the_language_asked_for(client, active, jpeg):
    body = client.post("/api/v1/predict/batch", {"images": [upload(jpeg), upload(b"", "empty.jpg")], "lang": "zh"}).json()
    good, bad = body["results"]
    assert sorted(labels(good)) == sorted(CLASSES.values())
    assert (bad["error"]["code"], bad["error"]["message"]) == ("empty_image", "文件是空的（0 字节）。请发送 JPEG、PNG、WebP、GIF 或 BMP 格式的照片。")


@pytest.mark.parametrize("lang", ["fr", "zh-tw", "chinese"])
def test_an_unknown_lang_is_a_400_naming_the_parameter(client, active, jpeg, lang):
    error = assert_error(client.post(PREDICT, {"image": upload(jpeg), "lang": lang}), 400, "invalid_parameter")
    assert error["message"].startswith("lang:")


@pytest.mark.parametrize(
    "field, value, english, chinese",
    [
        ("top_k", "21", "top_k: must be at most 20.", "参数 top_k 无效：不能大于 20。"),
        ("top_k", "abc", "top_k: must be a whole number.", "参数 top_k 无效：必须是整数。"),
        ("domain", "fish", "domain: must be one of: animal, bird, plant.", "参数 domain 无效：必须是以下之一：animal, bird, plant。"),
    ],
)
def test_a_bad_parameter_is_explained_in_either_language(client, active, jpeg, field, value, english, chinese):
    in_english = assert_error(client.post(PREDICT, {"image": upload(jpeg), field: value}), 400, "invalid_parameter")
    in_chinese = assert_error(client.post(f"{PREDICT}?lang=zh", {"image": upload(jpeg), field: value}), 400, "invalid_parameter")
    assert (in_english["message"], in_chinese["message"]) == (english, chinese)


def test_a_lang_in_the_body_speaks_the_errors_about_that_body_s_other_fields(client, active, jpeg):
    as_form = assert_error(client.post(PREDICT, {"image": upload(jpeg), "top_k": "abc", "lang": "zh"}), 400, "invalid_parameter")
    as_json = assert_error(client.post(PREDICT, {"image_base64": base64.b64encode(jpeg).decode(), "top_k": "abc", "lang": "zh"},
                                       content_type="application/json"), 400, "invalid_parameter")
    assert as_form["message"] == as_json["message"] == "参数 top_k 无效：必须是整数。"


@pytest.mark.parametrize("body, chinese", [
    ({"correct": "yes"}, "参数 correct 无效：必须是 true 或 false。"),
    ({"label": "fox"}, "参数 correct 无效：是必填项。"),
])
def test_feedback_field_errors_follow_the_body_s_lang_with_no_english_left(client, active, body, chinese):
    reply = client.post("/api/v1/predictions/1/feedback", {**body, "lang": "zh"}, content_type="application/json")
    assert assert_error(reply, 400, "invalid_parameter")["message"] == chinese


def test_errors_keep_their_english_code_and_speak_the_language_asked_for(client, active):
    english = assert_error(client.post(PREDICT, {"image": upload(b"", "empty.jpg")}), 400, "empty_image")
    chinese = assert_error(client.post(PREDICT, {"image": upload(b"", "empty.jpg"), "lang": "zh"}), 400, "empty_image")
    assert english["message"].startswith("The file is empty")
    assert chinese["message"] == "文件是空的（0 字节）。请发送 JPEG、PNG、WebP、GIF 或 BMP 格式的照片。"


def test_a_core_error_with_parameters_is_translated_with_its_numbers_and_words(client, active):
    tiny = io.BytesIO()
    random_photo((4, 30)).save(tiny, "PNG")
    error = assert_error(client.post(PREDICT, {"image": upload(tiny.getvalue(), "a.png", "image/png"), "lang": "zh"}), 400, "image_too_small")
    assert error["message"] == "图片为 4x30 像素，太小，无法判断：每条边至少需要 8 像素。"
    pdf = assert_error(client.post(PREDICT, {"image": upload(b"just some words", "a.jpg"), "lang": "zh"}), 415, "unsupported_format")
    assert "（文本）" in pdf["message"]


def test_an_error_raised_before_the_body_is_read_follows_the_query_lang(client, active):
    english = assert_error(client.post(PREDICT, "x", content_type="text/plain", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER), 415, "unsupported_media_type")
    chinese = assert_error(client.post(f"{PREDICT}?lang=zh", "x", content_type="text/plain"), 415, "unsupported_media_type")
    assert not HAN.search(english["message"]) and HAN.search(chinese["message"])
    missing = assert_error(client.post(PREDICT, {"image_base64": "", "lang": "zh"}, content_type="application/json"), 400, "invalid_base64")
    assert HAN.search(missing["message"])


@pytest.mark.parametrize("name", ["nope", "Model", "text"])  # "Model" and "text" are words of the catalog
def test_an_unknown_model_is_named_as_sent_in_the_chinese_message(client, active, jpeg, name):
    error = assert_error(client.post(PREDICT, {"image": upload(jpeg), "model": name, "lang": "zh"}), 400, "unknown_model")
    assert error["message"] == f"没有名为 '{name}' 的模型；GET /api/v1/models 可列出所有模型。"


def test_the_api_s_own_404_answers_in_the_query_lang(client, db):
    error = assert_error(client.get("/api/v1/models/missing?lang=zh"), 404, "model_not_found")
    assert error["message"] == "没有名为 'missing' 的模型的启用版本。"


# ---- the page: the browser's language, then the reader's choice ------------------------------

def page_text(reply) -> str:
    return html.unescape(reply.content.decode())


def test_a_browser_that_prefers_chinese_gets_the_page_in_chinese(client, active):
    text = page_text(client.get("/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert '<html lang="zh-hans"' in text
    assert "野生动植物识别" in text and "选择照片" in text and ">鸟类<" in text
    assert "Choose a photo" not in text and "{#" not in text and "{%" not in text


def test_without_accept_language_the_page_is_english(client, active):
    text = page_text(client.get("/"))
    assert '<html lang="en"' in text and "Choose a photo" in text
    assert not HAN.search(text.split('class="language-switcher"')[0])


def test_the_switcher_sets_english_for_a_chinese_browser_and_back(client, active):
    switched = client.post("/i18n/setlang/", {"language": "en", "next": "/"}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    assert switched.status_code == 302 and switched["Location"] == "/"
    assert "Choose a photo" in page_text(client.get("/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "选择照片" in page_text(client.get("/"))


def test_the_switcher_marks_the_current_language_and_names_each_in_its_own(client, active):
    text = page_text(client.get("/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert re.search(r'value="zh-hans" lang="zh-hans"\s+aria-current="true">简体中文<', text)
    assert re.search(r'value="en" lang="en"\s+>English<', text)


def test_the_page_s_answer_uses_the_page_language(client, active, jpeg):
    rendered = page_text(client.post("/", {"image": upload(jpeg)}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert all(chinese in rendered for _, chinese in CLASSES.values())
    as_json = client.post("/", {"image": upload(jpeg)}, HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    assert sorted(labels(as_json.json())) == sorted(CLASSES.values())



def test_the_page_s_answer_has_no_english_left_in_chinese_with_a_domain_filter(client, active, jpeg):
    sent = {"image": upload(jpeg), "domain": "plant"}
    rendered = page_text(client.post("/", sent, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    for english in ("Show where the model looked", "The five most likely labels", "Where the model looked", " within "):
        assert english not in rendered
    assert "最可能的五个标签" in rendered and "显示模型看了哪里" in rendered
    assert re.search(r"在植物类别中占 \d+%", rendered)

def test_the_page_s_errors_are_in_the_page_language(client, active):
    reply = client.post("/", {}, HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    assert assert_error(reply, 400, "missing_image")["message"] == "请先选择一张照片。"
    page = page_text(client.post("/", {"image": upload(b"", "e.jpg")}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert "文件是空的" in page


def test_the_page_script_catalog_is_chinese_for_a_chinese_reader(client, db):
    def escaped(text: str) -> str:  # the catalog is JSON inside JavaScript, with non-ASCII escaped
        return json.dumps(text)[1:-1]

    chinese = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER).content.decode()
    assert escaped("正在识别…") in chinese and escaped("动物") in chinese
    assert escaped("正在识别…") not in client.get("/jsi18n/").content.decode()


def test_the_admin_follows_the_browser_language(client, db):
    assert "用户名" in page_text(client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert "Username" in page_text(client.get("/admin/login/"))


def test_the_admin_s_own_actions_and_columns_are_translated(admin_client, active):
    chinese = page_text(admin_client.get("/admin/webapp/modelversion/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert "启用所选版本" in chinese and "已服务的预测" in chinese
    assert "Activate the selected version" in page_text(admin_client.get("/admin/webapp/modelversion/"))


def test_the_admin_s_help_texts_are_translated(admin_client, active):
    chinese = page_text(admin_client.get("/admin/webapp/allowedclasslist/add/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert "每行一个类别" in chinese and "One class per line" not in chinese
    assert "One class per line" in page_text(admin_client.get("/admin/webapp/allowedclasslist/add/"))


def test_the_page_s_own_error_pages_are_in_the_page_language(client, db):
    missing = client.get("/no-such-page", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    assert missing.status_code == 404 and "找不到页面" in page_text(missing)
    assert "Page not found" in page_text(client.get("/no-such-page"))


def test_the_feedback_form_under_an_answer_is_in_the_page_language(client, active, jpeg, settings):
    settings.FEEDBACK_ENABLED = True
    chinese = page_text(client.post("/", {"image": upload(jpeg)}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert "识别错了？告诉我们它是什么" in chinese and "照片会保留" in chinese
    assert "Wrong? Tell us what it is" in page_text(client.post("/", {"image": upload(jpeg)}))


# ---- the verdict: the core's English sentences, said in the reply's language -------------------

def test_a_genus_verdict_reads_in_chinese_with_the_latin_genus_and_unchanged_in_english():
    probabilities = np.zeros(1000)
    probabilities[[277, 278]] = 0.4  # red fox and kit fox, neither sure alone: the genus Vulpes is
    verdict = decide(probabilities, np.array([0.95, 0, 0.05, 0]), imagenet_classes(), imagenet_groups(),
                     Thresholds(domain=0.8, label=0.6, group=0.6))
    chinese, english = verdict_reply(verdict, None, "zh-hans"), verdict_reply(verdict, None, "en")
    assert (chinese["label"], chinese["label_en"]) == ("狐（Vulpes 属）", "a fox (genus Vulpes)")
    assert chinese["explanation"] == "大概是狐（Vulpes 属），但分辨不出是哪一种。"
    assert english["label"] == english["label_en"] == "a fox (genus Vulpes)"
    assert english["explanation"] == "Probably a fox (genus Vulpes), but we cannot tell which kind."


def test_the_chinese_page_suggests_the_chinese_class_labels_first_then_the_english(client, active, settings):
    settings.FEEDBACK_ENABLED = True
    chinese = client.get("/", HTTP_ACCEPT_LANGUAGE=ZH_BROWSER).context["class_labels"][NAME]
    english = client.get("/").context["class_labels"][NAME]
    assert english == sorted(label for label, _zh in CLASSES.values())
    assert HAN.search(chinese[0]) and chinese[-len(english):] == english


def test_the_chinese_thank_you_page_names_the_class_in_chinese(client, active, jpeg, settings, tmp_path):
    from webapp.models import Feedback, Prediction

    settings.FEEDBACK_ENABLED, settings.MEDIA_ROOT = True, tmp_path / "media"
    client.post("/", {"image": upload(jpeg)}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER)
    prediction = Prediction.objects.get()
    answer = prediction.verdict["label"] or prediction.top[0]["label"]
    said = "萨摩耶" if answer != "Samoyed" else "雏菊"
    done = page_text(client.post(f"/predictions/{prediction.pk}/feedback", {"label": said}, HTTP_ACCEPT_LANGUAGE=ZH_BROWSER))
    assert Feedback.objects.get().label in ("Samoyed", "daisy")  # stored in English
    assert f"（{said}）" in done and "Samoyed" not in done and "daisy" not in done
