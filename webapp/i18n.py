"""Languages: the page and the admin follow the reader's browser or choice; the API follows its `lang` parameter.

LocaleMiddleware picks the page's language from the language cookie (the
switcher) or Accept-Language. API clients were written when every reply was
English, so under /api/ only an explicit `lang` (query or body) changes it.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

Lang = Literal["en", "zh-hans", "zh"]
LANGS = get_args(Lang)
API_DEFAULT = "en"
_ALIASES = {"zh": "zh-hans"}
API_PREFIX = "/api/"


def language_code(value: str) -> str:
    """The service's code for an accepted `lang` value: 'en' or 'zh-hans'."""
    value = value.lower()
    return _ALIASES.get(value, value)


def activate_reply_language(lang: str) -> None:
    """Answer the rest of this request (messages and labels) in `lang`."""
    translation.activate(language_code(lang))


def reply_language() -> str:
    """The language of the reply being made: 'en' or 'zh-hans'."""
    return "zh-hans" if (translation.get_language() or "").lower().startswith("zh") else "en"


class ApiLanguageMiddleware:
    """After LocaleMiddleware: API requests are English unless their query names a language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            asked = request.GET.get("lang", "").lower()
            # An unknown value is refused later, with the other parameters, in the default language.
            code = language_code(asked) if asked in LANGS else API_DEFAULT
            translation.activate(code)
            request.LANGUAGE_CODE = code
        return self.get_response(request)


# A parameter that fails validation: pydantic's error types, said in the reader's language.
_PROBLEMS = {
    "greater_than_equal": gettext_noop("must be at least %(ge)s"),
    "less_than_equal": gettext_noop("must be at most %(le)s"),
    "int_parsing": gettext_noop("must be a whole number"),
    "int_from_float": gettext_noop("must be a whole number"),
    "int_type": gettext_noop("must be a whole number"),
    "string_type": gettext_noop("must be text"),
    "string_too_long": gettext_noop("must be at most %(max_length)s characters long"),
    "literal_error": gettext_noop("must be one of: %(expected)s"),
    "bool_type": gettext_noop("must be true or false"),
    "bool_parsing": gettext_noop("must be true or false"),
    "int_parsing_size": gettext_noop("must be a whole number"),
    "missing": gettext_noop("is required"),
}


def activate_body_language(request) -> None:
    """Answer in the `lang` a JSON body names, when it names one the service speaks (the query's is already on)."""
    import json

    if request.content_type != "application/json":
        return
    try:
        lang = json.loads(request.body).get("lang")
    except (ValueError, AttributeError):  # not JSON, or not an object: its errors say so in the query's language
        return
    if isinstance(lang, str) and lang.lower() in LANGS:
        activate_reply_language(lang.lower())


def parameter_problem(error: dict) -> str:
    """What is wrong with a parameter, from one pydantic error; pydantic's own words for unusual cases."""
    template = _PROBLEMS.get(error.get("type", ""))
    if template is None:
        return error.get("msg", "")
    context = dict(error.get("ctx") or {})
    if "expected" in context:  # "'animal', 'bird' or 'plant'": the values alone, without the English "or"
        context["expected"] = ", ".join(re.findall(r"'([^']*)'", str(context["expected"])))
    return gettext(template) % context
