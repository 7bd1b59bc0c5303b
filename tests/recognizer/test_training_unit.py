"""Pieces of recognizer.training on tiny real Keras models: the feature cache, splits, the head, fine-tuning."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recognizer.backbones import Backbone
from recognizer.preprocessing import InputSpec
from recognizer.fine_tuning import unfreeze_top
from recognizer.training import TrainConfig, extract_features, fit_head, set_determinism, stratified_folds, stratified_split
from tests.synthetic import truncated_png, write_dataset

SPEC = InputSpec(height=32, width=32, resize="bilinear", crop="center", crop_fraction=0.875, normalization="lite")


def tiny_features(dim: int = 8):
    """A real (small) convolutional feature extractor taking 32x32 input."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(dim, 3, strides=2, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


class Counting:
    """Wraps a feature model and counts the images it is asked to embed."""

    def __init__(self, model):
        self.model, self.images = model, 0

    def __call__(self, batch, training=False):
        self.images += len(batch)
        return self.model(batch, training=training)


TINY = Backbone("tiny", SPEC, 8, build=lambda **_: None)


# ---- the feature cache --------------------------------------------------------------------------

def test_features_are_cached_one_file_per_image_and_reused(tmp_path):
    root = write_dataset(tmp_path / "data", {"red-stripes": 3, "blue-circle": 2})
    paths = sorted(root.rglob("*.png"))
    cache = tmp_path / "cache"
    model = Counting(tiny_features())

    first, failed = extract_features(model, TINY, paths, cache_dir=cache, batch_size=2, progress=False)
    assert failed == [] and first.shape == (5, 8) and model.images == 5
    assert len(list(cache.glob("*.npy"))) == 5

    second, _ = extract_features(model, TINY, paths, cache_dir=cache, batch_size=2, progress=False)
    assert model.images == 5  # nothing recomputed
    assert len(list(cache.glob("*.npy"))) == 5
    np.testing.assert_array_equal(first, second)


def test_a_cached_file_cut_short_is_computed_again_and_rewritten_whole(tmp_path):
    # A run killed while writing left a truncated .npy that every later training then failed on.
    root = write_dataset(tmp_path / "data", {"red-stripes": 2})
    paths = sorted(root.rglob("*.png"))
    cache = tmp_path / "cache"
    model = Counting(tiny_features())
    first, _ = extract_features(model, TINY, paths, cache_dir=cache, batch_size=8, progress=False)
    damaged = sorted(cache.glob("*.npy"))[0]
    damaged.write_bytes(damaged.read_bytes()[:40])
    again, failed = extract_features(model, TINY, paths, cache_dir=cache, batch_size=8, progress=False)
    assert failed == [] and model.images == 3  # the damaged one only
    np.testing.assert_array_equal(first, again)
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in cache.glob("*.npy"))  # no partial file left
    assert np.load(damaged).shape == (8,)


def test_the_cache_keys_on_content_and_on_the_backbones_input(tmp_path):
    root = write_dataset(tmp_path / "data", {"red-stripes": 2})
    paths = sorted(root.rglob("*.png"))
    cache = tmp_path / "cache"
    model = Counting(tiny_features())
    extract_features(model, TINY, paths, cache_dir=cache, batch_size=8, progress=False)
    # Same bytes under another name: a cache hit.
    copy = tmp_path / "copy.png"
    copy.write_bytes(paths[0].read_bytes())
    extract_features(model, TINY, [copy], cache_dir=cache, batch_size=8, progress=False)
    assert model.images == 2
    # Another preprocessing of the same files: new features, never the old ones.
    other = Backbone("tiny", replace(SPEC, resize="bicubic"), 8, build=TINY.build)
    extract_features(model, other, paths, cache_dir=cache, batch_size=8, progress=False)
    assert model.images == 4
    assert len(list(cache.glob("*.npy"))) == 4


