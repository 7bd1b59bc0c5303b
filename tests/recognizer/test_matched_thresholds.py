"""A reduced-precision copy's verdict thresholds: FP32's, moved only as far as making FP32's calls again takes."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer import photos
from recognizer.engine import Engine
from recognizer.matched_thresholds import fitted_thresholds, matched_threshold, verdicts_kept
from recognizer.verdict import Thresholds


def test_a_threshold_that_already_makes_fp32s_calls_stays_where_it_is():
    reference = np.array([0.2, 0.4, 0.7, 0.9])
    assert matched_threshold(reference, 0.6, reference - 0.05) == 0.6


def test_a_threshold_moves_down_to_the_first_score_fp32_called_sure_and_no_further():
    reference = np.array([0.2, 0.4, 0.7, 0.9])
    scores = reference - 0.15  # 0.05, 0.25, 0.55, 0.75: at 0.6 the third would no longer be sure
    moved = matched_threshold(reference, 0.6, scores)
    assert moved == pytest.approx(0.55)
    assert list(scores >= moved) == list(reference >= 0.6)


def test_a_threshold_moves_up_just_past_a_score_fp32_called_not_sure():
    reference = np.array([0.3, 0.58, 0.8])
    scores = np.array([0.3, 0.62, 0.85])  # a more confident copy would call the second sure at 0.6
    moved = matched_threshold(reference, 0.6, scores)
    assert 0.62 < moved < 0.62 + 1e-9
    assert list(scores >= moved) == list(reference >= 0.6)


def test_images_without_a_score_on_either_side_have_no_say():
    reference = np.array([np.nan, 0.7, 0.9, 0.5])
    scores = np.array([0.1, 0.55, np.nan, 0.45])
    assert matched_threshold(reference, 0.6, scores) == pytest.approx(0.55)
    assert matched_threshold(np.array([np.nan]), 0.6, np.array([0.2])) == 0.6


@pytest.fixture(scope="module")
def tiny_outputs(tiny_artifact):
    """A real tiny engine's outputs on the parity photos (to fit on) and on the golden ones (to judge on), with
    thresholds at the median of its own scores so that there are calls both ways to keep."""
    engine = Engine.from_path(tiny_artifact)
    fit = [engine.outputs(engine.prepare(p)) for p in photos.photo_paths("parity")]
    judged = [engine.outputs(engine.prepare(p)) for p in photos.photo_paths("golden")]
    scores = np.concatenate([engine.judge.scores(p) for p, _ in fit + judged])[:, :2]  # a tiny model has no groups
    judge = engine.judge.with_thresholds(Thresholds(*np.nanmedian(scores, axis=0), 0.5))
    return judge, fit, judged


def less_sure(outputs, power: float = 0.6):
    """The same outputs with every probability row flattened, as a copy that is systematically less sure gives."""
    return [(p**power / (p**power).sum(axis=1, keepdims=True), m) for p, m in outputs]


def test_a_copy_that_scores_like_fp32_keeps_fp32s_thresholds(tiny_outputs):
    judge, fit, _ = tiny_outputs
    assert fitted_thresholds(judge, fit, fit) == judge.thresholds


def test_a_less_sure_copy_gets_lower_thresholds_that_keep_more_verdicts_on_photos_it_was_not_fitted_on(tiny_outputs):
    judge, fit, judged = tiny_outputs
    own = fitted_thresholds(judge, fit, less_sure(fit))
    assert own.domain < judge.thresholds.domain and own.label < judge.thresholds.label
    at_fp32s = verdicts_kept(judge, judge.thresholds, judged, less_sure(judged))
    at_its_own = verdicts_kept(judge, own, judged, less_sure(judged))
    assert at_its_own > at_fp32s
    assert verdicts_kept(judge, judge.thresholds, judged, judged) == 1.0
