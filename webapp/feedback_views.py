"""The page's side of feedback: the "Wrong? Tell us what it is" form, for the person who made the prediction."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from webapp import feedback, selectors
from webapp.errors import ApiError, expected_errors, to_api_error
from webapp.i18n import reply_language
from webapp.throttling import ClientRateThrottle

FEEDBACK_DOMAINS = [
    ("", gettext_lazy("Not sure")), ("animal", gettext_lazy("Animal")), ("bird", gettext_lazy("Bird")),
    ("plant", gettext_lazy("Plant")), ("other", gettext_lazy("Other")),
]


def _suggestions(version) -> list[str]:
    """The class labels offered as suggestions: in the page's language first (a Chinese reader gets the Chinese ones),
    then in English."""
    from recognizer.labels import display_label
    from recognizer.manifest import Manifest

    manifest = Manifest.from_dict(version.manifest)
    english = sorted({c.label for c in manifest.classes})
    if reply_language() == "en":
        return english
    own = sorted({display_label(manifest, c.index, reply_language()) for c in manifest.classes} - set(english))
    return own + english


def page_context() -> dict:
    """What the page needs to offer feedback: whether it is on, how long photos are kept, each model's labels."""
    labels = {v.name: _suggestions(v) for v in selectors.model_version_list_active()}
    return {
        "feedback_on": settings.FEEDBACK_ENABLED,
        "retention_days": settings.FEEDBACK_RETENTION_DAYS,
        "feedback_domains": FEEDBACK_DOMAINS,
        "class_labels": labels,
    }


@require_POST
def feedback_page(request: HttpRequest, prediction_id: int) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    owner = feedback.Owner.of_page(request)
    try:
        ClientRateThrottle.spend(request)
        correct = request.POST.get("correct") == "true"  # the "Yes, it is right" button: the label field is not its
        item = feedback.feedback_create(
            prediction_id=prediction_id, owner=owner, correct=correct,
            label="" if correct else request.POST.get("label", ""),
            domain="" if correct else _domain(request.POST.get("domain", "")), comment=request.POST.get("comment", ""),
        )
    except expected_errors() as exc:
        error = to_api_error(exc)
        if wants_json:
            return error.response()
        return _refused_page(request, prediction_id, owner, error)
    if wants_json:
        return JsonResponse({"id": item.pk, "prediction_id": prediction_id, "status": item.status}, status=201)
    return render(request, "feedback_done.html", {"feedback": item, "label": _label_for_reader(item)}, status=201)


def _refused_page(request: HttpRequest, prediction_id: int, owner: feedback.Owner, error: ApiError) -> HttpResponse:
    """The refusal, and the form again with what was typed while the prediction is still open for feedback, so a
    reader without JavaScript can correct the label instead of starting over with a new upload."""
    context = {"error": error.message}
    version = feedback.feedback_open_version(prediction_id=prediction_id, owner=owner)
    if version is not None:
        context.update(
            prediction_id=prediction_id, model_name=version.name, labels=_suggestions(version),
            feedback_domains=FEEDBACK_DOMAINS, given={key: request.POST.get(key, "") for key in ("label", "domain", "comment")},
        )
    return error.page(request, "feedback_done.html", context)


def _label_for_reader(item) -> str:
    """The stored label as the reader's language names it (a class stored in English is 赤狐 on the Chinese page)."""
    from recognizer.labels import display_label
    from recognizer.manifest import Manifest

    manifest = Manifest.from_dict(item.prediction.model_version.manifest)
    index = next((c.index for c in manifest.classes if c.label == item.label), None)
    return item.label if index is None else display_label(manifest, index, reply_language())


def _domain(value: str) -> str:
    if value not in dict(FEEDBACK_DOMAINS):
        raise feedback.FeedbackError(_("Unknown domain %(domain)r; use animal, bird, plant or other.") % {"domain": value})
    return value
