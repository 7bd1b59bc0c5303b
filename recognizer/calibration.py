"""Calibrated confidence: temperature scaling, expected calibration error, and thresholds picked from data."""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
PROBABILITY_FLOOR = 1e-12


def as_logits(probabilities: np.ndarray) -> np.ndarray:
    """Log-probabilities: softmax(log p / T) is softmax(logits / T), so a softmax model is rescaled after the fact."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR))


def scaled(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / temperature), row by row."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, PROBABILITY_FLOOR))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimizes held-out negative log-likelihood (grid, then a finer grid)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = min(grid, key=lambda t: negative_log_likelihood(scaled(logits, t), labels))
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return float(min(fine, key=lambda t: negative_log_likelihood(scaled(logits, t), labels)))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| of the top prediction over equal-width confidence bins, weighted by count."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def threshold_for_precision(confidence: np.ndarray, correct: np.ndarray, *, precision: float, floor: float = 0.5) -> float:
    """The lowest threshold >= floor at which answers with confidence >= it are right at least `precision` of the time.

    Scanning from the top down, the answer is the lowest confidence whose set of
    answers at or above it still meets the target; 1.0 (never confident) if none does.
    """
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    shares = hits / np.arange(1, len(order) + 1)
    meeting = np.flatnonzero((shares >= precision) & (confidence[order] >= floor))
    if not len(meeting):
        return 1.0
    return float(confidence[order][meeting[-1]])


def group_threshold(probabilities: np.ndarray, truth: np.ndarray, classes, groups, *, label_threshold: float,
                    precision: float) -> float:
    """The lowest summed probability at which group answers (given when no class is sure) are right often enough.

    A group answer is right when the true class is one of its members. The
    thresholds are scanned on a grid, since the group chosen depends on it.
    """
    from recognizer.groups import best_group

    unsure = probabilities.max(axis=1) < label_threshold
    for threshold in np.round(np.arange(0.30, 1.0, 0.01), 2):
        answers = []
        for row, true in zip(probabilities[unsure], truth[unsure]):
            top_domain = classes[int(np.argmax(row))].domain
            group, _ = best_group(row, groups, domain=top_domain, threshold=float(threshold))
            if group is not None:
                answers.append(int(true) in group.members)
        if answers and np.mean(answers) >= precision:
            return float(threshold)
    return 1.0


def calibrate_version(probabilities: np.ndarray, labels: np.ndarray, classes, *, precision: float = 0.95) -> dict:
    """The calibration a trained version's manifest carries, fitted on its held-out validation answers.

    A version without a domain head takes its domain from the calibrated class
    mass per domain, so that is what the domain threshold is picked on.
    """
    from recognizer.domain_head import domain_mass
    from recognizer.manifest import DOMAINS

    logits = as_logits(probabilities)
    temperature = fit_temperature(logits, labels)
    after = scaled(logits, temperature)
    mass = domain_mass(after, classes)
    true_domain = np.array([DOMAINS.index(classes[i].domain) for i in labels])
    return {
        "class_temperature": temperature,
        "thresholds": {
            "domain": threshold_for_precision(mass.max(1), mass.argmax(1) == true_domain, precision=precision),
            "label": threshold_for_precision(after.max(1), after.argmax(1) == labels, precision=precision),
            "group": 1.0,  # groups are WordNet's, for ImageNet classes only
        },
        "expected_calibration_error": {
            "class_before": expected_calibration_error(scaled(logits, 1.0), labels),
            "class_after": expected_calibration_error(after, labels),
        },
        "fitted_on": f"the held-out validation split ({len(labels)} images), for {precision:.0%} precision",
    }
