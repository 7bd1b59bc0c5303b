"""The verdict decided from calibrated probabilities: not wildlife, a class, a group, or not sure."""

import numpy as np

from recognizer.groups import imagenet_groups
from recognizer.labels import imagenet_classes
from recognizer.verdict import Thresholds, decide

CLASSES = imagenet_classes()
GROUPS = imagenet_groups()
SURE = Thresholds(domain=0.8, label=0.6, group=0.6)
RED_FOX, KIT_FOX, TEAPOT = 277, 278, 849


def domains(animal=0.0, bird=0.0, plant=0.0, other=0.0):
    return np.array([animal, bird, plant, other])


def spread(**indexes: float) -> np.ndarray:
    p = np.full(1000, 0.0)
    for index, value in indexes.items():
        p[int(index.lstrip("c"))] = value
    return p


def test_a_sure_class_is_the_answer():
    v = decide(spread(c277=0.9), domains(animal=0.97, other=0.03), CLASSES, GROUPS, SURE)
    assert (v.status, v.label, v.index, v.level, v.domain) == ("confident", "red fox", RED_FOX, "class", "animal")
    assert v.explanation == "Very likely a red fox."


def test_two_close_foxes_become_the_genus():
    v = decide(spread(c277=0.4, c278=0.4), domains(animal=0.95, plant=0.05), CLASSES, GROUPS, SURE)
    assert (v.status, v.label, v.index, v.level) == ("confident", "a fox (genus Vulpes)", None, "group")


def test_the_other_domain_is_not_wildlife_and_names_nothing():
    v = decide(spread(c849=0.9), domains(other=0.9, plant=0.1), CLASSES, GROUPS, SURE)
    assert (v.domain, v.status, v.label, v.level) == ("other", "not_wildlife", None, None)
    assert "not" in v.explanation


def test_a_class_of_another_domain_is_never_the_answer():
    v = decide(spread(c849=0.9, c277=0.05), domains(animal=0.9, other=0.1), CLASSES, GROUPS, SURE)
    assert (v.domain, v.status, v.label) == ("animal", "uncertain", None)


def test_an_unsure_domain_is_uncertain():
    v = decide(spread(c277=0.9), domains(animal=0.6, bird=0.4), CLASSES, GROUPS, SURE)
    assert (v.status, v.label, v.domain_probability) == ("uncertain", None, 0.6)


def test_thresholds_come_from_the_manifest_extra():
    extra = {"calibration": {"thresholds": {"domain": 0.7, "label": 0.55, "group": 0.65}}}
    assert Thresholds.from_manifest_extra(extra) == Thresholds(0.7, 0.55, 0.65)
    assert Thresholds.from_manifest_extra({}) == Thresholds()


def test_a_filter_note_says_less_than_one_percent_rather_than_none_of_the_probability():
    import numpy as np

    from recognizer.verdict import filter_note

    probabilities = np.array([0.997, 0.003])
    note = filter_note(probabilities, np.array([False, True]), "bird")
    assert note.startswith("Only <1% of the model's probability is on bird classes")
    assert filter_note(np.array([0.7, 0.3]), np.array([False, True]), "bird").startswith("Only 30% ")


def test_a_crop_note_says_how_little_of_a_wide_photo_the_model_saw_and_nothing_for_an_ordinary_one():
    from recognizer.verdict import crop_note

    assert crop_note(0.255) == ("The model looked only at the middle of this photo (26% of it): crop the photo around "
                                "the subject for a better answer.")
    assert crop_note(0.43) == "" and crop_note(1.0) == ""  # a 16:9 photo, a stretched one
