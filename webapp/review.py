"""The review queue's decisions: accept (with a final label and domain), reject, or merge into a class; audited."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from recognizer.errors import Translatable, gettext_noop
from recognizer.manifest import DOMAINS
from webapp.feedback import LABEL_MAX, answered
from webapp.models import Feedback, FeedbackReview, KeptPhoto

PERMISSION = "webapp.review_feedback"


class ReviewError(Translatable, Exception):
    """The review decision is not possible as asked."""


def _check_reviewer(by) -> None:
    if by is None or not (by.is_active and by.is_staff and by.has_perm(PERMISSION)):
        raise PermissionDenied("Only staff with the review permission act on feedback.")


def _decide(feedback: Feedback, *, action: str, status: str, label: str, domain: str, by) -> Feedback:
    _check_reviewer(by)
    with transaction.atomic():
        Feedback.objects.filter(pk=feedback.pk).update(
            status=status, final_label=label, final_domain=domain, reviewed_by=by, reviewed_at=timezone.now()
        )
        FeedbackReview.objects.create(feedback=feedback, action=action, label=label, domain=domain, by=by)
    feedback.refresh_from_db()
    return feedback


def _check_photo(feedback: Feedback) -> None:
    """Only a photo still kept can become training data."""
    photo = KeptPhoto.objects.filter(prediction_id=feedback.prediction_id).first()
    if photo is None or photo.deleted_at is not None or not photo.image:
        raise ReviewError(
            gettext_noop("The photo of prediction %(id)s was erased, so it cannot become training data; reject it instead."),
            id=feedback.prediction_id,
        )


def feedback_accept(*, feedback: Feedback, label: str, domain: str, by) -> Feedback:
    """Accept the photo as training data under `label` in `domain`: free text, or a class of the model that answered
    named in any language the service speaks, stored as its English label."""
    _check_photo(feedback)
    label = label.strip()
    if not label or len(label) > LABEL_MAX:
        raise ReviewError(gettext_noop("A final label of 1 to %(limit)d characters is needed to accept."), limit=LABEL_MAX)
    known = answered(feedback.prediction).known.get(label.casefold())
    if known is not None and not domain:  # a class of the model says its domain
        domain = known[1]
    if domain not in DOMAINS:
        raise ReviewError(gettext_noop("Choose the domain of the label (%(domains)s)."), domains=", ".join(DOMAINS))
    if known is not None:  # a class of the model named in any language: one class in datasets, as the API stores it
        label, class_domain = known
        if domain != class_domain:
            raise ReviewError(gettext_noop("“%(label)s” is a class of the model in the domain %(class_domain)s, not "
                                           "%(domain)s: choose that domain."), label=label, class_domain=class_domain, domain=domain)
    return _decide(feedback, action=FeedbackReview.ACCEPT, status=Feedback.ACCEPTED, label=label, domain=domain, by=by)


def feedback_reject(*, feedback: Feedback, by) -> Feedback:
    """Keep the photo out of every dataset."""
    return _decide(feedback, action=FeedbackReview.REJECT, status=Feedback.REJECTED, label="", domain="", by=by)


def feedback_merge(*, feedback: Feedback, class_id: str, by) -> Feedback:
    """Accept the photo as an example of an existing class of the model that answered (its label and domain)."""
    _check_photo(feedback)
    classes = {c["id"]: c for c in feedback.prediction.model_version.manifest.get("classes", [])}
    chosen = classes.get(class_id)
    if chosen is None:
        raise ReviewError(gettext_noop("%(version)s has no class %(class_id)r."), version=str(feedback.prediction.model_version), class_id=class_id)
    return _decide(
        feedback, action=FeedbackReview.MERGE, status=Feedback.ACCEPTED, label=chosen["label"], domain=chosen["domain"], by=by
    )


def class_choices(feedback: Feedback) -> list[tuple[str, str]]:
    """The classes of the model that answered, for merging a free-text label into one of them."""
    classes = feedback.prediction.model_version.manifest.get("classes", [])
    return [(c["id"], f"{c['label']} ({c['domain']})") for c in sorted(classes, key=lambda c: c["label"].lower())]
