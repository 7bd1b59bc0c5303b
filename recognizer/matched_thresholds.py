"""Verdict thresholds for a reduced-precision copy: FP32's, moved just far enough to make FP32's calls.

The manifest's thresholds were picked on labelled photos, for a precision
target, on the FP32 model's probabilities. An INT8 or bfloat16 copy gives
slightly different probabilities, so the same numbers would call some photos
near an edge differently. Registration has no labelled photos at hand, but it
has the FP32 copy: on the calibration photos, each threshold is moved to where
the reduced copy's scores make the same sure / not sure calls as FP32's did,
by no more than that takes (a copy that already agrees keeps FP32's numbers).
The gate's evaluation photos, never fitted on, then tell how many verdicts the
copy keeps with FP32's thresholds and with its own.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recognizer.feature_maps import pooled
from recognizer.verdict import Judge, Thresholds

NAMES = ("domain", "label", "group")  # the columns of Judge.scores, in order
Outputs = tuple  # what Engine.outputs gives: (probabilities, feature map or None)


def matched_threshold(reference: np.ndarray, threshold: float, scores: np.ndarray) -> float:
    """The threshold at which `scores >= it` agrees with `reference >= threshold` on the most images; of those that
    do, the nearest to `threshold`. Images with a NaN score on either side have no say."""
    known = ~(np.isnan(reference) | np.isnan(scores))
    reference, scores = reference[known], scores[known]
    if not len(scores):
        return float(threshold)
    wanted = reference >= threshold
    # The calls change only at a score: trying each score and the next float above it tries every outcome.
    candidates = np.unique(np.concatenate([[threshold], scores, np.nextafter(scores, np.inf)]))
    agreeing = ((scores[None, :] >= candidates[:, None]) == wanted[None, :]).sum(axis=1)
    best = candidates[agreeing == agreeing.max()]
    return float(best[np.argmin(np.abs(best - threshold))])


def _scores(judge: Judge, outputs: Sequence[Outputs]) -> np.ndarray:
    return np.concatenate([judge.scores(p, None if m is None else pooled(m)) for p, m in outputs])


def fitted_thresholds(judge: Judge, fp32: Sequence[Outputs], reduced: Sequence[Outputs]) -> Thresholds:
    """The reduced copy's thresholds, from both copies' outputs on the same calibration photos."""
    reference, scores = _scores(judge, fp32), _scores(judge, reduced)
    current = judge.thresholds
    return Thresholds(*(
        matched_threshold(reference[:, n], getattr(current, name), scores[:, n]) for n, name in enumerate(NAMES)
    ))


def verdicts_kept(judge: Judge, thresholds: Thresholds, fp32: Sequence[Outputs], reduced: Sequence[Outputs]) -> float:
    """The share of images whose verdict (domain, status, label) the reduced copy deciding at `thresholds` keeps."""
    def calls(deciding: Judge, outputs: Sequence[Outputs]) -> list[tuple]:
        return [(v.domain, v.status, v.label) for p, m in outputs
                for v in deciding.verdicts(p, None if m is None else pooled(m))]

    wanted, got = calls(judge, fp32), calls(judge.with_thresholds(thresholds), reduced)
    return sum(a == b for a, b in zip(wanted, got)) / max(1, len(wanted))


def kept_figures(judge: Judge, thresholds: Thresholds, fp32: Sequence[Outputs], reduced: Sequence[Outputs]) -> dict:
    """The gate report's verdict figures: the shares of verdicts kept at FP32's thresholds and at the copy's own."""
    return {
        "verdicts_kept": verdicts_kept(judge, judge.thresholds, fp32, reduced),
        "verdicts_kept_fitted": verdicts_kept(judge, thresholds, fp32, reduced),
    }
