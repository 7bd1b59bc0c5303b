"""The page's names of the domains and its percentages, shown as the page's script shows them."""

from django import template
from django.utils.translation import pgettext_lazy

register = template.Library()

NAMES = {
    "animal": pgettext_lazy("domain", "animal"),
    "bird": pgettext_lazy("domain", "bird"),
    "plant": pgettext_lazy("domain", "plant"),
    "other": pgettext_lazy("domain", "other"),
    "all": pgettext_lazy("domain", "all"),
}


@register.filter
def domain_name(domain: str) -> str:
    """'animal' -> 'animal' or '动物': the reader's word for a domain code; unknown codes as they are."""
    return str(NAMES.get(domain, domain))


@register.filter
def percent(probability: float) -> str:
    """0.734 -> '73%', 0.003 -> '<1%' (a share that rounds to nothing is still a share), as app.js's percent()."""
    rounded = round(float(probability) * 100)
    return "<1%" if rounded == 0 else f"{rounded}%"