def test_images_that_fail_to_decode_are_returned_and_not_cached(tmp_path):
    root = write_dataset(tmp_path / "data", {"red-stripes": 2})
    broken = root / "red-stripes" / "cut.png"
    broken.write_bytes(truncated_png())
    paths = sorted(root.rglob("*.png"))
    features, failed = extract_features(tiny_features(), TINY, paths, cache_dir=tmp_path / "c", batch_size=8, progress=False)
    assert features.shape == (2, 8)
    assert [(p, "truncated" in reason) for p, reason in failed] == [(broken, True)]
    assert len(list((tmp_path / "c").glob("*.npy"))) == 2


# ---- splits and the head ------------------------------------------------------------------------

def test_the_split_keeps_every_class_on_both_sides():
    labels = np.array([0] * 2 + [1] * 5 + [2] * 10)
    train, val = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert set(labels[train]) == set(labels[val]) == {0, 1, 2}
    assert np.bincount(labels[val]).tolist() == [1, 1, 2]
    np.testing.assert_array_equal(stratified_split(labels, 0.2, seed=0)[1], val)
    assert len(stratified_split(labels, 0.0, seed=0)[1]) == 0


def test_folds_partition_the_images_and_spread_every_class():
    labels = np.array([0] * 6 + [1] * 3)
    folds = stratified_folds(labels, 3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(9))
    assert all(sorted(labels[f].tolist()) == [0, 0, 1] for f in folds)


def _fit(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(24, 16)).astype(np.float32)
    y = np.repeat([0, 1, 2], 8)
    x[np.arange(24), y] += 2.0
    set_determinism(seed)
    config = TrainConfig(name="unit", epochs=2, batch_size=8, seed=seed)
    head, history = fit_head(x[:18], y[:18], x[18:], y[18:], num_classes=3, config=config)
    assert set(history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    return head.get_layer("head_predictions").get_weights()


def test_the_same_seed_gives_the_same_head_and_another_seed_another():
    first, again, other = _fit(0), _fit(0), _fit(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


# ---- fine-tuning ----------------------------------------------------------------------------------

def bn_model():
    """conv-bn-conv-bn, then the head layers by their training names."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.Conv2D(4, 3, name="conv_b")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.0, name="head_dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head_predictions")(x))


def trainable(model) -> set[str]:
    return {layer.name for layer in model.layers if layer.trainable and layer.weights}


def test_unfreeze_top_opens_the_top_k_weighted_layers_and_never_batchnorm():
    model = bn_model()
    assert unfreeze_top(model, 1) == 1
    assert trainable(model) == {"conv_b", "head_predictions"}
    assert unfreeze_top(model, 5) == 2
    assert trainable(model) == {"conv_a", "conv_b", "head_predictions"}
    assert unfreeze_top(model, None) == 2
    assert not model.get_layer("bn_a").trainable and not model.get_layer("bn_b").trainable


def test_batchnorm_keeps_its_statistics_while_the_unfrozen_layers_learn():
    import keras

    model = bn_model()
    unfreeze_top(model, 1)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(3.0, 2.0, (8, 16, 16, 3)).astype(np.float32)
    before = {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in ("bn_a", "bn_b", "conv_a", "conv_b")}
    # Frozen BatchNorm normalizes with its moving statistics even when called in training mode.
    np.testing.assert_allclose(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)), atol=1e-6)
    model.train_on_batch(x, np.array([0, 1] * 4))
    for name in ("bn_a", "bn_b", "conv_a"):
        for old, new in zip(before[name], model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(old, new, err_msg=name)
    assert not np.array_equal(before["conv_b"][0], model.get_layer("conv_b").get_weights()[0])


@pytest.mark.slow
def test_on_efficientnet_lite0_the_top_two_layers_are_the_last_convolutions():
    from recognizer.backbones import get_backbone
    from recognizer.training import assemble, build_head

    features = get_backbone("efficientnet_lite0").build(include_top=False, weights=None)
    model = assemble(features, build_head(1280, 3), "unit")
    assert unfreeze_top(model, 2) == 2
    assert trainable(model) == {"block15_project_conv", "head_conv", "head_predictions"}
    bn = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert len(bn) > 40 and not any(layer.trainable for layer in bn)
