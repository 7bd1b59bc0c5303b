"""A "yes, that is right" confirms the answer the client was given: the verdict, in the language it was said."""

from __future__ import annotations

import pytest

from recognizer.photos import role_dir
from tests.webapp.helpers import assert_error, predict
from tests.webapp.learning import feedback_url
from webapp.models import Feedback, Prediction

pytestmark = pytest.mark.slow

GOLDEN = role_dir("golden")


@pytest.fixture
def kept(settings, media_root, default_served):
    settings.FEEDBACK_ENABLED = True
    settings.FEEDBACK_RETENTION_DAYS = 7
    return default_served


def answer(client, name: str, **params) -> dict:
    reply = predict(client, (GOLDEN / name).read_bytes(), **params)
    assert reply.status_code == 200, reply.content
    return reply.json()


def tell(client, prediction_id: int, correct: bool, lang: str = "en", **body):
    """Feedback on a prediction, with `lang` in the query."""
    return client.post(feedback_url(prediction_id) + f"?lang={lang}", {"correct": correct, **body}, content_type="application/json")


def stored() -> tuple[str, str]:
    item = Feedback.objects.get()
    return item.label, item.domain


def test_the_prediction_record_keeps_the_verdict_it_answered(client, kept):
    body = answer(client, "animal/tiger.jpg", domain="bird")
    kept_verdict = Prediction.objects.get(pk=body["id"]).verdict
    said = body["verdict"]
    assert kept_verdict["label"] == said["label_en"] == "tiger"
    assert [kept_verdict[k] for k in ("domain", "status", "index", "level")] == [said[k] for k in ("domain", "status", "index", "level")]
    assert "explanation" not in kept_verdict


def test_a_chinese_client_confirming_its_chinese_answer_stores_the_english_class(client, kept):
    body = answer(client, "animal/tiger.jpg", lang="zh-hans")
    assert body["verdict"]["label"] == "老虎"
    assert tell(client, body["id"], True, "zh-hans", label="老虎").status_code == 201
    assert stored() == ("tiger", "animal")


def test_a_confirmation_naming_another_class_is_refused_naming_the_answer_in_the_clients_language(client, kept):
    body = answer(client, "animal/tiger.jpg", lang="zh-hans")
    refused = assert_error(tell(client, body["id"], True, "zh-hans", label="狮子"), 400, "invalid_feedback")
    assert "老虎" in refused["message"] and "狮子" in refused["message"]
    assert not Feedback.objects.exists()


def test_yes_to_an_answer_filtered_to_birds_confirms_the_tiger_it_said_not_the_bird_listed_first(client, kept):
    body = answer(client, "animal/tiger.jpg", domain="bird")
    assert body["predictions"][0]["domain"] == "bird" and body["verdict"]["label"] == "tiger"
    assert tell(client, body["id"], True).status_code == 201
    assert stored() == ("tiger", "animal")
    assert Feedback.objects.get().model_label == "tiger"  # what the model answered, not the first bird listed


def test_a_correction_under_a_filter_records_the_answer_given_as_what_the_model_said(client, kept):
    body = answer(client, "animal/tiger.jpg", domain="bird")
    first_bird = body["predictions"][0]["label_en"]
    assert tell(client, body["id"], False, label=first_bird).status_code == 201
    item = Feedback.objects.get()
    assert (item.label, item.model_label) == (first_bird, "tiger")


def test_yes_to_an_uncertain_verdict_confirms_its_domain_and_no_class(client, kept):
    body = answer(client, "plant/thyme.jpg")
    assert body["verdict"]["status"] == "uncertain" and body["predictions"][0]["domain"] == "other"
    assert tell(client, body["id"], True).status_code == 201
    assert stored() == ("", "plant")


