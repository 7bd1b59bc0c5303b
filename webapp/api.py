"""The JSON REST API (django-ninja, OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

Handlers parse and shape replies; services decide. Every error is
{"error": {"code", "message"}} with the right status.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.security import HttpBearer

from recognizer.engine import MAX_TOP_K
from recognizer.manifest import QUERY_DOMAINS
from webapp import feedback, selectors, services, shadow
from webapp.errors import ApiError, error_response, expected_errors, to_api_error
from webapp.i18n import activate_body_language, parameter_problem, reply_language
from webapp.parsing import JsonParser, parse_batch, parse_single
from webapp.throttling import ClientRateThrottle


class Anonymous:
    """request.auth for anonymous callers, when the settings allow them."""

    def __str__(self) -> str:
        return "anonymous"


class TokenAuth(HttpBearer):
    openapi_description = "Authorization: Bearer <token>; tokens are made in the admin. Optional when anonymous use is on."

    def __call__(self, request: HttpRequest):
        if "HTTP_AUTHORIZATION" not in request.META and settings.API_ALLOW_ANONYMOUS:
            return Anonymous()
        token = super().__call__(request)
        if token is None:  # each refused attempt spends the address's budget: guessing is held to the API's rate
            ClientRateThrottle.spend(request)
        return token

    def authenticate(self, request: HttpRequest, token: str):
        return services.api_token_authenticate(key=token)


api = NinjaAPI(
    title="Wildlife recognizer API",
    version="1.0",
    description="Recognizes animals, birds and plants in photos: top-k labels from the active model version.",
    auth=TokenAuth(),
    throttle=[ClientRateThrottle()],
    parser=JsonParser(),
    urls_namespace="api",
)


# ---- schemas --------------------------------------------------------------------------------

class ErrorBody(Schema):
    code: str
    message: str
    request_id: Optional[str] = None  # also in the X-Request-ID header; quote it when reporting a problem


class ErrorOut(Schema):
    error: ErrorBody


class PredictionOut(Schema):
    label: str  # in the language asked for with `lang`
    label_en: str
    index: int
    domain: str
    probability: float
    probability_in_domain: Optional[float] = None


class VerdictOut(Schema):
    domain: Literal["animal", "bird", "plant", "other"]
    domain_probability: float
    status: Literal["confident", "uncertain", "not_wildlife"]
    label: Optional[str]
    index: Optional[int]
    level: Optional[Literal["class", "group"]]
    explanation: str
    label_en: Optional[str] = None


class ModelRef(Schema):
    name: str
    version: int


class Timing(Schema):
    decode: float
    inference: float
    total: float


class AllowedClassesOut(Schema):  # set when the answer ranks only among the deployment's allowed classes
    applied: bool
    count: int  # how many classes the list allows
    source: Literal["admin", "file"]  # the list an admin keeps for this model, or ALLOWED_CLASSES_FILE


class PredictOut(Schema):
    id: Optional[int] = None  # the prediction, for POST /api/v1/predictions/{id}/feedback
    model: ModelRef
    verdict: Optional[VerdictOut]
    predictions: list[PredictionOut]
    timing_ms: Timing
    domain_note: Optional[str] = None
    crop_note: Optional[str] = None  # the model was shown only the middle of a wide or tall photo
    heatmap_png_base64: Optional[str] = None
    allowed_classes: Optional[AllowedClassesOut] = None


class ItemErrorOut(Schema):
    error: ErrorBody


class BatchOut(Schema):
    model: ModelRef
    results: list[Union[PredictOut, ItemErrorOut]]


class ModelVersionOut(Schema):
    name: str
    version: int
    is_active: bool
    backbone: str
    engine: str
    sha256: str
    num_classes: int
    created_at: str
    activated_at: Optional[str]
    predictions_served: int
    metrics: Optional[dict]
    input: dict
    notes: str


# The statuses each endpoint can answer with the one error shape (README "The REST API").
ERRORS = {code: ErrorOut for code in (401, 405, 429, 500, 503)}  # any endpoint
BODY_ERRORS = {**ERRORS, **{code: ErrorOut for code in (400, 411, 413, 415)}}  # an endpoint that reads a body
# no such model (404); explain_unavailable, a heat map asked of an engine that cannot draw one (409)
PREDICT_ERRORS = {**BODY_ERRORS, 404: ErrorOut, 409: ErrorOut}
_PARAMETERS = {
    "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 5},
    "domain": {"type": "string", "enum": list(QUERY_DOMAINS), "description": "only classes of this domain"},
    # An empty example, not Swagger UI's placeholder "string" (no model has that name): empty means the default model.
    "model": {"type": "string", "example": "", "description": "a model name from GET /api/v1/models; empty: the default"},
    "explain": {"type": "boolean", "default": False, "description": "also return a PNG heat map (base64) of where the model looked"},
    "lang": {"type": "string", "enum": ["en", "zh-hans", "zh"], "default": "en", "description": "language of labels and messages"},
}


def _request_body(file_field: str, file_schema: dict, json_field: str, json_schema: dict) -> dict:
    """The OpenAPI body of a predict operation: the same parameters as multipart or as JSON."""

    def form(field: str, schema: dict) -> dict:
        return {"schema": {"type": "object", "required": [field], "properties": {field: schema, **_PARAMETERS}}}

    content = {"multipart/form-data": form(file_field, file_schema), "application/json": form(json_field, json_schema)}
    # Every parameter may also go in the query string (the body wins when both give it).
    query = [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in _PARAMETERS.items()]
    return {"requestBody": {"required": True, "content": content}, "parameters": query}


_BINARY = {"type": "string", "format": "binary"}
_BASE64 = {"type": "string", "description": "the image file, base64 (a data: URL is accepted)"}
IMAGE_BODY = _request_body("image", _BINARY, "image_base64", _BASE64)
_MAX = settings.BATCH_MAX_IMAGES
BATCH_BODY = _request_body(
    "images", {"type": "array", "items": _BINARY, "maxItems": _MAX},
    "images_base64", {"type": "array", "items": _BASE64, "maxItems": _MAX},
)
BATCH_DESCRIPTION = (
    f"Up to {_MAX} photos in one request. The reply is 200 with one entry in `results` per photo, in the order "
    "sent: either that photo's result, or `{\"error\": {\"code\", \"message\"}}` when that photo alone could not "
    "be classified (not an image, too large, ...). Problems of the request itself (no images, too many, a body "
    "over the limit, bad parameters) are 4xx errors, as on /predict."
)


# ---- endpoints ------------------------------------------------------------------------------

@api.post("/predict", response={200: PredictOut, **PREDICT_ERRORS}, openapi_extra=IMAGE_BODY, summary="Classify one photo")
def predict(request: HttpRequest):
    upload, params = parse_single(request)
    result = services.prediction_create(
        upload=upload, model_name=params.model, top_k=params.top_k, domain=params.domain, explain=params.explain
    )
    owner = feedback.Owner.of_api(request)
    feedback.photo_keep(prediction_id=result.id, sha256=result.input_sha256, picture=result.picture, owner=owner)
    shadow.shadow_sample_result(result=result, data=upload.data, domain=params.domain)
    return result.to_dict(lang=reply_language())


@api.post(
    "/predict/batch", response={200: BatchOut, **PREDICT_ERRORS}, openapi_extra=BATCH_BODY,
    summary=f"Classify up to {_MAX} photos", description=BATCH_DESCRIPTION,
)
def predict_batch(request: HttpRequest):
    uploads, params = parse_batch(request)
    batch = services.prediction_create_batch(
        uploads=uploads, model_name=params.model, top_k=params.top_k, domain=params.domain, explain=params.explain
    )
    owner = feedback.Owner.of_api(request)
    for item in batch.items:
        if isinstance(item, services.PredictionResult):
            feedback.photo_keep(prediction_id=item.id, sha256=item.input_sha256, picture=item.picture, owner=owner)
    lang = reply_language()
    results = [
        item.to_dict(lang=lang) if isinstance(item, services.PredictionResult) else to_api_error(item).body()
        for item in batch.items
    ]
    return {"model": {"name": batch.model_name, "version": batch.model_version}, "results": results}


def version_out(version) -> dict:
    return {
        "name": version.name,
        "version": version.version,
        "is_active": version.is_active,
        "backbone": version.backbone,
        "engine": selectors.model_version_engine(version=version),
        "sha256": version.sha256,
        "num_classes": version.num_classes,
        "created_at": version.created_at.isoformat(),
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "predictions_served": getattr(version, "predictions_served", 0),
        "metrics": version.metrics,
        "input": version.manifest.get("input", {}),
        "notes": version.notes,
    }


@api.get("/", auth=None, include_in_schema=False)
def index(request: HttpRequest):
    """Where a developer who opens /api/v1/ goes next."""
    link = request.build_absolute_uri
    return {"docs": link("docs"), "openapi": link("openapi.json"), "predict": link("predict"),
            "predict_batch": link("predict/batch"), "feedback": link("predictions/") + "{id}/feedback", "models": link("models")}


@api.get("/models", response={200: list[ModelVersionOut], **ERRORS}, summary="Every registered model version")
def models_list(request: HttpRequest):
    return [version_out(v) for v in selectors.model_version_list()]


@api.get("/models/{name}", response={200: ModelVersionOut, **ERRORS, 404: ErrorOut}, summary="The active version of a model")
def models_active(request: HttpRequest, name: str):
    version = selectors.model_version_list(name=name).filter(is_active=True).first()
    if version is None:
        raise ApiError(404, "model_not_found", _("No active version of a model named %(name)r.") % {"name": name})
    return version_out(version)


# ---- one error shape ------------------------------------------------------------------------

def _expected(request, exc: Exception):
    return to_api_error(exc).response()


for _kind in expected_errors():
    api.add_exception_handler(_kind, _expected)


@api.exception_handler(Throttled)
def _throttled(request, exc: Throttled):
    return error_response(429, "rate_limited", _("Too many requests; slow down and retry after the given seconds."))


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    return error_response(401, "unauthorized", _("Send a valid API token: 'Authorization: Bearer <token>'."),
                          {"WWW-Authenticate": 'Bearer realm="api"'})


def _field(loc) -> str:
    """The parameter as the caller names it: 'domain', not django-ninja's 'body.payload.domain'."""
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"]:
        parts = parts[2:] or parts[:1]  # ("body", <the view's argument>, field...)
    elif parts[:1] in (["query"], ["path"]):
        parts = parts[1:] or parts
    return ".".join(parts)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    activate_body_language(request)  # a body's lang applies to the errors about that body's own fields
    first = exc.errors[0] if exc.errors else {}
    where = _field(first.get("loc", ()))
    return error_response(400, "invalid_parameter", _("%(field)s: %(problem)s.") % {"field": where, "problem": parameter_problem(first)})


BODY_UNREADABLE = "Cannot parse request body"  # django-ninja's HttpError when a JSON body does not parse


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400 and str(exc).startswith(BODY_UNREADABLE):  # DEBUG adds the parser's words after it
        if request.content_type != "application/json":  # a form or no type: the body was never meant as JSON
            return error_response(415, "unsupported_media_type", _("Send this body as JSON, with Content-Type: application/json."))
        if isinstance(exc.__cause__, ApiError):  # the parser's own refusal (JsonParser), as predict says it
            return exc.__cause__.response()
        return error_response(400, "invalid_json", _("The request body is not valid JSON."))
    return error_response(exc.status_code, "http_error", str(exc))


# Feedback on answers, under the same auth, rate limit and error shape.
from webapp.feedback_api import router as _feedback_router  # noqa: E402

api.add_router("/predictions", _feedback_router)
