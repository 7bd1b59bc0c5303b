"""Temperature scaling, the expected calibration error and thresholds picked for a precision."""

import numpy as np

from recognizer import calibration


def sampled(temperature: float, n: int = 4000, classes: int = 5, seed: int = 0):
    """Logits and labels drawn from softmax(logits / temperature): their true temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    p = calibration.scaled(logits, temperature)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return logits, labels


def test_it_recovers_the_temperature_that_generated_the_labels():
    logits, labels = sampled(2.0)
    assert abs(calibration.fit_temperature(logits, labels) - 2.0) < 0.2


def test_scaling_lowers_the_calibration_error_of_an_overconfident_model():
    logits, labels = sampled(2.5)
    before = calibration.expected_calibration_error(calibration.scaled(logits, 1.0), labels)
    after = calibration.expected_calibration_error(calibration.scaled(logits, calibration.fit_temperature(logits, labels)), labels)
    assert before > 0.1
    assert after < 0.03


def test_log_probabilities_rescale_like_logits():
    logits = np.array([[2.0, 0.5, -1.0]])
    probabilities = calibration.scaled(logits, 1.0)
    assert np.allclose(calibration.scaled(calibration.as_logits(probabilities), 3.0), calibration.scaled(logits, 3.0))


def test_the_threshold_is_the_lowest_confidence_that_keeps_the_precision():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False, True, False])
    assert calibration.threshold_for_precision(confidence, correct, precision=1.0) == 0.9
    assert calibration.threshold_for_precision(confidence, correct, precision=0.8) == 0.7


def test_no_threshold_meets_an_impossible_precision():
    assert calibration.threshold_for_precision(np.array([0.9, 0.8]), np.array([False, False]), precision=0.5) == 1.0


def test_a_version_is_calibrated_with_thresholds_picked_for_the_precision():
    from recognizer.manifest import ClassInfo

    classes = tuple(ClassInfo(i, f"c{i}", f"c{i}", d) for i, d in enumerate(["animal", "bird", "plant", "other", "animal"]))
    logits, labels = sampled(2.0, n=2000, classes=5)
    result = calibration.calibrate_version(calibration.scaled(logits, 1.0), labels, classes, precision=0.9)
    assert abs(result["class_temperature"] - 2.0) < 0.3
    after = calibration.scaled(logits, result["class_temperature"])
    sure = after.max(1) >= result["thresholds"]["label"]
    assert sure.any() and (after.argmax(1) == labels)[sure].mean() >= 0.9
    ece = result["expected_calibration_error"]
    assert ece["class_after"] < ece["class_before"]
