"""POST /api/v1/predictions/{id}/feedback: what a caller says of an answer it got (same auth and rate limit)."""

from __future__ import annotations

from typing import Literal, Optional

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import StrictBool

from webapp import feedback
from webapp.api import BODY_ERRORS, ErrorOut
from webapp.i18n import Lang, activate_reply_language

router = Router(tags=["feedback"])


class FeedbackIn(Schema):
    correct: StrictBool = Field(..., description="true or false; strings and numbers are refused")
    label: str = Field("", max_length=feedback.LABEL_MAX, description="what the photo shows: free text or a class of the model")
    domain: Optional[Literal["animal", "bird", "plant", "other"]] = None
    comment: str = Field("", max_length=feedback.COMMENT_MAX)
    lang: Optional[Lang] = Field(None, description="language of the error messages, as in the query")


class FeedbackOut(Schema):
    id: int
    prediction_id: int
    correct: bool
    label: str
    domain: Optional[str] = Field(None, description="as sent, or the kind of the class named; null when neither says one")
    status: str
    created_at: str


def feedback_out(item) -> dict:
    return {
        "id": item.pk, "prediction_id": item.prediction_id, "correct": item.correct, "label": item.label,
        "domain": item.domain or None, "status": item.status, "created_at": item.created_at.isoformat(),
    }




FEEDBACK_ERRORS = {**BODY_ERRORS, **{code: ErrorOut for code in (404, 409, 410)}}  # no such prediction, feedback given, photo gone


@router.post("/{prediction_id}/feedback", response={201: FeedbackOut, **FEEDBACK_ERRORS}, summary="Say whether an answer was right")
def feedback_post(request: HttpRequest, prediction_id: int, payload: FeedbackIn):
    if payload.lang:
        activate_reply_language(payload.lang)
    item = feedback.feedback_create(
        prediction_id=prediction_id, owner=feedback.Owner.of_api(request), correct=payload.correct,
        label=payload.label, domain=payload.domain or "", comment=payload.comment,
    )
    return Status(201, feedback_out(item))
