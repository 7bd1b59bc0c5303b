"""The verdict: the one answer the service stands behind for a photo, with its domain and how sure it is.

It is decided from calibrated probabilities only: the domain from the domain
head (or, for a model without one, from the class probabilities summed per
domain), then a class when one is confident, else a WordNet group when the sum
over its members is, else no label. The thresholds come from the model's
manifest, where the calibration step wrote them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from recognizer.groups import Group, best_group
from recognizer.manifest import DOMAINS, ClassInfo

STATUSES = ("confident", "uncertain", "not_wildlife")
PLAIN = {"animal": "an animal", "bird": "a bird", "plant": "a plant"}


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

    def to_dict(self) -> dict:
        return asdict(self)


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
        words = "does not look like" if p_domain >= thresholds.domain else "probably is not"
        return Verdict(domain, p_domain, "not_wildlife", None, None, None, f"This {words} an animal, bird or plant.")
    if p_domain < thresholds.domain:
        return Verdict(domain, p_domain, "uncertain", None, None, None,
                       f"This may be {PLAIN[domain]}, but we are not sure of that.")
    in_domain = np.array([c.domain == domain for c in classes])
    masked = np.where(in_domain, probabilities, -1.0)
    best = int(np.argmax(masked))
    if in_domain.any() and masked[best] >= thresholds.label:
        label = classes[best].label
        return Verdict(domain, p_domain, "confident", label, best, "class", f"Very likely {_article(label)}.")
    group, _ = best_group(probabilities, groups, domain=domain, threshold=thresholds.group)
    if group is not None:
        return Verdict(domain, p_domain, "confident", group.display(), None, "group",
                       f"Probably {group.display()}, but we cannot tell which kind.")
    return Verdict(domain, p_domain, "uncertain", None, None, None,
                   f"This looks like {PLAIN[domain]}, but we cannot say which one.")


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

    def verdicts(self, probabilities: np.ndarray, pooled: np.ndarray | None = None) -> list[Verdict]:
        """One verdict per row of raw class probabilities (and pooled features, when the engine gives them)."""
        calibrated = self.calibrated(probabilities)
        domains = self.domains(probabilities, pooled)
        return [decide(p, d, self.classes, self.groups, self.thresholds) for p, d in zip(calibrated, domains)]


FILTER_NOTE_BELOW = 0.5  # below this share of the probability on the filtered domain, say that shares were rescaled


def filter_note(probabilities: np.ndarray, mask: np.ndarray, domain: str) -> str:
    """A sentence when the filtered domain holds little of the model's probability, so its shares mislead; else ''."""
    inside = float(probabilities[mask].sum())
    if inside >= FILTER_NOTE_BELOW:
        return ""
    return (
        f"Only {inside:.0%} of the model's probability is on {domain} classes; the shares within {domain}s are "
        "rescaled to add up to 100%, so a high share there does not mean the model is sure."
    )
