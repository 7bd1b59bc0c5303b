"""Feedback on answers: ids in replies, the feedback endpoint and page form, kept photos, retention and erasure."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.webapp.helpers import assert_error, predict, upload
from tests.webapp.learning import feedback_url, gps_jpeg, jpeg_bytes, keeping, other_jpeg, predicted, send  # noqa: F401
from webapp import services
from webapp.models import ApiToken, Feedback, KeptPhoto, Prediction


# ---- ids and the endpoint ----------------------------------------------------------------------

def test_every_prediction_reply_carries_the_id_of_its_record(client, active_tiny, jpeg_bytes):
    one = predict(client, jpeg_bytes).json()
    batch = client.post("/api/v1/predict/batch", {"images": [upload(jpeg_bytes), upload(jpeg_bytes)]}).json()
    ids = [one["id"]] + [r["id"] for r in batch["results"]]
    assert len(set(ids)) == 3
    assert list(Prediction.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)) == sorted(ids)
    page = client.post("/", {"image": upload(jpeg_bytes)}, headers={"Accept": "application/json"}).json()
    assert Prediction.objects.get(pk=page["id"]).source == "page"


def test_feedback_is_recorded_once_with_the_models_answer(client, predicted):
    reply = send(client, predicted, domain="animal", comment="in the garden at dusk")
    assert reply.status_code == 201, reply.content
    item = Feedback.objects.get()
    assert reply.json()["id"] == item.pk and reply.json()["status"] == "pending"
    assert (item.prediction_id, item.correct, item.label, item.domain) == (predicted, False, "red fox", "animal")
    assert item.model_label == "not an animal, bird or plant"  # the verdict the tiny model gave this picture
    assert item.comment == "in the garden at dusk" and item.source == "api"


def test_feedback_without_a_kind_replies_domain_null_as_the_request_schema_sends_it(client, predicted):
    reply = send(client, predicted)  # free text, no domain: nothing says its kind
    assert reply.status_code == 201 and reply.json()["domain"] is None
    schema = client.get("/api/v1/openapi.json").json()
    responses = schema["paths"]["/api/v1/predictions/{prediction_id}/feedback"]["post"]["responses"]
    assert {"400", "404", "409", "410", "411", "413", "415", "429", "500"} <= set(responses)  # 415: a form body


def test_a_correct_answer_needs_no_label_and_records_the_verdicts_domain(client, predicted):
    assert client.post(feedback_url(predicted), {"correct": True}, content_type="application/json").status_code == 201
    item = Feedback.objects.get()
    verdict = Prediction.objects.get(pk=predicted).verdict
    assert verdict["status"] == "not_wildlife"  # the tiny model's answer for this picture: no kind named
    assert (item.correct, item.label, item.domain) == (True, "", "other")
    assert item.model_label == "not an animal, bird or plant"  # the answer, not its top class (teapot), never claimed


def test_an_unknown_prediction_is_404(client, keeping):
    assert_error(send(client, 999_999), 404, "prediction_not_found")



@pytest.mark.parametrize("prediction_id", [2**63, 10**23])
def test_an_id_past_the_databases_integers_is_404_on_the_api_and_the_page(client, keeping, prediction_id):
    assert_error(send(client, prediction_id), 404, "prediction_not_found")
    reply = client.post(f"/predictions/{prediction_id}/feedback", {"label": "fox"}, headers={"Accept": "application/json"})
    assert_error(reply, 404, "prediction_not_found")


def test_feedback_errors_are_said_in_the_language_asked_for(client, predicted):
    unknown = assert_error(client.post(
        feedback_url(999_999) + "?lang=zh-hans", {"correct": False, "label": "fox"}, content_type="application/json"), 404)
    assert "999999" in unknown["message"] and "反馈" in unknown["message"]
    no_label = assert_error(client.post(feedback_url(predicted) + "?lang=zh-hans", {"correct": False},
                                        content_type="application/json"), 400, "invalid_feedback")
    assert no_label["message"] == "请说明照片里是什么：答案错误时需要填写标签。"


def test_a_feedback_body_that_is_not_json_is_400_invalid_json_as_on_predict(client, predicted):
    reply = client.post(feedback_url(predicted), "{not json", content_type="application/json")
    assert "JSON" in assert_error(reply, 400, "invalid_json")["message"]
    listed = client.post(feedback_url(predicted), "[1, 2]", content_type="application/json")  # was "correct: is required"
    assert '{"correct": false, "label": "red fox"}' in assert_error(listed, 400, "invalid_json")["message"]

@pytest.mark.parametrize("raw, words", [
    ('{"correct": true, "x": 123456789012345678901234}', "more than 20 characters"),
    ('{"correct": true, "x": Infinity}', "Infinity is not a JSON number"),
    ('{"correct": true, "x": 1e999999}', "too large"),
])
@pytest.mark.parametrize("debug", [False, True])
def test_a_feedback_body_is_held_to_predicts_limits_on_json_numbers(client, predicted, settings, raw, words, debug):
    settings.DEBUG = debug  # django-ninja then adds the parser's words to its own, which must not change the reply
    reply = client.post(feedback_url(predicted), raw, content_type="application/json")
    assert words in assert_error(reply, 400, "invalid_json")["message"]
    assert not Feedback.objects.exists()


def test_feedback_twice_on_one_prediction_is_409_and_nothing_is_written_twice(client, predicted):
    assert send(client, predicted).status_code == 201
    assert_error(send(client, predicted, label="grey fox"), 409, "feedback_exists")
    assert Feedback.objects.get().label == "red fox"


def test_the_database_refuses_a_second_feedback_even_past_the_service(predicted):
    from django.db import IntegrityError, transaction

    Feedback.objects.create(prediction_id=predicted, correct=True, model_label="x", source="api")
    with pytest.raises(IntegrityError), transaction.atomic():
        Feedback.objects.create(prediction_id=predicted, correct=False, label="y", model_label="x", source="api")


@pytest.mark.parametrize("body, field", [
    ({"label": "x" * 201}, "label"),
    ({"label": ""}, "label"),
    ({"domain": "mineral"}, "domain"),
    ({"correct": "perhaps"}, "correct"),
])
def test_bad_feedback_is_400_naming_the_field_and_records_nothing(client, predicted, body, field):
    error = assert_error(send(client, predicted, **body), 400)
    assert field in error["message"]
    assert not Feedback.objects.exists()


def test_a_label_of_exactly_200_characters_is_accepted(client, predicted):
    assert send(client, predicted, label="x" * 200).status_code == 201


def test_another_tokens_prediction_is_not_found_for_it(client, keeping, jpeg_bytes):
    _, mine = services.api_token_create(name="mine")
    _, theirs = services.api_token_create(name="theirs")
    made = client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, headers={"Authorization": f"Bearer {mine}"})
    prediction_id = made.json()["id"]
    other = client.post(feedback_url(prediction_id), {"correct": False, "label": "fox"}, content_type="application/json",
                        headers={"Authorization": f"Bearer {theirs}"})
    assert_error(other, 404, "prediction_not_found")
    assert_error(send(client, prediction_id), 404)  # nor for anonymous callers
    own = client.post(feedback_url(prediction_id), {"correct": False, "label": "fox"}, content_type="application/json",
                      headers={"Authorization": f"Bearer {mine}"})
    assert own.status_code == 201


def test_an_anonymous_prediction_is_answered_only_by_the_client_that_made_it(client, keeping, jpeg_bytes):
    prediction_id = predict(client, jpeg_bytes).json()["id"]  # the test client's address, 127.0.0.1
    elsewhere = client.post(feedback_url(prediction_id), {"correct": True}, content_type="application/json",
                            REMOTE_ADDR="198.51.100.7")
    assert_error(elsewhere, 404, "prediction_not_found")
    _, key = services.api_token_create(name="a token")
    with_token = client.post(feedback_url(prediction_id), {"correct": True}, content_type="application/json",
                             headers={"Authorization": f"Bearer {key}"})
    assert_error(with_token, 404, "prediction_not_found")
    assert send(client, prediction_id).status_code == 201


def test_without_anonymous_use_feedback_needs_a_token(client, predicted, settings):
    settings.API_ALLOW_ANONYMOUS = False
    assert_error(send(client, predicted), 401, "unauthorized")
    assert not Feedback.objects.exists()


def test_feedback_shares_the_rate_limit_of_the_api(client, predicted, settings):
    settings.API_RATE_LIMIT = "2/m"  # the predict above counts: one request left, shared with feedback
    assert send(client, predicted).status_code == 201
    assert_error(send(client, predicted), 429, "rate_limited")


def test_with_feedback_off_no_photo_is_kept_and_feedback_is_refused(client, active_tiny, jpeg_bytes, media_root, settings):
    settings.FEEDBACK_ENABLED = False
    prediction_id = predict(client, jpeg_bytes).json()["id"]
    assert not KeptPhoto.objects.exists() and not Path(media_root).exists()
    assert "turned off" in assert_error(send(client, prediction_id), 404, "feedback_disabled")["message"]


def test_with_feedback_turned_off_a_photo_kept_before_takes_none_on_the_api_or_the_page(client, predicted, settings):
    settings.FEEDBACK_ENABLED = False
    chinese = client.post(feedback_url(predicted) + "?lang=zh-hans", {"correct": True}, content_type="application/json")
    assert "反馈" in assert_error(chinese, 404, "feedback_disabled")["message"]
    page = client.post(f"/predictions/{predicted}/feedback", {"label": "fox"}, headers={"Accept": "application/json"})
    assert_error(page, 404, "feedback_disabled")
    assert not Feedback.objects.exists()


def test_with_feedback_turned_off_the_refusal_page_offers_no_form_again(client, active_tiny, jpeg_bytes, keeping, settings):
    prediction_id = page_predict(client, jpeg_bytes)["id"]  # this session's, its photo kept while feedback was on
    settings.FEEDBACK_ENABLED = False
    refused = client.post(f"/predictions/{prediction_id}/feedback", {"label": "fox"})  # a reader without JavaScript
    assert refused.status_code == 404 and b"turned off" in refused.content
    assert b'name="label"' not in refused.content


def test_feedback_is_on_by_default_in_the_embedded_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FEEDBACK_"))}
    show = "from django.conf import settings as s; print(s.FEEDBACK_ENABLED, s.FEEDBACK_RETENTION_DAYS)"
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", show], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env={**env, "DJANGO_SETTINGS_MODULE": "webapp.settings.dev"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["True", "7"]


# ---- the page ----------------------------------------------------------------------------------

def page_predict(client, data: bytes) -> dict:
    reply = client.post("/", {"image": upload(data)}, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.content
    return reply.json()


def test_the_page_offers_the_form_with_the_models_classes_and_says_how_long_photos_are_kept(client, keeping, jpeg_bytes):
    html = client.post("/", {"image": upload(jpeg_bytes)}).content.decode()
    prediction_id = Prediction.objects.get().pk
    assert "Wrong? Tell us what it is" in html
    assert f'action="/predictions/{prediction_id}/feedback"' in html
    assert 'list="labels-tiny-wildlife"' in html and '<datalist id="labels-tiny-wildlife">' in html
    for label in ("cat", "owl", "fern", "teapot"):
        assert f'<option value="{label}">' in html
    assert "kept for 7 days" in html and "location and other metadata are removed" in html


def test_only_the_session_that_made_the_prediction_gives_feedback_on_the_page(client, keeping, jpeg_bytes):
    from django.test import Client

    prediction_id = page_predict(client, jpeg_bytes)["id"]
    stranger = Client()
    reply = stranger.post(f"/predictions/{prediction_id}/feedback", {"label": "fox"}, headers={"Accept": "application/json"})
    assert_error(reply, 404, "prediction_not_found")
    assert_error(send(client, prediction_id), 404)  # page predictions are not open to the API
    done = client.post(f"/predictions/{prediction_id}/feedback", {"label": "red fox", "domain": "animal"})
    assert done.status_code == 201 and "Thank you" in done.content.decode()
    assert Feedback.objects.get().source == "page"
    again = client.post(f"/predictions/{prediction_id}/feedback", {"label": "fox"}, headers={"Accept": "application/json"})
    assert_error(again, 409, "feedback_exists")


# ---- kept photos -------------------------------------------------------------------------------

def test_kept_photos_lose_their_location_and_every_other_metadata_but_stay_upright(client, keeping):
    prediction_id = predict(client, gps_jpeg()).json()["id"]
    kept = KeptPhoto.objects.get(prediction_id=prediction_id)
    data = Path(kept.image.path).read_bytes()
    assert b"FieldCam" not in data and b"north pond" not in data and b"Exif" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert not image.getexif() and "exif" not in image.info and "comment" not in image.info
        assert image.size == (40, 80)  # the orientation tag was applied to the pixels before it was dropped
        top = image.convert("RGB").getpixel((20, 5))
    assert top[2] > 150 and top[0] < 100  # the blue half is now on top


def test_a_kept_photo_is_the_picture_the_prediction_decoded_not_a_second_decode_of_the_upload(client, keeping):
    from recognizer.preprocessing import decode, open_image
    from tests.conftest import TINY_SPEC

    big = Image.new("RGB", (1600, 1200), (30, 120, 40))
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    data = out.getvalue()
    prediction_id = predict(client, data).json()["id"]
    with Image.open(KeptPhoto.objects.get(prediction_id=prediction_id).image.path) as kept:
        # Decoding for the 32x32 tiny model reduced it to a 32-times smaller picture: the file is that picture,
        # re-encoded, not the upload decoded again at FEEDBACK_PHOTO_MAX_SIDE (which would give 1024x768).
        assert kept.size == decode(open_image(data), TINY_SPEC).size == (50, 38)


def test_kept_photos_are_named_by_the_uploads_sha256_and_shared_by_equal_uploads(client, keeping, jpeg_bytes):
    import hashlib

    first, second = predict(client, jpeg_bytes).json()["id"], predict(client, jpeg_bytes).json()["id"]
    a, b = KeptPhoto.objects.get(prediction_id=first), KeptPhoto.objects.get(prediction_id=second)
    digest = hashlib.sha256(jpeg_bytes).hexdigest()
    assert a.image.name == b.image.name == f"feedback/{digest[:2]}/{digest}.jpg"
    assert a.sha256 == a.prediction.input_sha256 == digest  # the record's digest, not a second hash of the upload
    assert len([p for p in Path(keeping).rglob("*") if p.is_file()]) == 1
    assert Path(a.image.path).stat().st_mode & 0o777 == 0o640  # not Django's 0644: no other user of the host reads it
    assert Path(a.image.path).parent.stat().st_mode & 0o777 == 0o750


def test_each_photo_of_a_batch_is_kept_under_its_own_uploads_sha256(client, keeping, jpeg_bytes, other_jpeg):
    import hashlib

    batch = client.post("/api/v1/predict/batch", {"images": [upload(jpeg_bytes), upload(other_jpeg)]}).json()
    ids = [r["id"] for r in batch["results"]]
    kept = [KeptPhoto.objects.get(prediction_id=i).sha256 for i in ids]
    assert kept == [hashlib.sha256(jpeg_bytes).hexdigest(), hashlib.sha256(other_jpeg).hexdigest()]


def test_purge_deletes_photos_past_retention_unless_feedback_arrived(client, keeping, jpeg_bytes, other_jpeg):
    other = other_jpeg
    with_feedback, without, shared, fresh = (predict(client, d).json()["id"] for d in (jpeg_bytes, other, jpeg_bytes, gps_jpeg()))
    assert send(client, with_feedback).status_code == 201
    KeptPhoto.objects.exclude(prediction_id=fresh).update(kept_until=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("purge_uploads", stdout=out)
    assert "deleted the photos of 2 predictions (1 file removed) past" in out.getvalue()  # `shared`'s file stays
    gone = {p.prediction_id for p in KeptPhoto.objects.filter(deleted_at__isnull=False)}
    assert gone == {without, shared}
    for kept in KeptPhoto.objects.filter(prediction_id__in=[with_feedback, fresh]):
        assert Path(kept.image.path).is_file()  # the file `shared` pointed at stays: feedback keeps it
    assert len([p for p in Path(keeping).rglob("*") if p.is_file()]) == 2
    assert_error(send(client, without), 410, "photo_deleted")


def test_erase_removes_one_persons_photos_feedback_or_not(client, keeping, jpeg_bytes, other_jpeg, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    _, key = services.api_token_create(name="alice's app", user=alice)
    hers = client.post("/api/v1/predict", {"image": upload(jpeg_bytes)}, headers={"Authorization": f"Bearer {key}"}).json()["id"]
    client.post(feedback_url(hers), {"correct": True}, content_type="application/json", headers={"Authorization": f"Bearer {key}"})
    anyone = predict(client, other_jpeg).json()["id"]
    out = io.StringIO()
    call_command("erase_uploads", "--user", "alice", stdout=out)
    assert out.getvalue().strip() == "erased the photo of 1 prediction (1 file removed)"
    assert KeptPhoto.objects.get(prediction_id=hers).deleted_at is not None
    assert not Path(keeping, KeptPhoto.objects.get(prediction_id=hers).image.name or "none").is_file()
    assert KeptPhoto.objects.get(prediction_id=anyone).deleted_at is None


def test_erase_removes_one_periods_photos(client, keeping, jpeg_bytes):
    old, new = predict(client, jpeg_bytes).json()["id"], predict(client, gps_jpeg()).json()["id"]
    KeptPhoto.objects.filter(prediction_id=old).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=4)).date().isoformat()
    until = (timezone.now() - timedelta(days=1)).date().isoformat()
    call_command("erase_uploads", "--since", since, "--until", until, stdout=io.StringIO())
    assert KeptPhoto.objects.get(prediction_id=old).deleted_at is not None
    assert KeptPhoto.objects.get(prediction_id=new).deleted_at is None


@pytest.mark.parametrize("args, message", [
    ((), "Say whose photos"),
    (("--user", "nobody"), "no user 'nobody'"),
    (("--since", "yesterday"), "YYYY-MM-DD"),
    (("--since", "2026-01-02", "--until", "2026-01-01"), "before --until"),
])
def test_erase_refuses_unclear_requests(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("erase_uploads", *args)


def test_pruning_history_keeps_predictions_with_feedback_and_deletes_the_others_photo_files(client, keeping, jpeg_bytes, other_jpeg, admin_user):
    kept = predict(client, jpeg_bytes).json()["id"]
    assert send(client, kept).status_code == 201
    pruned = predict(client, other_jpeg).json()["id"]
    pruned_file = Path(KeptPhoto.objects.get(prediction_id=pruned).image.path)
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    out = io.StringIO()
    call_command("prune_history", "--before", tomorrow, "--superuser", admin_user.username, stdout=out)
    assert out.getvalue().startswith("deleted 1 predictions")  # the prediction itself, not its cascade
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept]
    assert Feedback.objects.get().prediction_id == kept and Path(KeptPhoto.objects.get().image.path).is_file()
    assert not pruned_file.exists()


@pytest.mark.parametrize("body, problem", [
    ({"correct": False, "label": "bear\u0000cub"}, "NUL characters"),
    ({"correct": False, "label": "bear", "comment": "a\u0000b"}, "NUL characters"),
    ({"correct": True, "label": "Cat"}, "'correct' is true but 'label' 'Cat' names a class outside the answer's domain 'other'"),
    ({"correct": True, "domain": "NOT-THE-ANSWERS"}, "'correct' is true but 'domain' is"),
])
def test_feedback_that_could_not_be_stored_or_says_two_things_is_refused(client, predicted, body, problem):
    if body.get("domain") == "NOT-THE-ANSWERS":
        answered = Prediction.objects.get(pk=predicted).top[0]["domain"]
        body = {**body, "domain": "bird" if answered != "bird" else "plant"}
    reply = client.post(feedback_url(predicted), body, content_type="application/json")
    assert problem in assert_error(reply, 400, "invalid_feedback")["message"]
    assert not Feedback.objects.exists()


@pytest.mark.parametrize("value", ["yes", "off", 0, 1])
def test_correct_must_be_a_json_boolean_and_the_error_names_the_field_as_sent(client, predicted, value):
    reply = client.post(feedback_url(predicted), {"correct": value}, content_type="application/json")
    assert assert_error(reply, 400, "invalid_parameter")["message"] == "correct: must be true or false."


def test_right_with_the_answers_own_label_and_domain_is_accepted(client, predicted):
    top = Prediction.objects.get(pk=predicted).top[0]
    reply = client.post(feedback_url(predicted), {"correct": True, "label": top["label"].upper(), "domain": top["domain"]},
                        content_type="application/json")
    assert reply.status_code == 201


def test_lang_in_the_feedback_body_chooses_the_language_of_its_errors(client, predicted):
    reply = client.post(feedback_url(predicted), {"correct": False, "lang": "zh"}, content_type="application/json")
    assert "请说明照片里是什么" in assert_error(reply, 400, "invalid_feedback")["message"]


def test_a_media_root_that_cannot_be_written_costs_the_photo_not_the_answer(client, keeping, jpeg_bytes, settings, caplog):
    (keeping.parent / "a-file").write_text("not a folder")
    settings.MEDIA_ROOT = keeping.parent / "a-file" / "media"  # every write under it fails, as on a read-only disk
    reply = predict(client, jpeg_bytes)
    assert reply.status_code == 200 and reply.json()["id"] == Prediction.objects.get().pk
    assert not KeptPhoto.objects.exists()
    assert any("not kept for feedback" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_erasing_says_when_photo_files_are_not_under_this_media_root(client, keeping, jpeg_bytes, settings, tmp_path):
    predict(client, jpeg_bytes)
    settings.MEDIA_ROOT = tmp_path / "another-media-root"  # as a command run with another host's settings would
    out, err = io.StringIO(), io.StringIO()
    call_command("erase_uploads", "--since", "2000-01-01", stdout=out, stderr=err)
    assert "erased the photo of 1 prediction (0 files removed)" in out.getvalue()
    assert "1 of those photo files were not found under MEDIA_ROOT" in err.getvalue()



def test_the_page_s_yes_button_confirms_without_javascript_and_ignores_the_label_field(client, keeping, jpeg_bytes):
    page = client.post("/", {"image": upload(jpeg_bytes)}).content.decode()
    assert "Yes, it is right" in page
    prediction = Prediction.objects.get()
    done = client.post(f"/predictions/{prediction.pk}/feedback", {"correct": "true", "label": "Red fox", "domain": "bird"})
    assert done.status_code == 201 and "Thank you for confirming the answer" in done.content.decode()
    item = Feedback.objects.get()
    assert (item.correct, item.label, item.domain) == (True, "", prediction.verdict["domain"])


def test_a_correction_refused_without_javascript_shows_the_form_again_with_what_was_typed(client, keeping, jpeg_bytes):
    client.post("/", {"image": upload(jpeg_bytes)})
    prediction = Prediction.objects.get()
    typed = {"label": "owl", "domain": "plant", "comment": "seen at dusk"}  # an owl is no plant: refused
    refused = client.post(f"/predictions/{prediction.pk}/feedback", typed)
    page = refused.content.decode()
    assert refused.status_code == 400 and 'role="alert"' in page
    assert f'action="/predictions/{prediction.pk}/feedback"' in page
    assert 'value="owl"' in page and '<option value="plant" selected>' in page and ">seen at dusk</textarea>" in page
    assert 'list="labels-tiny-wildlife"' in page and '<option value="fern">' in page  # the classes are suggested again
    fixed = client.post(f"/predictions/{prediction.pk}/feedback", {**typed, "domain": ""})
    assert fixed.status_code == 201 and Feedback.objects.get().label == "owl"


def test_a_refusal_for_a_prediction_closed_to_feedback_offers_no_form(client, keeping, jpeg_bytes):
    client.post("/", {"image": upload(jpeg_bytes)})
    prediction = Prediction.objects.get()
    assert client.post(f"/predictions/{prediction.pk}/feedback", {"correct": "true"}).status_code == 201
    again = client.post(f"/predictions/{prediction.pk}/feedback", {"label": "Cat"})
    assert again.status_code == 409 and "feedback-form" not in again.content.decode()
    stranger = type(client)()  # another browser: no session
    other = stranger.post(f"/predictions/{prediction.pk}/feedback", {"label": "x\u0000"})
    assert other.status_code == 400 and "feedback-form" not in other.content.decode()
