"""Feedback on answers: keeping the photo (metadata stripped), checking who may speak of it, recording what they say.

The page and the API call these; the retention and erase commands call the photo functions.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image

from webapp.clients import client_address
from webapp.models import ApiToken, Feedback, KeptPhoto

LABEL_MAX = 200
COMMENT_MAX = 2000
# The domains as a sentence names them ("Jaguar is an animal, not a bird"); "other" has sentences of its own.
KINDS = {"animal": gettext_noop("an animal"), "bird": gettext_noop("a bird"), "plant": gettext_noop("a plant")}

log = logging.getLogger(__name__)


class FeedbackError(Exception):
    """A feedback request that cannot be recorded; `status` and `code` say how the API answers it."""

    status, code = 400, "invalid_feedback"


class PredictionNotFound(FeedbackError):
    status, code = 404, "prediction_not_found"


class FeedbackOff(FeedbackError):
    status, code = 404, "feedback_disabled"


class FeedbackExists(FeedbackError):
    status, code = 409, "feedback_exists"


class PhotoGone(FeedbackError):
    status, code = 410, "photo_deleted"


@dataclass(frozen=True)
class Owner:
    """Who made a prediction: an API token (or anonymous API use), or a page session."""

    source: str  # "api" or "page"
    token_id: int | None = None
    user_id: int | None = None
    session_key: str = ""
    client_sha256: str = ""  # anonymous API callers: who they are as far as their address says

    def owns(self, photo: KeptPhoto) -> bool:
        if self.source != photo.source:
            return False
        if self.source == "page":
            return bool(self.session_key) and self.session_key == photo.session_key
        if photo.token_id is None:  # an anonymous prediction: the same anonymous client, never anyone else
            return self.token_id is None and bool(self.client_sha256) and self.client_sha256 == photo.client_sha256
        return photo.token_id == self.token_id

    @classmethod
    def of_api(cls, request) -> "Owner":
        token = request.auth if isinstance(getattr(request, "auth", None), ApiToken) else None
        if token is not None:
            return cls("api", token_id=token.pk, user_id=token.user_id)
        return cls("api", client_sha256=hashlib.sha256(client_address(request).encode()).hexdigest())

    @classmethod
    def of_page(cls, request) -> "Owner":
        if request.session.session_key is None:
            request.session.save()  # a key now, so the person can give feedback on this answer
        user_id = request.user.pk if request.user.is_authenticated else None
        return cls("page", user_id=user_id, session_key=request.session.session_key)


# ---- kept photos ------------------------------------------------------------------------------

def photo_jpeg(*, picture: Image.Image, max_side: int) -> bytes:
    """A JPEG of the decoded photo's pixels only: no EXIF, GPS, XMP, ICC profile or comment.

    `picture` is the image the prediction decoded (upright, RGB, at the reduced size decoding kept), so keeping
    it costs an encode, not a second decode of the upload.
    """
    clean = Image.frombytes("RGB", picture.size, picture.convert("RGB").tobytes())  # pixels, no info carried over
    clean.thumbnail((max_side, max_side))
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=90)
    return out.getvalue()


def photo_keep(*, prediction_id: int | None, sha256: str, picture: Image.Image | None, owner: Owner) -> KeptPhoto | None:
    """Keep the photo of a prediction for feedback, when feedback is on; the file is shared by equal uploads, named by
    `sha256`, the upload's digest as its prediction record has it."""
    if not settings.FEEDBACK_ENABLED or prediction_id is None or picture is None or not sha256:
        return None
    photo = KeptPhoto(
        prediction_id=prediction_id, sha256=sha256, source=owner.source,
        token_id=owner.token_id, user_id=owner.user_id, session_key=owner.session_key, client_sha256=owner.client_sha256,
        kept_until=timezone.now() + timedelta(days=settings.FEEDBACK_RETENTION_DAYS),
    )
    name = photo.image.field.generate_filename(photo, "photo.jpg")
    try:
        if photo.image.storage.exists(name):
            photo.image.name = name
        else:
            stripped = photo_jpeg(picture=picture, max_side=settings.FEEDBACK_PHOTO_MAX_SIDE)
            photo.image.save("photo.jpg", ContentFile(stripped), save=False)
    except OSError as exc:  # a full or read-only MEDIA_ROOT costs this photo its feedback, never the answer
        log.error("photo of prediction %s not kept for feedback: %s (MEDIA_ROOT %s)", prediction_id, exc, settings.MEDIA_ROOT)
        return None
    photo.save()
    return photo


