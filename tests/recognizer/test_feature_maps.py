"""The feature map beside the probabilities, the classifier weights read without Keras, and heat maps."""

import io

import numpy as np
import pytest
from PIL import Image

from recognizer.artifacts import load_artifact
from recognizer.feature_maps import class_activation_map, classifier_weights, pooled, with_feature_map
from recognizer.heatmap import overlay_png


def test_the_pooled_feature_map_times_the_dense_layer_gives_the_models_probabilities(tiny_artifact, photos):
    artifact = load_artifact(tiny_artifact)
    from recognizer.preprocessing import load_batch

    batch = load_batch(photos / "animal" / "zebra.jpg", artifact.manifest.input)
    probabilities, feature_map = (np.asarray(o) for o in with_feature_map(artifact.model)(batch, training=False))
    kernel, bias = classifier_weights(tiny_artifact)
    logits = pooled(feature_map) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(expected, probabilities, atol=1e-5)


def test_the_activation_map_is_scaled_to_one_and_marks_where_the_class_gains():
    feature_map = np.zeros((3, 3, 2), dtype=np.float32)
    feature_map[0, 0] = [5.0, 0.0]  # the only place with evidence for class 0
    cam = class_activation_map(feature_map, np.array([[1.0, 0.0], [0.0, 1.0]]), 0)
    assert cam[0, 0] == 1.0 and cam.sum() == 1.0


@pytest.mark.slow
def test_a_resnet50_version_gives_its_feature_map_weights_and_a_heat_map(tmp_path, photos):
    from recognizer.backbones.resnet50 import build_resnet50

    model = build_resnet50(weights=None)  # the graph of every ResNet50 version; weights do not matter here
    wrapped = with_feature_map(model)
    assert wrapped.outputs[1].shape[1:] == (7, 7, 2048)
    model.save(tmp_path / "r.h5")
    kernel, bias = classifier_weights(tmp_path / "r.h5")
    assert kernel.shape == (2048, 1000) and bias.shape == (1000,)
    from recognizer.backbones.resnet50 import INPUT_SPEC

    png = overlay_png(Image.open(photos / "animal" / "zebra.jpg"), INPUT_SPEC, np.random.default_rng(0).random((7, 7, 2048)), kernel, 3)
    assert Image.open(io.BytesIO(png)).size == (224, 224)
