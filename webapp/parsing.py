"""Reading a predict request: the image(s) from multipart or JSON, and the parameters, with clear errors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Literal, Optional

from django.conf import settings
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja.parser import Parser
from pydantic import BaseModel, Field, field_validator
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from recognizer import errors as core
from recognizer.engine import MAX_TOP_K
from recognizer.errors import gettext_noop
from recognizer.manifest import QUERY_DOMAINS
from recognizer.preprocessing import size_text
from webapp import services
from webapp.errors import ApiError, from_core
from webapp.i18n import LANGS, Lang, activate_reply_language, parameter_problem
from webapp.throttling import ClientRateThrottle

Domain = Literal[QUERY_DOMAINS]


class PredictParams(BaseModel):
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    domain: Optional[Domain] = None
    model: Optional[str] = Field(None, max_length=100)
    explain: bool = False
    lang: Optional[Lang] = None

    @field_validator("top_k", mode="before")
    @classmethod
    def _no_bool(cls, value):
        # pydantic's lax mode reads JSON true as 1: a client sending a boolean meant something else.
        if isinstance(value, bool):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


# No parameter needs more digits; Python itself refuses to convert more than 4300 into an int.
MAX_NUMBER_CHARS = 20


def _json_number(kind):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARS:
            message = _("A number in the JSON body has more than %(limit)d characters.") % {"limit": MAX_NUMBER_CHARS}
            raise ApiError(400, "invalid_json", message)
        value = kind(text)
        if value in (float("inf"), float("-inf")):
            raise ApiError(400, "invalid_json", _("A number in the JSON body is too large."))
        return value

    return parse


def _no_constant(name: str):
    raise ApiError(400, "invalid_json", _("%(name)s is not a JSON number.") % {"name": name})


def _json_body(request: HttpRequest, example: str = '{"image_base64": "..."}') -> dict:
    """A request's JSON object, with the limits every endpoint keeps (numbers of at most 20 characters, no NaN or
    infinity); ApiError invalid_json otherwise."""
    try:
        body = json.loads(
            request.body, parse_int=_json_number(int), parse_float=_json_number(float), parse_constant=_no_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", _("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", _("The JSON body must be an object, e.g. %(example)s.") % {"example": example})
    return body


class JsonParser(Parser):
    """django-ninja's bodies (feedback) read as predict's are; its handler renders the ApiError."""

    def parse_body(self, request: HttpRequest):
        return _json_body(request, '{"correct": false, "label": "red fox"}')


class InvalidBase64(core.ImageError):
    code = "invalid_base64"


def _base64_bytes(value, field: str) -> bytes:
    """The bytes of one base64 image (a data: URL too); InvalidBase64 or FileTooLarge (before decoding copies it)."""
    if not isinstance(value, str) or not value:
        raise InvalidBase64(gettext_noop("%(field)s must be a non-empty base64 string."), field=field)
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if any(space in value for space in "\n\r \t"):  # line-wrapped, as `base64 photo.jpg` and MIME write it
        value = "".join(value.split())
    size = len(value.rstrip("=")) * 3 // 4
    if size > settings.UPLOAD_MAX_BYTES:
        raise core.FileTooLarge(gettext_noop("%(field)s is larger than the %(limit)s limit."), field=field, limit=size_text(settings.UPLOAD_MAX_BYTES))
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(gettext_noop("%(field)s is not valid base64."), field=field) from None


def _decode_base64(value) -> bytes:
    """The one image of a JSON predict request; a bad one is the request's error."""
    try:
        return _base64_bytes(value, "image_base64")
    except core.ImageError as exc:
        raise from_core(exc) from None


def _base64_upload(value, index: int) -> services.Upload:
    """One image of a JSON batch; a bad one is that image's own error, as a bad file of a multipart batch is."""
    try:
        return services.Upload(_base64_bytes(value, f"images_base64[{index}]"))
    except core.ImageError as exc:
        return services.Upload(b"", refused=exc)


def parse_params(source: dict) -> PredictParams:
    """The parameters; a `lang` among them is the language of the reply from here on."""
    raw = {k: source.get(k) for k in ("top_k", "domain", "model", "explain", "lang") if source.get(k) not in (None, "")}
    if isinstance(raw.get("lang"), str):
        raw["lang"] = raw["lang"].lower()
        if raw["lang"] in LANGS:  # first: the errors about the other parameters are said in it too
            activate_reply_language(raw["lang"])
    top_k = raw.get("top_k")
    if isinstance(top_k, str) and len(top_k) > MAX_NUMBER_CHARS:  # int() of thousands of digits costs, then fails
        problem = _("must be a whole number from 1 to %(maximum)d") % {"maximum": MAX_TOP_K}
        raise ApiError(400, "invalid_parameter", _("%(field)s: %(problem)s.") % {"field": "top_k", "problem": problem})
    try:
        params = PredictParams(**raw)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "parameters"
        problem = parameter_problem(first)
        raise ApiError(400, "invalid_parameter", _("%(field)s: %(problem)s.") % {"field": field, "problem": problem}) from None
    return params