@dataclass(frozen=True)
class Deleted:
    """The photos of `count` predictions forgotten; `files` removed (equal uploads share one file, kept while another
    prediction still needs it), and how many were not found in MEDIA_ROOT (a different storage?)."""

    count: int
    missing: int = 0
    files: int = 0

    def said(self) -> str:
        """'the photos of 2 predictions (1 file removed)'."""
        return (f"the photo{'s' if self.count != 1 else ''} of {self.count} prediction{'s' if self.count != 1 else ''} "
                f"({self.files} file{'s' if self.files != 1 else ''} removed)")


def _delete(photos) -> Deleted:
    """Forget the photos' files, keeping each file while another kept photo still needs it."""
    count = missing = files = 0
    for photo in photos:
        name = photo.image.name
        KeptPhoto.objects.filter(pk=photo.pk).update(image="", deleted_at=timezone.now())
        if name and not KeptPhoto.objects.filter(image=name).exists():
            if photo.image.storage.exists(name):
                photo.image.storage.delete(name)
                files += 1
            else:
                missing += 1
                log.warning("photo file %s of prediction %s not found under MEDIA_ROOT %s", name, photo.prediction_id, settings.MEDIA_ROOT)
        count += 1
    return Deleted(count, missing, files)


def photos_purge(*, now: datetime | None = None) -> Deleted:
    """Delete the photos whose retention ran out and that nobody gave feedback on."""
    due = KeptPhoto.objects.filter(kept_until__lt=now or timezone.now(), deleted_at__isnull=True, prediction__feedback__isnull=True)
    return _delete(list(due))


def photos_forget(*, predictions) -> Deleted:
    """Delete the photo files of these predictions (before the predictions themselves are deleted)."""
    return _delete(list(KeptPhoto.objects.filter(prediction__in=predictions, deleted_at__isnull=True)))


def photos_erase(*, username: str | None = None, since: datetime | None = None, until: datetime | None = None) -> Deleted:
    """Erase one person's photos (their page sessions and their tokens) and/or one period's, feedback or not."""
    photos = KeptPhoto.objects.filter(deleted_at__isnull=True)
    if username is not None:
        photos = photos.filter(Q(user__username=username) | Q(token__user__username=username))
    if since is not None:
        photos = photos.filter(created_at__gte=since)
    if until is not None:
        photos = photos.filter(created_at__lt=until)
    return _delete(list(photos))


# ---- feedback ---------------------------------------------------------------------------------

def feedback_create(
    *, prediction_id: int, owner: Owner, correct: bool, label: str = "", domain: str = "", comment: str = ""
) -> Feedback:
    """Record what the person who made a prediction says of its answer; once per prediction."""
    if not settings.FEEDBACK_ENABLED:  # also for photos kept while it was on
        raise FeedbackOff(_("This service takes no feedback: it is turned off here (FEEDBACK_ENABLED)."))
    label, comment = label.strip(), comment.strip()
    _check_text(correct=correct, label=label, comment=comment)
    photo = _kept_photo(prediction_id)
    if photo is None or not owner.owns(photo):
        raise PredictionNotFound(_("No prediction %(id)s of yours is open for feedback.") % {"id": prediction_id})
    if photo.deleted_at is not None:
        raise PhotoGone(_("The photo of prediction %(id)s was deleted; feedback can no longer be used.") % {"id": prediction_id})
    answer = answered(photo.prediction)
    if correct:
        label = _check_agrees(label=label, domain=domain, answer=answer)
    else:
        label, domain = _check_differs(label=label, domain=domain, answer=answer)
    try:
        with transaction.atomic():
            return Feedback.objects.create(
                prediction_id=prediction_id, correct=correct, label=label,
                # "The answer was right" says the domain too: that of the answer given.
                domain=domain or (answer.domain if correct else ""),
                comment=comment, model_label=answer.said, source=owner.source,
            )
    except IntegrityError:
        raise FeedbackExists(_("Prediction %(id)s already has feedback.") % {"id": prediction_id}) from None


