"""The review queue in the admin: the list, the photo, accept / merge / reject, the audit, and who may act."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.synthetic import picture
from tests.webapp.helpers import encode, predict
from tests.webapp.learning import feedback_on, feedback_url, jpeg_bytes, keeping  # noqa: F401
from webapp.models import Feedback, FeedbackReview

QUEUE = "/admin/webapp/feedback/"


@pytest.fixture
def item(client, keeping, jpeg_bytes) -> Feedback:
    feedback_on(client, jpeg_bytes, label="Red fox", domain="animal")
    return Feedback.objects.get()


def review_url(item) -> str:
    return f"{QUEUE}{item.pk}/review/"


def staff(django_user_model, name: str, *perms: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def test_the_queue_lists_the_photo_the_models_answer_and_the_users(admin_client, item):
    html = admin_client.get(QUEUE).content.decode()
    assert f'src="{QUEUE}{item.pk}/photo/"' in html
    assert item.model_label in html and "Red fox [animal]" in html and "pending" in html
    photo = admin_client.get(f"{QUEUE}{item.pk}/photo/")
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert b"".join(photo.streaming_content).startswith(b"\xff\xd8")


def test_accepting_records_the_final_label_and_domain_and_who_did_it(admin_client, admin_user, item):
    reply = admin_client.post(review_url(item), {"decision": "accept", "label": "Vulpes vulpes", "domain": "animal"})
    assert reply.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.final_label, item.final_domain, item.reviewed_by) == ("accepted", "Vulpes vulpes", "animal", admin_user)
    audit = FeedbackReview.objects.get()
    assert (audit.action, audit.label, audit.by, audit.feedback) == ("accept", "Vulpes vulpes", admin_user, item)
    assert audit.at is not None


def test_accepting_a_label_that_names_a_class_of_the_model_stores_that_class_in_its_domain(admin_client, item):
    # A reviewer's "赤狐" (the model's own Chinese name for red fox) became a class of its own beside "red fox".
    refused = admin_client.post(review_url(item), {"decision": "accept", "label": "OWL", "domain": "animal"}, follow=True)
    assert "“owl” is a class of the model in the domain bird, not animal" in refused.content.decode()
    admin_client.post(review_url(item), {"decision": "accept", "label": "OWL", "domain": ""})  # the class says its domain
    item.refresh_from_db()
    assert (item.status, item.final_label, item.final_domain) == ("accepted", "owl", "bird")


def test_a_confirmation_of_an_answer_that_named_no_kind_reads_as_such_not_as_an_empty_label(admin_client, item):
    Feedback.objects.filter(pk=item.pk).update(correct=True, label="", domain="bird")  # "yes" to "a bird, not sure which"
    page = admin_client.get(review_url(item)).content.decode()
    listing = admin_client.get(QUEUE).content.decode()
    assert "right (the answer as given) [bird]" in page and "right ()" not in page
    assert "right (the answer as given) [bird]" in listing


def test_merging_takes_the_label_and_domain_of_an_existing_class(admin_client, item):
    admin_client.post(review_url(item), {"decision": "merge", "class_id": "owl"})
    item.refresh_from_db()
    assert (item.status, item.final_label, item.final_domain) == ("accepted", "owl", "bird")
    assert FeedbackReview.objects.get().action == "merge"


def test_a_photo_whose_file_is_missing_is_a_404_not_a_500(admin_client, item):
    import os

    os.remove(item.prediction.kept_photo.image.path)
    assert admin_client.get(f"{QUEUE}{item.pk}/photo/").status_code == 404
    assert admin_client.get(QUEUE).status_code == 200  # the list with its thumbnails


def test_rejecting_keeps_the_photo_out_and_is_audited(admin_client, item):
    admin_client.post(review_url(item), {"decision": "reject"})
    item.refresh_from_db()
    assert item.status == "rejected" and item.final_label == ""
    assert FeedbackReview.objects.get().action == "reject"


@pytest.mark.parametrize("form, message", [
    ({"decision": "accept", "label": "fox", "domain": ""}, "Choose the domain"),
    ({"decision": "accept", "label": " ", "domain": "animal"}, "final label"),
    ({"decision": "merge", "class_id": ""}, "Choose the class of the model"),
])
def test_an_incomplete_decision_changes_nothing_and_says_why(admin_client, item, form, message):
    reply = admin_client.post(review_url(item), form, follow=True)
    assert message in reply.content.decode()
    item.refresh_from_db()
    assert item.status == "pending" and not FeedbackReview.objects.exists()


def test_staff_without_the_review_permission_see_the_queue_but_cannot_act(django_user_model, item):
    viewer = staff(django_user_model, "viewer", "view_feedback")
    assert viewer.get(QUEUE).status_code == 200
    assert "Only staff with the review permission" in viewer.get(review_url(item)).content.decode()
    assert viewer.post(review_url(item), {"decision": "reject"}).status_code == 403
    bulk = viewer.post(QUEUE, {"action": "reject_selected", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert item.status == "pending" and not FeedbackReview.objects.exists(), bulk.status_code


def test_staff_with_the_review_permission_act_without_being_superusers(django_user_model, item):
    reviewer = staff(django_user_model, "reviewer", "view_feedback", "review_feedback")
    reviewer.post(QUEUE, {"action": "accept_as_said", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert (item.status, item.final_label, item.final_domain) == ("accepted", "Red fox", "animal")
    assert FeedbackReview.objects.get().by.username == "reviewer"


def test_bulk_accept_without_a_domain_leaves_the_item_for_its_own_page(admin_client, client, keeping):
    other = encode(picture("blue-circle", seed=5), "JPEG")
    feedback_on(client, other, label="a thing", domain="")
    admin_client.post(QUEUE, {"action": "accept_as_said", "_selected_action": list(Feedback.objects.values_list("pk", flat=True))})
    assert Feedback.objects.get().status == "pending"


def test_the_service_refuses_a_reviewer_without_the_permission(django_user_model, item):
    from django.core.exceptions import PermissionDenied

    from webapp import review

    user = django_user_model.objects.create_user("plain", is_staff=True)
    with pytest.raises(PermissionDenied):
        review.feedback_reject(feedback=item, by=user)


def test_the_review_audit_is_never_changed(admin_client, item):
    from webapp.models import HistoryIsAppendOnly

    admin_client.post(review_url(item), {"decision": "reject"})
    audit = FeedbackReview.objects.get()
    audit.action = "accept"
    with pytest.raises(HistoryIsAppendOnly):
        audit.save()
    with pytest.raises(HistoryIsAppendOnly):
        FeedbackReview.objects.all().delete()


def test_a_right_answer_carries_the_answers_domain_so_bulk_accept_takes_it_with_a_class_and_asks_without(
        admin_client, client, keeping, jpeg_bytes):
    answered = [predict(client, jpeg_bytes).json() for _ in range(2)]
    assert answered[0]["verdict"]["status"] == "not_wildlife"  # the tiny model's answer: "other", no kind named
    client.post(feedback_url(answered[0]["id"]), {"correct": True, "label": "TEAPOT"}, content_type="application/json")
    client.post(feedback_url(answered[1]["id"]), {"correct": True}, content_type="application/json")
    named, bare = (Feedback.objects.get(prediction_id=a["id"]) for a in answered)
    assert [(f.label, f.domain) for f in (named, bare)] == [("teapot", "other"), ("", "other")]
    reply = admin_client.post(QUEUE, {"action": "accept_as_said", "_selected_action": [named.pk, bare.pk]}, follow=True)
    named.refresh_from_db(), bare.refresh_from_db()
    assert (named.status, named.final_label, named.final_domain) == ("accepted", "teapot", "other")
    assert bare.status == "pending" and f"Feedback {bare.pk} not accepted" in reply.content.decode()


# ---- the reviewer's language -----------------------------------------------------------------

def test_the_review_queue_its_page_and_its_errors_speak_the_reviewer_s_language(admin_client, item):
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
    queue = admin_client.get(QUEUE, **zh).content.decode()
    assert "按用户的标签和领域接受" in queue and "模型的回答" in queue
    page = admin_client.get(review_url(item), **zh).content.decode()
    assert "保存决定" in page and "并入一个类别" in page and "模型的类别" in page
    refused = admin_client.post(review_url(item), {"decision": "merge"}, **zh).content.decode()
    assert "请选择要把这张照片并入的模型类别。" in refused
    refused = admin_client.post(review_url(item), {"decision": "accept", "label": "fox", "domain": ""}, follow=True, **zh)
    assert "请选择标签的领域" in refused.content.decode()
    english = admin_client.get(review_url(item)).content.decode()
    assert "Save decision" in english and "保存决定" not in english


def test_staff_without_a_feedback_permission_cannot_open_a_review_page(item, django_user_model):
    nobody = staff(django_user_model, "nobody")
    assert nobody.get(review_url(item)).status_code == 403
    assert staff(django_user_model, "viewer", "view_feedback").get(review_url(item)).status_code == 200


def test_feedback_whose_photo_was_erased_cannot_be_accepted_or_merged(admin_client, item):
    from webapp.feedback import photos_erase

    photos_erase(since=item.created_at - timedelta(days=1))
    for decision in ({"decision": "accept", "label": "fox", "domain": "animal"}, {"decision": "merge", "class_id": "owl"}):
        reply = admin_client.post(review_url(item), decision, follow=True)
        assert "was erased, so it cannot become training data" in reply.content.decode()
    item.refresh_from_db()
    assert item.status == "pending"
    assert admin_client.post(review_url(item), {"decision": "reject"}).status_code == 302


def test_the_feedback_record_page_is_read_only_so_no_save_can_claim_a_change(admin_client, item):
    page = admin_client.get(f"{QUEUE}{item.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"{QUEUE}{item.pk}/change/", {"status": "accepted", "final_label": "hack"}).status_code == 403
    item.refresh_from_db()
    assert (item.status, item.final_label) == ("pending", "")

