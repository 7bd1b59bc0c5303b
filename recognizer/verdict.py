"""The verdict: the one answer the service stands behind for a photo, with its domain and how sure it is.

It is decided from calibrated probabilities only: the domain from the domain
head (or, for a model without one, from the class probabilities summed per
domain), then a class when one is confident, else a WordNet group when the sum
over its members is, else no label. The thresholds come from the model's
manifest, where the calibration step wrote them.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from recognizer.domain_head import domain_membership
from recognizer.errors import gettext_noop
from recognizer.groups import Group, best_group, largest_group_sum
from recognizer.manifest import DOMAINS, ClassInfo

STATUSES = ("confident", "uncertain", "not_wildlife")
PLAIN = {"animal": gettext_noop("an animal"), "bird": gettext_noop("a bird"), "plant": gettext_noop("a plant")}


class Sentence(str):
    """An English sentence that keeps its marked template and named parameters, for the web edge to translate.

    The parameter `label`, when present, is the verdict's label with its English article; the edge
    puts the label in the reader's language in its place.
    """

    def __new__(cls, template: str = "", **params):
        sentence = super().__new__(cls, template % params if params else template)
        sentence.template, sentence.params = template, params
        return sentence


@dataclass(frozen=True)
class Thresholds:
    """Calibrated probabilities at or above which an answer is given as sure."""

    domain: float = 0.5
    label: float = 0.5
    group: float = 0.5

    @classmethod
    def from_manifest_extra(cls, extra: dict | None) -> "Thresholds":
        values = ((extra or {}).get("calibration") or {}).get("thresholds") or {}
        return cls(**{k: float(v) for k, v in values.items() if k in ("domain", "label", "group")})


@dataclass(frozen=True)
class Verdict:
    domain: str
    domain_probability: float
    status: str
    label: str | None
    index: int | None
    level: str | None
    explanation: str
    group: Group | None = field(default=None, compare=False, repr=False)  # the group named, for its other names

    def to_dict(self) -> dict:
        reply = asdict(self)
        del reply["group"]
        return reply


def _article(label: str) -> str:
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


def decide(
    probabilities: np.ndarray,
    domain_probabilities: np.ndarray,
    classes: Sequence[ClassInfo],
    groups: tuple[Group, ...],
    thresholds: Thresholds,
) -> Verdict:
    """One image's verdict from its calibrated class probabilities and (4,) domain probabilities."""
    d = int(np.argmax(domain_probabilities))
    domain, p_domain = DOMAINS[d], float(domain_probabilities[d])
    if domain == "other":
        sure = p_domain >= thresholds.domain
        return Verdict(domain, p_domain, "not_wildlife", None, None, None, Sentence(
            gettext_noop("This does not look like an animal, bird or plant.") if sure
            else gettext_noop("This probably is not an animal, bird or plant.")))
    if p_domain < thresholds.domain:
        return Verdict(domain, p_domain, "uncertain", None, None, None,
                       Sentence(gettext_noop("This may be %(domain)s, but we are not sure of that."), domain=PLAIN[domain]))
    in_domain = domain_membership(classes)[:, d] > 0
    masked = np.where(in_domain, probabilities, -1.0)
    best = int(np.argmax(masked))
    if in_domain.any() and masked[best] >= thresholds.label:
        label = classes[best].label
        return Verdict(domain, p_domain, "confident", label, best, "class",
                       Sentence(gettext_noop("Very likely %(label)s."), label=_article(label)))
    group, _ = best_group(probabilities, groups, domain=domain, threshold=thresholds.group)
    if group is not None:
        sentence = Sentence(gettext_noop("Probably %(label)s, but we cannot tell which kind."), label=group.display())
        return Verdict(domain, p_domain, "confident", group.display(), None, "group", sentence, group)
    return Verdict(domain, p_domain, "uncertain", None, None, None,
                   Sentence(gettext_noop("This looks like %(domain)s, but we cannot say which one."), domain=PLAIN[domain]))