def _kept_photo(prediction_id: int) -> KeptPhoto | None:
    # An id no row can have (the database's integers stop at 2**63 - 1) is no prediction, not a database error.
    if not 0 < prediction_id < 2**63:
        return None
    return KeptPhoto.objects.select_related("prediction__model_version").filter(prediction_id=prediction_id).first()


def feedback_open_version(*, prediction_id: int, owner: Owner):
    """The model version that answered `owner`'s prediction while it is open for feedback (its photo kept, no
    feedback yet), else None."""
    photo = _kept_photo(prediction_id) if settings.FEEDBACK_ENABLED else None
    if photo is None or photo.deleted_at is not None or not owner.owns(photo) or Feedback.objects.filter(prediction_id=prediction_id).exists():
        return None
    return photo.prediction.model_version


@dataclass(frozen=True)
class Answered:
    """The answer a prediction gave (its verdict), as a "yes, that is right" confirms it.

    `label` is the class a bare confirmation stores ("" when the answer named a group or no kind), `domain` its
    domain, `shown` the answer as each language said it. `fits` maps each label (casefolded, in any language) that
    agrees with an answer naming a kind to the class it stores: the class itself, or a group's name (no class) or its
    members' names. `named` says whether the answer named a kind: then any other label contradicts it; when it named
    none, a class of its domain (from `known`) says which.
    """

    label: str
    domain: str
    shown: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)
    named: bool = True
    known: dict = field(default_factory=dict)  # every class's spellings (casefolded) -> (English label, domain)

    @property
    def said(self) -> str:
        """The answer in English, as a reviewer reads it: the class or group, else what the verdict said of the domain."""
        if self.shown.get("en"):
            return self.shown["en"]
        return "not an animal, bird or plant" if self.domain == "other" else f"{self.domain}, kind not named"


def answered(prediction) -> Answered:
    """The answer `prediction` gave: its verdict; its top class for records made before verdicts were kept."""
    from recognizer.groups import groups_for
    from recognizer.manifest import Manifest

    manifest = Manifest.from_dict(prediction.model_version.manifest)
    verdict = prediction.verdict
    if verdict is None:  # a record from before verdicts were kept: its top class was the answer
        top = prediction.top[0] if prediction.top else {}
        if "index" not in top:
            return Answered(top.get("label", ""), top.get("domain", ""), {"en": top["label"]} if top else {}, named=bool(top))
        verdict = {"domain": top["domain"], "level": "class", "index": top["index"], "label": top["label"]}
    domain, names = verdict["domain"], _class_names(manifest)
    known = {spelling: (names[c.index]["en"], c.domain) for c in manifest.classes for spelling in _spellings(names[c.index])}
    if verdict["level"] == "class":
        index = verdict["index"]
        return Answered(verdict["label"], domain, names[index], _fitting(names, [index]), known=known)
    if verdict["level"] == "group":
        group = next((g for g in groups_for(manifest.classes) if g.display() == verdict["label"]), None)
        if group is None:
            return Answered("", domain, {"en": verdict["label"]}, {verdict["label"].casefold(): ""}, known=known)
        shown = {lang: group.display_in(lang) for lang in names[0]}
        own = {n.casefold(): "" for n in (*shown.values(), group.name, group.name_zh) if n}
        return Answered("", domain, shown, {**_fitting(names, group.members), **own}, known=known)
    # "an animal, not sure which", or "not an animal, bird or plant": a label says which, if it is of that domain
    return Answered("", domain, named=False, known=known)


def _spellings(names: dict) -> set[str]:
    return {name.casefold() for name in names.values() if name}


def _class_names(manifest) -> list[dict]:
    """Per class, its label in each language the service speaks."""
    from recognizer.labels import display_label

    languages = [code for code, _name in settings.LANGUAGES]
    return [{lang: display_label(manifest, c.index, lang) for lang in languages} for c in manifest.classes]


