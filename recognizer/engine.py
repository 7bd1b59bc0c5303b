"""The inference engine: one artifact's manifest and a forward function, answering top-k questions about images.

There is one Engine class. What runs the forward pass (Keras, ONNX Runtime or
OpenVINO) is passed in, and `kind` says which one it is: that is what the
service reports as serving, never a guess.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
from PIL import Image

from recognizer import errors, runtimes
from recognizer.errors import gettext_noop
from recognizer.artifacts import Artifact, load_artifact
from recognizer.manifest import DOMAINS, Manifest
from recognizer.preprocessing import Source, load_batch, to_batch
from recognizer.verdict import Judge, Verdict, filter_note

MAX_TOP_K = 20
# Reduced-precision copies are kinds of their own, so that everything reporting `kind` says which precision serves:
# INT8 (one QDQ file either runtime reads) and the OpenVINO copy computed in bfloat16.
INT8_KINDS = {"onnxruntime-int8": "onnxruntime", "openvino-int8": "openvino"}
BF16_KINDS = {"openvino-bf16": "openvino"}
REDUCED_KINDS = {**INT8_KINDS, **BF16_KINDS}  # served only when the accuracy gate passed against the FP32 copy
KINDS = ("keras", *runtimes.SUFFIXES, *REDUCED_KINDS)
# float32 (N, H, W, 3) -> (N, classes), or -> ((N, classes), (N, h, w, C) last conv feature map)
Forward = Callable[[np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]


class Prediction(NamedTuple):
    index: int
    label: str
    domain: str
    probability: float  # out of all classes, always
    probability_in_domain: float | None = None  # the share within the filtered domain, when there is a filter

    def to_dict(self) -> dict:
        return {
            "label": self.label, "index": self.index, "domain": self.domain, "probability": self.probability,
            "probability_in_domain": self.probability_in_domain,
        }


@dataclass(frozen=True)
class Answer:
    """One source's outcome: its ranked predictions and probability row, or the error that stopped it."""

    predictions: list[Prediction]
    probabilities: np.ndarray | None = None
    error: errors.ImageError | None = None
    verdict: Verdict | None = None
    feature_map: np.ndarray | None = None  # (h, w, C), for the heat map; None when the engine gives none
    note: str = ""  # a sentence when a domain filter changes the picture a lot


@dataclass(frozen=True)
class Answers:
    """Every source's Answer, in order, and where the time went (milliseconds)."""

    items: list[Answer]
    timing_ms: dict


_tf_configured = False


def _tensorflow():
    """TensorFlow, with its intra-op pool sized from RECOGNIZER_INTRA_THREADS before it first runs."""
    global _tf_configured
    import tensorflow as tf

    if not _tf_configured:
        from recognizer.optimized import THREADS_ENV, intra_threads

        _tf_configured = True
        if os.environ.get(THREADS_ENV):  # unset: TensorFlow's own default, every core
            try:
                tf.config.threading.set_intra_op_parallelism_threads(intra_threads())
            except RuntimeError:  # TensorFlow already ran something in this process: keep its pool
                pass
    return tf


def keras_forward(artifact: Artifact) -> Forward:
    """A traced forward pass of the artifact's Keras model: no retracing per batch size, no predict() overhead."""
    from recognizer.feature_maps import feature_map_model

    tf = _tensorflow()
    spec, model = artifact.manifest.input, feature_map_model(artifact.model)
    traced = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, spec.height, spec.width, 3), tf.float32)],
        reduce_retracing=True,
    )
    return lambda batch: tuple(o.numpy() for o in traced(batch)) if len(model.outputs) > 1 else traced(batch).numpy()