def test_a_label_added_to_an_uncertain_verdict_says_which_and_must_be_of_its_domain(client, kept):
    thyme = answer(client, "plant/thyme.jpg")
    refused = assert_error(tell(client, thyme["id"], True, label="Tiger"), 400, "invalid_feedback")
    assert "'plant'" in refused["message"]
    assert tell(client, thyme["id"], True, label="wild thyme").status_code == 201
    assert stored() == ("wild thyme", "plant")


def test_yes_to_a_group_verdict_stores_no_class_unless_the_label_names_one_of_its_members(client, kept):
    pig = answer(client, "animal/pig.jpg", lang="zh-hans")
    assert pig["verdict"]["level"] == "group"
    assert tell(client, pig["id"], True, "zh-hans", label="偶蹄动物").status_code == 201
    assert stored() == ("", "animal")
    Feedback.objects.all().delete()
    assert tell(client, pig["id"], True, label="Wild Boar").status_code == 201
    assert stored() == ("wild boar", "animal")
    Feedback.objects.all().delete()
    assert_error(tell(client, pig["id"], True, label="tiger"), 400, "invalid_feedback")


def test_yes_to_not_wildlife_is_the_other_domain(client, kept):
    body = answer(client, "other/mailbox.jpg")
    assert body["verdict"]["status"] == "not_wildlife"
    assert_error(tell(client, body["id"], True, domain="animal"), 400, "invalid_feedback")
    assert tell(client, body["id"], True).status_code == 201
    assert stored() == ("", "other")


def test_a_correction_naming_a_class_in_chinese_stores_its_english_label_and_domain(client, kept):
    body = answer(client, "animal/tiger.jpg", lang="zh-hans")
    assert tell(client, body["id"], False, "zh-hans", label="赤狐").status_code == 201
    assert stored() == ("red fox", "animal")


def test_a_correction_naming_the_answer_itself_or_a_class_of_another_domain_is_refused(client, kept):
    body = answer(client, "animal/tiger.jpg", lang="zh-hans")
    itself = assert_error(tell(client, body["id"], False, "zh-hans", label="老虎"), 400, "invalid_feedback")
    assert itself["message"].startswith("“老虎”是我们给出的答案（老虎）")
    other = assert_error(tell(client, body["id"], False, label="Red Fox", domain="bird"), 400, "invalid_feedback")
    assert other["message"] == "“Red Fox” is an animal, not a bird: choose that kind, or leave the kind out."
    # "Other" is no kind a sentence can name: "is an animal, not neither an animal, a bird nor a plant" read as nonsense.
    zebra = assert_error(tell(client, body["id"], False, label="zebra", domain="other"), 400, "invalid_feedback")
    assert zebra["message"] == "“zebra” is an animal: choose that kind instead of “Other”, or leave the kind out."
    car = assert_error(tell(client, body["id"], False, "zh-hans", label="sports car", domain="animal"), 400, "invalid_feedback")
    assert car["message"] == "“sports car”不是动物：请选择类型“其他”，或不选类型。"
    assert not Feedback.objects.exists()
    assert tell(client, body["id"], False, label="a tiger in a zoo", domain="animal").status_code == 201  # free text, as said
    assert stored() == ("a tiger in a zoo", "animal")


def test_an_exported_class_of_the_default_model_carries_its_chinese_label_so_a_trained_version_speaks_chinese(
    client, kept, admin_user, tmp_path
):
    # Exports wrote no label_zh: versions trained on feedback answered Chinese clients in English.
    from recognizer.datasets import scan_dataset
    from webapp import exports, review

    body = answer(client, "animal/tiger.jpg")
    assert tell(client, body["id"], False, label="赤狐", domain="animal").status_code == 201  # "red fox", in Chinese
    review.feedback_accept(feedback=Feedback.objects.get(), label="red fox", domain="animal", by=admin_user)
    exports.dataset_export(out=tmp_path / "data")
    scanned = scan_dataset(tmp_path / "data")
    assert [c.label for c in scanned.classes] == ["red fox"] and scanned.labels == {"zh-hans": ["赤狐"]}
