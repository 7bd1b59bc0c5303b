"""Evaluation's scoring choices and pictures: by class or by domain, and a confusion matrix of bounded size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from recognizer import errors
from recognizer.evaluation import DOMAIN_CLASSES, MAX_PLOTTED_CLASSES, by_domain, compute_metrics, plot_confusion, scoring_classes
from recognizer.manifest import DOMAINS, ClassInfo
from tests.conftest import TINY_CLASSES


def test_folders_named_after_classes_are_scored_by_class():
    assert scoring_classes(["cat", "owl", "unicorn"], TINY_CLASSES) == (TINY_CLASSES, False)


def test_folders_named_after_domains_are_scored_by_domain():
    assert scoring_classes(["animal", "plant"], TINY_CLASSES) == (DOMAIN_CLASSES, True)
    assert [c.id for c in DOMAIN_CLASSES] == list(DOMAINS)


def test_folders_that_are_neither_classes_nor_domains_are_refused_with_the_names():
    with pytest.raises(errors.DatasetError, match=r"None of the folders \(dogs, unicorns\).*e.g. cat, owl"):
        scoring_classes(["unicorns", "dogs"], TINY_CLASSES)


def test_domain_probabilities_are_the_sums_of_their_classes():
    classes = (ClassInfo(0, "a", "a", "bird"), ClassInfo(1, "b", "b", "animal"), ClassInfo(2, "c", "c", "bird"))
    summed = by_domain(np.array([[0.2, 0.5, 0.3]]), classes)
    np.testing.assert_allclose(summed, [[0.5, 0.5, 0.0, 0.0]])  # animal, bird, plant, other


def test_the_confusion_picture_of_a_thousand_classes_stays_small(tmp_path):
    classes = tuple(ClassInfo(i, f"c{i}", f"c{i}", "other") for i in range(1000))
    truth = np.array([7, 7, 7, 500, 999, 3])
    probabilities = np.full((len(truth), 1000), 1e-4)
    probabilities[np.arange(len(truth)), [8, 9, 7, 500, 3, 3]] = 0.9  # c7 mistaken twice, c999 once
    metrics = compute_metrics(probabilities, truth, classes)
    with Image.open(plot_confusion(metrics, tmp_path / "confusion.png")) as picture:
        width, height = picture.size
    side = (0.45 * MAX_PLOTTED_CLASSES + 2) * 100  # inches at 100 dpi, as for a 30-class model
    assert width <= side and height <= side
    assert len(metrics["confusion_matrix"]) == 1000  # the numbers stay complete; only the picture is cut


def test_the_picture_keeps_the_classes_with_the_most_errors_either_way():
    from recognizer.evaluation import _most_confused

    matrix = np.zeros((40, 40), dtype=int)
    np.fill_diagonal(matrix, 5)  # right answers do not make a class worth showing
    matrix[3, 30] = 4  # c3 taken for c30
    matrix[12, 39] = 1
    kept, labels = _most_confused(matrix, [f"c{i}" for i in range(40)])
    assert kept.shape == (MAX_PLOTTED_CLASSES, MAX_PLOTTED_CLASSES) and len(labels) == MAX_PLOTTED_CLASSES
    assert {"c3", "c30", "c12", "c39"} <= set(labels)
    assert labels == sorted(labels, key=lambda name: int(name[1:]))  # in class order
    assert kept[labels.index("c3"), labels.index("c30")] == 4