class Engine:
    """Serves one artifact; safe to share between threads; load once per process."""

    def __init__(self, artifact: Artifact, forward: Forward, kind: str):
        if kind not in KINDS:
            raise ValueError(f"Unknown engine kind {kind!r}; choose one of {', '.join(KINDS)}.")
        self.artifact = artifact
        self.manifest: Manifest = artifact.manifest
        self.kind = kind
        self._forward = forward
        self._lock = threading.Lock()
        self._domain_masks = {d: self._mask(d) for d in DOMAINS}
        self.judge = Judge.for_manifest(self.manifest)

    @classmethod
    def keras(cls, artifact: Artifact) -> "Engine":
        """The engine that runs the artifact's own Keras model."""
        return cls(artifact, keras_forward(artifact), "keras")

    @classmethod
    def from_path(cls, h5_path: str | Path) -> "Engine":
        """Check, load and wrap the artifact at `h5_path`, served by Keras."""
        return cls.keras(load_artifact(h5_path))

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
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One forward pass: (N, classes) probabilities and the (N, h, w, C) feature map (None if not exported)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:  # two cores: concurrent forward passes only fight over them
            out = self._forward(batch)
            probabilities, feature_map = out if isinstance(out, tuple) else (out, None)
            # Copies made under the lock: a runtime may reuse its output buffers for the next batch.
            probabilities = np.array(probabilities, dtype=np.float64)
            feature_map = None if feature_map is None else np.array(feature_map, dtype=np.float32)
        return probabilities, feature_map

    def prepare(self, image: Image.Image | Source, **limits) -> np.ndarray:
        """One image (PIL, bytes, path or file) -> its (1, H, W, 3) batch, via the shared preprocessing."""
        if isinstance(image, Image.Image):
            return to_batch(image, self.manifest.input)
        return load_batch(image, self.manifest.input, **limits)

    def predict(
        self, sources: Sequence[Image.Image | Source], *, top_k: int = 5, domain: str | None = None,
        allowed: np.ndarray | None = None, **limits
    ) -> Answers:
        """Every source (PIL, bytes, path) to its ranked predictions in one batch; a bad source is its own error.

        `limits` are open_image's (max_bytes, max_pixels, formats). This is the one path
        from an image to an answer: the service, the CLI and evaluation all call it.
        """
        self._check_query(top_k, domain)
        started = time.perf_counter()
        prepared = [self._prepare_one(source, limits) for source in sources]
        good = [item for item in prepared if not isinstance(item, errors.ImageError)]
        decoded = time.perf_counter()
        rows, maps = self.outputs(np.concatenate(good)) if good else (np.zeros((0, self.manifest.num_classes)), None)
        inferred = time.perf_counter()
        ranked = iter(self._answers(rows, maps, top_k=top_k, domain=domain, allowed=allowed))
        items = [Answer([], None, item) if isinstance(item, errors.ImageError) else next(ranked) for item in prepared]
        timing = {"decode": _ms(decoded - started), "inference": _ms(inferred - decoded), "total": _ms(time.perf_counter() - started)}
        return Answers(items, timing)

    def _answers(self, rows: np.ndarray, maps: np.ndarray | None, *, top_k: int, domain: str | None,
                 allowed: np.ndarray | None = None) -> list[Answer]:
        from recognizer.allowed import restrict
        from recognizer.feature_maps import pooled

        every = rows
        if allowed is not None:  # before ranking and the verdict's class: both see the allowed classes only
            rows = restrict(rows, allowed)
        # The domain is judged on every class: a list of animals does not make a car an animal.
        verdicts = self.judge.verdicts(rows, None if maps is None else pooled(maps), domain_from=every)
        ranked = self.rank(rows, top_k=top_k, domain=domain, allowed=allowed)
        notes = [filter_note(row, self._domain_masks[domain], domain, allowed) if domain else "" for row in rows]
        return [
            Answer(predictions, row, None, verdict, None if maps is None else maps[n], notes[n])
            for n, (predictions, row, verdict) in enumerate(zip(ranked, rows, verdicts))
        ]

    def _prepare_one(self, source, limits: dict) -> np.ndarray | errors.ImageError:
        if isinstance(source, errors.ImageError):  # refused before it got here (a caller's own checks)
            return source
        try:
            return self.prepare(source, **limits)
        except errors.ImageError as exc:
            return exc
        except OSError as exc:  # a path that cannot be read
            return errors.UnreadableImage(f"cannot read: {exc.strerror or exc}")

    def classify(
        self, images: Sequence[Image.Image | Source], top_k: int = 5, domain: str | None = None
    ) -> list[list[Prediction]]:
        """Top-k predictions per image, best first (see predict); the first bad image raises its error."""
        answers = self.predict(images, top_k=top_k, domain=domain).items
        for answer in answers:
            if answer.error is not None:
                raise answer.error
        return [answer.predictions for answer in answers]

    def rank(
        self, probabilities: np.ndarray, *, top_k: int = 5, domain: str | None = None, allowed: np.ndarray | None = None
    ) -> list[list[Prediction]]:
        """Sorted Prediction lists; with a domain, only its classes, each also with its share within the domain."""
        self._check_query(top_k, domain)
        candidates = np.arange(self.manifest.num_classes)
        shares = None
        if domain is not None:
            candidates = self._domain_indexes(domain)
            kept = probabilities[:, candidates]
            totals = kept.sum(axis=1, keepdims=True)
            shares = np.zeros_like(probabilities)
            shares[:, candidates] = np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)
        if allowed is not None:
            candidates = candidates[allowed[candidates]]
        classes = self.manifest.classes
        results = []
        for n, row in enumerate(probabilities):
            order = candidates[np.argsort(-row[candidates], kind="stable")][:top_k]
            results.append([
                Prediction(int(i), classes[i].label, classes[i].domain, float(row[i]),
                           None if shares is None else float(shares[n, i]))
                for i in order
            ])
        return results

    def _check_query(self, top_k: int, domain: str | None) -> None:
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}.")
        if domain is not None:
            self._domain_indexes(domain)

    def _domain_indexes(self, domain: str) -> np.ndarray:
        mask = self._domain_masks.get(domain)
        if mask is None:
            raise ValueError(f"Unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}.")
        if not mask.any():
            raise errors.InvalidQuery(
                gettext_noop("domain: the model %(name)r has no %(domain)s classes."), name=self.manifest.name, domain=domain,
            )
        return np.flatnonzero(mask)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def predict_files(engine: Engine, paths: Sequence[Path], *, batch_size: int = 16, top_k: int = 5, domain: str | None = None):
    """(path, Answer) per file, in order, `batch_size` files per forward pass, for the CLI and evaluation."""
    top_k = min(top_k, engine.manifest.num_classes)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        yield from zip(chunk, engine.predict(chunk, top_k=top_k, domain=domain).items)
