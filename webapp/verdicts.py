"""The verdict and the domain note in the reader's language.

The core says them in English and keeps each sentence's marked template and
parameters (recognizer.verdict.Sentence); here they are translated, and the
label they name is put in the reader's language like the predictions' labels.
"""

from __future__ import annotations

from django.utils import translation

from recognizer.labels import display_label
from recognizer.verdict import Verdict
from webapp.errors import filled


def said(sentence: str, lang: str, **names) -> str:
    """`sentence` in `lang`; `names` replace parameters of the same name in any language but English."""
    template = getattr(sentence, "template", "")
    if not template:
        return str(sentence)
    params = dict(sentence.params)
    if lang != "en":
        params.update({key: value for key, value in names.items() if key in params})
    with translation.override(lang):
        return filled(template, params)


def verdict_label(verdict: Verdict, manifest, lang: str) -> str | None:
    """The verdict's class or group name for readers of `lang`."""
    if verdict.level == "class" and manifest is not None:
        return display_label(manifest, verdict.index, lang)
    if verdict.level == "group" and verdict.group is not None:
        return verdict.group.display_in(lang)
    return verdict.label


def verdict_reply(verdict: Verdict, manifest, lang: str) -> dict:
    """The verdict's reply: `label` and `explanation` in `lang`, `label_en` always English."""
    label = verdict_label(verdict, manifest, lang)
    return {**verdict.to_dict(), "label": label, "label_en": verdict.label,
            "explanation": said(verdict.explanation, lang, label=label)}
