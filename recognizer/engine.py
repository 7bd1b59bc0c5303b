"""The inference engine: one loaded artifact answering top-k questions about images."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
from PIL import Image

from recognizer import errors
from recognizer.artifacts import Artifact, load_artifact
from recognizer.manifest import DOMAINS, Manifest
from recognizer.preprocessing import Source, open_image, to_batch

MAX_TOP_K = 20


class Prediction(NamedTuple):
    index: int
    label: str
    domain: str
    probability: float

    def to_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "domain": self.domain, "probability": self.probability}


_tf_configured = False


def _tensorflow():
    """TensorFlow, with its intra-op pool sized from RECOGNIZER_INTRA_THREADS before it first runs."""
    global _tf_configured
    import tensorflow as tf

    if not _tf_configured:
        _tf_configured = True
        threads = os.environ.get("RECOGNIZER_INTRA_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            except RuntimeError:  # TensorFlow already ran something in this process: keep its pool
                pass
    return tf


class Engine:
    """Serves one artifact; safe to share between threads; load once per process."""

    def __init__(self, artifact: Artifact):
        tf = _tensorflow()

        self.artifact = artifact
        self.manifest: Manifest = artifact.manifest
        spec = self.manifest.input
        model = artifact.model
        # A traced forward pass with a fixed signature: no retracing per batch size, no predict() overhead.
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, spec.height, spec.width, 3), tf.float32)],
            reduce_retracing=True,
        )
        self._lock = threading.Lock()
        self._domain_masks = {d: self._mask(d) for d in DOMAINS}

    @classmethod
    def from_path(cls, h5_path: str | Path) -> "Engine":
        """Check, load and wrap the artifact at `h5_path`."""
        return cls(load_artifact(h5_path))

    def _mask(self, domain: str) -> np.ndarray:
        return np.array([c.domain == domain for c in self.manifest.classes], dtype=bool)

    def warm_up(self) -> None:
        """Run one batch through the model so the first real request does not pay for tracing."""
        spec = self.manifest.input
        self.probabilities(np.zeros((1, spec.height, spec.width, 3), dtype=np.float32))

    def smoke_test(self) -> None:
        """Classify a synthetic picture end to end; refuse outputs that are not probabilities."""
        ramp = np.linspace(0, 255, 96, dtype=np.uint8)
        red, green = np.meshgrid(ramp, ramp[::-1])
        picture = Image.fromarray(np.stack([red, green, np.full_like(red, 128)], axis=-1))
        rows = self.probabilities(self.prepare(picture))
        if not np.all(np.isfinite(rows)) or rows.min() < 0 or abs(float(rows.sum()) - 1.0) > 1e-3:
            raise errors.ArtifactError(
                "The model's outputs are not probabilities (they must be finite, non-negative and sum to 1). "
                "End the model with a softmax activation."
            )

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 batch -> (N, classes) softmax probabilities."""
        with self._lock:  # two cores: concurrent forward passes only fight over them
            return np.asarray(self._forward(batch), dtype=np.float64)

    def prepare(self, image: Image.Image | Source, **limits) -> np.ndarray:
        """One image (PIL, bytes, path or file) -> its (1, H, W, 3) batch, via the shared preprocessing."""
        if not isinstance(image, Image.Image):
            image = open_image(image, **limits)
        return to_batch(image, self.manifest.input)

    def classify(
        self, images: Sequence[Image.Image | Source], top_k: int = 5, domain: str | None = None
    ) -> list[list[Prediction]]:
        """Top-k predictions per image, best first; with a domain, only its classes, renormalized."""
        if not images:
            return []
        batch = np.concatenate([self.prepare(image) for image in images])
        return self.rank(self.probabilities(batch), top_k=top_k, domain=domain)

    def rank(self, probabilities: np.ndarray, *, top_k: int = 5, domain: str | None = None) -> list[list[Prediction]]:
        """Turn rows of probabilities into sorted Prediction lists."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}.")
        candidates = np.arange(self.manifest.num_classes)
        if domain is not None:
            candidates = self._domain_indexes(domain)
            kept = probabilities[:, candidates]
            totals = kept.sum(axis=1, keepdims=True)
            probabilities = np.zeros_like(probabilities)
            probabilities[:, candidates] = np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)
        classes = self.manifest.classes
        results = []
        for row in probabilities:
            order = candidates[np.argsort(-row[candidates], kind="stable")][:top_k]
            results.append([Prediction(int(i), classes[i].label, classes[i].domain, float(row[i])) for i in order])
        return results

    def _domain_indexes(self, domain: str) -> np.ndarray:
        mask = self._domain_masks.get(domain)
        if mask is None:
            raise ValueError(f"Unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}.")
        if not mask.any():
            raise errors.RecognizerError(f"The model {self.manifest.name!r} has no {domain} classes.")
        return np.flatnonzero(mask)


def probabilities_of_files(engine: Engine, paths: Sequence[Path], *, batch_size: int = 16) -> Iterator[tuple[Path, np.ndarray | str]]:
    """(path, probability row) per file, in order and in batches; (path, reason) for a file that cannot be read."""
    for start in range(0, len(paths), batch_size):
        prepared: list[tuple[Path, np.ndarray | str]] = []
        for path in paths[start : start + batch_size]:
            try:
                prepared.append((path, engine.prepare(path)))
            except errors.ImageError as exc:
                prepared.append((path, str(exc)))
            except OSError as exc:
                prepared.append((path, f"cannot read: {exc.strerror or exc}"))
        good = [item for _, item in prepared if not isinstance(item, str)]
        rows = iter(engine.probabilities(np.concatenate(good)) if good else ())
        for path, item in prepared:
            yield path, item if isinstance(item, str) else next(rows)