class Judge:
    """The verdicts of one artifact: its calibration, domain head and groups, all named by its manifest."""

    def __init__(self, manifest, head=None):
        from recognizer.groups import groups_for

        calibration = (manifest.extra or {}).get("calibration") or {}
        self.classes = manifest.classes
        self.class_temperature = float(calibration.get("class_temperature", 1.0))
        self.thresholds = Thresholds.from_manifest_extra(manifest.extra)
        self.head = head
        self.groups = groups_for(manifest.classes)

    @classmethod
    def for_manifest(cls, manifest) -> "Judge":
        """Load the domain head the manifest names (checked by sha256); without one, domains come from class mass."""
        from recognizer.default_model import head_path
        from recognizer.domain_head import DomainHead

        path = head_path(manifest)
        head = DomainHead.load(path, sha256=manifest.extra["domain_head"]["sha256"]) if path else None
        return cls(manifest, head)

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """Class probabilities rescaled by the manifest's temperature."""
        from recognizer.calibration import as_logits, scaled

        return probabilities if self.class_temperature == 1.0 else scaled(as_logits(probabilities), self.class_temperature)

    def domains(self, probabilities: np.ndarray, pooled: np.ndarray | None) -> np.ndarray:
        """(N, 4) domain probabilities: the domain head's when there is one, else the calibrated class mass."""
        from recognizer.domain_head import domain_mass

        if self.head is not None and pooled is not None:
            return self.head.probabilities(pooled, probabilities, self.classes)
        return domain_mass(self.calibrated(probabilities), self.classes)

    def with_thresholds(self, thresholds: Thresholds) -> "Judge":
        """This judge deciding at other thresholds (a reduced-precision copy's, fitted to its own scores)."""
        judge = copy.copy(self)
        judge.thresholds = thresholds
        return judge

    def scores(self, probabilities: np.ndarray, pooled: np.ndarray | None = None) -> np.ndarray:
        """(N, 3): per image, what `decide` compares with the domain, label and group thresholds: the chosen domain's
        probability, the best class's calibrated probability within it, the largest group sum within it (these two
        NaN for "other")."""
        rows = []
        for p, d in zip(self.calibrated(probabilities), self.domains(probabilities, pooled)):
            chosen = int(np.argmax(d))
            domain, inside = DOMAINS[chosen], domain_membership(self.classes)[:, chosen] > 0
            if domain == "other" or not inside.any():
                rows.append((float(d.max()), np.nan, np.nan))
            else:
                rows.append((float(d.max()), float(p[inside].max()), largest_group_sum(p, self.groups, domain=domain)))
        return np.array(rows, dtype=np.float64).reshape(-1, 3)

    def verdicts(self, probabilities: np.ndarray, pooled: np.ndarray | None = None, *,
                 domain_from: np.ndarray | None = None) -> list[Verdict]:
        """One verdict per row of raw class probabilities (and pooled features, when the engine gives them).

        `domain_from`: the rows the domain is judged on, when `probabilities` are restricted to some classes (an
        allowed-class list chooses among the classes, it does not make a car an animal).
        """
        calibrated = self.calibrated(probabilities)
        domains = self.domains(probabilities if domain_from is None else domain_from, pooled)
        return [decide(p, d, self.classes, self.groups, self.thresholds) for p, d in zip(calibrated, domains)]


# The filtered domain, named in the note: (singular, plural), so that each language can say it its own way.
_NAMES = {
    "animal": (gettext_noop("animal"), gettext_noop("animals")),
    "bird": (gettext_noop("bird"), gettext_noop("birds")),
    "plant": (gettext_noop("plant"), gettext_noop("plants")),
}
FILTER_NOTE_BELOW = 0.5  # below this share of the probability on the filtered domain, say that shares were rescaled
# Below this share of a photo's area shown to the model, say so: a 2:1 panorama under a 0.875 centre crop is shown 38%,
# a 16:9 photo 43%, a 4:3 one 57%.
CROP_NOTE_BELOW = 0.4


def crop_note(seen: float) -> Sentence:
    """A sentence when the model was shown only the middle of a wide or tall photo (`seen` of its area); else ''."""
    if seen >= CROP_NOTE_BELOW:
        return Sentence("")
    return Sentence(gettext_noop(
        "The model looked only at the middle of this photo (%(share)s of it): crop the photo around the subject for "
        "a better answer."
    ), share=f"{seen:.0%}")


def filter_note(probabilities: np.ndarray, mask: np.ndarray, domain: str, allowed: np.ndarray | None = None) -> Sentence:
    """A sentence when the filtered domain holds little of the model's probability, so its shares mislead, or when
    no allowed class is in it, so nothing is listed; else ''."""
    one, many = _NAMES.get(domain, (domain, f"{domain}s"))
    if allowed is not None and not (mask & allowed).any():
        return Sentence(gettext_noop(
            "No class this service is set to answer with is among the %(domains)s, so none is listed; leave the "
            "filter out to see the answer."
        ), domains=many)
    inside = float(probabilities[mask].sum())
    if inside >= FILTER_NOTE_BELOW:
        return Sentence("")
    return Sentence(gettext_noop(
        "Only %(share)s of the model's probability is on %(domain)s classes; the shares within %(domains)s are "
        "rescaled to add up to 100%%, so a high share there does not mean the model is sure."
    ), share=f"{inside:.0%}" if inside >= 0.005 else "<1%", domain=one, domains=many)  # not "0%": some is there