def is_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json"


def is_multipart(request: HttpRequest) -> bool:
    # Not application/x-www-form-urlencoded: such a body can carry no file, so it could only end in missing_image.
    return request.content_type == "multipart/form-data"


def _check_content_type(request: HttpRequest, batch: bool = False) -> None:
    if not (is_json(request) or is_multipart(request)):
        if batch:
            message = _("Send multipart/form-data with 'images' files, or application/json with 'images_base64'.")
        else:
            message = _("Send multipart/form-data with an 'image' file, or application/json with 'image_base64'.")
        raise ApiError(415, "unsupported_media_type", message)


def _form(request: HttpRequest) -> tuple[dict, MultiValueDict]:
    """The fields and files of a multipart body; a malformed one is the caller's 400, never a 500."""
    try:
        return request.POST.dict(), request.FILES
    except (MultiPartParserError, UnicodeError) as exc:
        message = _("The multipart body is malformed (%(detail)s).") % {"detail": exc}
        raise ApiError(400, "invalid_multipart", message) from None


def upload_from_file(file) -> services.Upload:
    # Its size is checked with its pixels, by the service: in a batch, one large file fails alone.
    return services.Upload(data=file.read(), filename=file.name or "")


def parse_single(request: HttpRequest) -> tuple[services.Upload, PredictParams]:
    """The one image and the parameters of a predict request, from multipart or JSON."""
    _check_content_type(request)
    if is_json(request):
        body = _json_body(request)
        params = parse_params({**request.GET.dict(), **body})  # first: its lang applies to the errors below
        if "image_base64" not in body:
            raise ApiError(400, "missing_image", _("The JSON body needs an 'image_base64' field."))
        return services.Upload(_decode_base64(body["image_base64"])), params
    fields, files = _form(request)
    params = parse_params({**request.GET.dict(), **fields})
    files = files.getlist("image")
    if not files:
        raise ApiError(400, "missing_image", _("Attach the photo as a multipart file field named 'image'."))
    if len(files) > 1:
        raise ApiError(400, "one_image_expected", _("Send one 'image' here; use /api/v1/predict/batch for several."))
    return upload_from_file(files[0]), params


def parse_batch(request: HttpRequest) -> tuple[list[services.Upload], PredictParams]:
    """The images (in order) and the parameters of a batch request."""
    _check_content_type(request, batch=True)
    if is_json(request):
        body = _json_body(request, '{"images_base64": ["...", "..."]}')
        params = parse_params({**request.GET.dict(), **body})
        items = body.get("images_base64")
        if items is not None and not isinstance(items, list):
            problem = _("must be a list of base64 strings")
            raise ApiError(400, "invalid_parameter", _("%(field)s: %(problem)s.") % {"field": "images_base64", "problem": problem})
        if not items:
            raise ApiError(400, "missing_image", _("The JSON body needs 'images_base64': a list of base64 strings."))
    else:
        fields, files = _form(request)
        params = parse_params({**request.GET.dict(), **fields})
        items = files.getlist("images")
        if not items:
            raise ApiError(400, "missing_image", _("Attach the photos as multipart file fields named 'images'."))
    if len(items) > settings.BATCH_MAX_IMAGES:
        counts = {"limit": settings.BATCH_MAX_IMAGES, "count": len(items)}
        raise ApiError(413, "too_many_images", _("At most %(limit)d images per batch; got %(count)d.") % counts)
    _count_against_rate_limit(request, len(items))
    if is_json(request):
        uploads = [_base64_upload(item, n) for n, item in enumerate(items)]
    else:
        uploads = [upload_from_file(f) for f in items]
    return uploads, params


def _count_against_rate_limit(request: HttpRequest, size: int) -> None:
    """Each image of a batch counts as a request: a batch is not a way around the rate limit."""
    throttle = ClientRateThrottle()
    if throttle.allow_rest_of_batch(request, size):
        return
    if size > throttle.num_requests:  # waiting cannot help: the batch is over the whole budget
        message = _("A batch of %(count)d images is over your rate limit (%(rate)s) on its own; send at most %(most)d at a time.")
        counts = {"count": size, "rate": settings.API_RATE_LIMIT, "most": throttle.num_requests}
        raise ApiError(429, "rate_limited", message % counts)
    message = _("These %(count)d images would go over your rate limit (%(rate)s); send fewer, or wait.") % {
        "count": size, "rate": settings.API_RATE_LIMIT,
    }
    raise ApiError(429, "rate_limited", message, {"Retry-After": str(int(throttle.wait() or 1))})
