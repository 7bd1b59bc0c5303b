"""The domain head: animal / bird / plant / other from the backbone's pooled features and the class head's evidence.

It is a softmax regression (numpy only, so a worker that serves a compiled
model never needs TensorFlow for it) over the pooled features of the same
backbone pass, whose logits are added to the log of the class head's
probability mass per domain times `mass_weight` (a product of the two
experts: the class head knows animals and things well, plants badly). The
head is fitted with that mass term in its logits, so it learns to correct the
class head rather than to repeat it; 5-fold cross-validation chose the weight
and showed the gain over adding the mass afterwards (see
scripts/build_domain_head.py). It is
stored as a small .npz that the model's manifest names and checks by sha256;
standardization is folded into the weights, and the temperature that
calibrates the sum is stored with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from recognizer import errors
from recognizer.identity_cache import by_identity
from recognizer.manifest import DOMAINS, ClassInfo, file_sha256

MASS_FLOOR = 1e-6  # log of a zero mass would be -inf; one in a million is "no evidence"


def domain_mass(probabilities: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
    """(N, classes) probabilities -> (N, 4) summed per domain, in DOMAINS order."""
    return np.asarray(probabilities, dtype=np.float64) @ domain_membership(classes)


@by_identity
def domain_membership(classes: Sequence[ClassInfo]) -> np.ndarray:
    """(classes, 4) one-hot domain of each class, in DOMAINS order (read-only)."""
    member = np.array([[c.domain == d for d in DOMAINS] for c in classes], dtype=np.float64)
    member.flags.writeable = False
    return member


def log_mass(probabilities: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
    """(N, 4) log of the class probability mass per domain, floored."""
    return np.log(np.maximum(domain_mass(probabilities, classes), MASS_FLOOR))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class DomainHead:
    """Weights (features, 4) and bias (4,) over pooled features, the weight of the class mass, the temperature."""

    weights: np.ndarray
    bias: np.ndarray
    temperature: float = 1.0
    backbone: str = ""
    mass_weight: float = 0.0

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """The feature expert's own logits."""
        if pooled.shape[1] != self.weights.shape[0]:
            raise errors.ShapeMismatch(
                f"The domain head reads {self.weights.shape[0]} features per image; the model gives {pooled.shape[1]}."
            )
        return np.asarray(pooled, dtype=np.float64) @ self.weights + self.bias

    def combined(self, pooled: np.ndarray, probabilities: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
        """Uncalibrated logits of both experts together."""
        return self.logits(pooled) + self.mass_weight * log_mass(probabilities, classes)

    def probabilities(self, pooled: np.ndarray, probabilities: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
        """(N, 4) calibrated domain probabilities in DOMAINS order."""
        return softmax(self.combined(pooled, probabilities, classes) / self.temperature)

    def save(self, path: str | Path) -> str:
        """Write the .npz (byte-identical for identical weights); returns its sha256."""
        path = Path(path)
        with open(path, "wb") as handle:  # np.savez to a handle: no zip timestamps from a file name
            np.savez(
                handle, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                temperature=np.float64(self.temperature), backbone=np.str_(self.backbone), domains=np.array(DOMAINS),
                mass_weight=np.float64(self.mass_weight),
            )
        return file_sha256(path)

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> "DomainHead":
        """Read a head, refusing a file whose sha256 is not the one the manifest names."""
        path = Path(path)
        if not path.is_file():
            raise errors.ArtifactError(f"No domain head at {path}.")
        if sha256 is not None and file_sha256(path) != sha256:
            raise errors.ChecksumMismatch(
                f"The manifest names a domain head with sha256 {sha256[:12]}..., which is not {path.name} and which no "
                "release shipped: register the model with a manifest naming the head this release ships (the default "
                "model's manifest under models/ does), or put the head it names in recognizer/data/earlier_heads/."
            )
        with np.load(path, allow_pickle=False) as data:
            if tuple(str(d) for d in data["domains"]) != DOMAINS:
                raise errors.ArtifactError(f"{path.name} was built for other domains: {list(data['domains'])}.")
            return cls(
                weights=data["weights"].astype(np.float64), bias=data["bias"].astype(np.float64),
                temperature=float(data["temperature"]), backbone=str(data["backbone"]),
                mass_weight=float(data["mass_weight"]),
            )


def fit(
    inputs: np.ndarray, labels: np.ndarray, *, offset: np.ndarray | None = None, l2: float = 0.1, steps: int = 400,
    seed: int = 0,
) -> DomainHead:
    """Balanced softmax regression by full-batch Adam: deterministic for the same inputs and seed.

    `offset` (N, 4) is added to the logits while fitting: the other expert's evidence (the weighted log class
    mass), so the head learns what that expert gets wrong instead of repeating what it already knows.
    """
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-6
    x = (inputs - mean) / scale
    y = np.eye(len(DOMAINS))[labels]
    counts = np.maximum(y.sum(axis=0), 1)
    sample_weight = (y @ (len(labels) / (len(DOMAINS) * counts)))[:, None]  # each domain weighs the same
    offset = np.zeros((len(labels), len(DOMAINS))) if offset is None else offset
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1e-3, (x.shape[1], len(DOMAINS)))
    b = np.zeros(len(DOMAINS))
    params, moments = [w, b], [[np.zeros_like(w), np.zeros_like(w)], [np.zeros_like(b), np.zeros_like(b)]]
    for step in range(1, steps + 1):
        error = (softmax(x @ params[0] + params[1] + offset) - y) * sample_weight / len(labels)
        grads = [x.T @ error + l2 * params[0], error.sum(axis=0)]
        for p, g, m in zip(params, grads, moments):
            m[0][:] = 0.9 * m[0] + 0.1 * g
            m[1][:] = 0.999 * m[1] + 0.001 * g * g
            p -= 0.05 * (m[0] / (1 - 0.9**step)) / (np.sqrt(m[1] / (1 - 0.999**step)) + 1e-8)
    # Fold the standardization into the weights: the served head reads raw inputs.
    weights = params[0] / scale[:, None]
    return DomainHead(weights=weights, bias=params[1] - mean @ weights)
