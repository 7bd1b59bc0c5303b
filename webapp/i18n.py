"""Languages: the page and the admin follow the reader's browser or choice; the API follows its `lang` parameter.

LocaleMiddleware picks the page's language from the language cookie (the
switcher) or Accept-Language. API clients were written when every reply was
English, so under /api/ only an explicit `lang` (query or body) changes it.
"""

from __future__ import annotations

from typing import Literal

from django.utils import translation

Lang = Literal["en", "zh-hans", "zh"]
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
            code = language_code(asked) if asked in ("en", "zh", "zh-hans") else API_DEFAULT
            translation.activate(code)
            request.LANGUAGE_CODE = code
        return self.get_response(request)
