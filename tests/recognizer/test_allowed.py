"""The allowed-classes file: labels, WordNet ids or indexes, and probabilities renormalized over them."""

import numpy as np
import pytest

from recognizer import errors
from recognizer.allowed import read_allowed, restrict
from recognizer.labels import imagenet_classes


def test_labels_ids_and_indexes_all_name_classes_and_comments_are_skipped(tmp_path):
    path = tmp_path / "reserve.txt"
    path.write_text("# foxes of the reserve\nred fox\n\nn02119789\n279\n")
    assert np.flatnonzero(read_allowed(path, imagenet_classes())).tolist() == [277, 278, 279]


def test_a_line_that_is_no_class_is_refused_by_name(tmp_path):
    path = tmp_path / "reserve.txt"
    path.write_text("red fox\nunicorn\n")
    with pytest.raises(errors.DatasetError, match="unicorn"):
        read_allowed(path, imagenet_classes())


def test_probabilities_are_renormalized_over_the_allowed_classes_only():
    mask = np.array([True, False, True])
    assert restrict(np.array([[0.2, 0.6, 0.2]]), mask).tolist() == [[0.5, 0.0, 0.5]]


def test_an_imagenet_class_may_be_listed_by_the_chinese_label_the_replies_give_it(tmp_path):
    path = tmp_path / "allowed.txt"
    path.write_text("赤狐\n老虎\n", encoding="utf-8")
    mask = read_allowed(path, imagenet_classes())
    assert list(np.flatnonzero(mask)) == [277, 292]
