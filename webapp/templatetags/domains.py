"""The page's names of the domains, translated like the rest of the page."""

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