def _fitting(names: list[dict], indices) -> dict:
    """Each spelling (casefolded) of these classes -> the English label stored for it."""
    return {spelling: names[i]["en"] for i in indices for spelling in _spellings(names[i])}


def _check_agrees(*, label: str, domain: str, answer: Answered) -> str:
    """The label a confirmation stores. 'The answer was right' with another domain, or a label naming something
    else, says two things: refuse it rather than guess which."""
    if domain and domain != answer.domain:
        raise FeedbackError(_(
            "'correct' is true but 'domain' is %(domain)r, not the answer's %(answered)r: leave 'domain' out, "
            "or send 'correct': false."
        ) % {"domain": domain, "answered": answer.domain})
    if not label:
        return answer.label
    if label.casefold() in answer.fits:
        return answer.fits[label.casefold()]
    english, class_domain = answer.known.get(label.casefold(), ("", ""))
    if not answer.named and class_domain == answer.domain:  # the answer named no kind: a class of its domain says which
        return english
    if not answer.named and class_domain:  # a class of another domain than the answer's
        raise FeedbackError(_(
            "'correct' is true but 'label' %(label)r names a class outside the answer's domain %(domain)r: "
            "send 'correct': false with the label."
        ) % {"label": label, "domain": answer.domain})
    if answer.named:
        shown = answer.shown.get(translation.get_language() or "en") or answer.shown.get("en", "")
        raise FeedbackError(_(
            "'correct' is true but 'label' is %(label)r, not the answer %(answered)r: leave 'label' out, "
            "or send 'correct': false with the right label."
        ) % {"label": label, "answered": shown})
    return label  # the answer named no kind and the label is no class of the model: kept as said, for review


def _check_differs(*, label: str, domain: str, answer: Answered) -> tuple[str, str]:
    """The label and domain a correction stores: a class of the model named in any language is stored as its English
    label, with its domain. Naming the answer itself, or a class with another domain, says two things: refused."""
    known = answer.known.get(label.casefold())
    if known is None:  # free text: a kind the model does not know, kept as said for review
        return label, domain
    english, class_domain = known
    if answer.label and english == answer.label:
        shown = answer.shown.get(translation.get_language() or "en") or english
        raise FeedbackError(_(
            "“%(label)s” is the answer we gave (%(answered)s). If it is right, confirm it instead (the page's "
            "“Yes, it is right” button, or \"correct\": true in the API); if not, say what the photo shows."
        ) % {"label": label, "answered": shown})
    if domain and domain != class_domain:
        raise FeedbackError(_kind_mismatch(label, class_domain=class_domain, domain=domain))
    return english, class_domain


def _kind_mismatch(label: str, *, class_domain: str, domain: str) -> str:
    if class_domain == "other":
        return _("“%(label)s” is not %(kind)s: choose the kind “Other”, or leave the kind out.") % {
            "label": label, "kind": _(KINDS[domain])}
    if domain == "other":
        return _("“%(label)s” is %(class_kind)s: choose that kind instead of “Other”, or leave the kind out.") % {
            "label": label, "class_kind": _(KINDS[class_domain])}
    return _("“%(label)s” is %(class_kind)s, not %(kind)s: choose that kind, or leave the kind out.") % {
        "label": label, "class_kind": _(KINDS[class_domain]), "kind": _(KINDS[domain])}


def _check_text(*, correct: bool, label: str, comment: str) -> None:
    if "\x00" in label or "\x00" in comment:  # no database keeps them in text, and no folder name may hold one
        raise FeedbackError(_("The label and the comment cannot hold NUL characters."))
    if not correct and not label:
        raise FeedbackError(_("Say what the photo shows: a label is needed when the answer is wrong."))
    if len(label) > LABEL_MAX:
        raise FeedbackError(_("The label is %(length)d characters long; at most %(limit)d are allowed.") % {"length": len(label), "limit": LABEL_MAX})
    if len(comment) > COMMENT_MAX:
        raise FeedbackError(_("The comment is %(length)d characters long; at most %(limit)d are allowed.") % {"length": len(comment), "limit": COMMENT_MAX})
