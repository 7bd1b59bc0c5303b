"""Cut-outs lifted off their white and put into scenes, the same way for the same seed."""

import numpy as np
import pytest
from PIL import Image

from recognizer.scenes import foreground_mask, in_scene


@pytest.fixture
def fox(photos) -> Image.Image:
    return Image.open(photos / "animal" / "fox.jpg").convert("RGB")


def near_white(image: Image.Image) -> float:
    return float((np.asarray(image).min(axis=-1) >= 240).mean())


def test_the_mask_drops_the_white_around_the_subject_and_keeps_the_subject(fox):
    mask = np.asarray(foreground_mask(fox))
    assert mask[0, 0] == 0 and mask[-1, -1] == 0
    subject = np.asarray(fox).min(axis=-1) < 200  # clearly coloured pixels are the fox
    assert (mask[subject] > 128).mean() > 0.9  # the edge is eroded by a pixel, on purpose
    assert 0.1 < (mask > 128).mean() < 0.9


def test_a_scene_has_a_backdrop_where_the_white_was(fox):
    assert near_white(fox) > 0.3
    assert near_white(in_scene(fox, np.random.default_rng(0))) < 0.05


def test_the_same_seed_gives_the_same_scene_and_another_seed_another(fox):
    first = np.asarray(in_scene(fox, np.random.default_rng(3)))
    again = np.asarray(in_scene(fox, np.random.default_rng(3)))
    other = np.asarray(in_scene(fox, np.random.default_rng(4)))
    assert np.array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)
