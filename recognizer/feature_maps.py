"""The last convolutional feature map of a model, beside its probabilities: one backbone pass, several uses.

Every servable model here ends in global average pooling and one dense
softmax layer. So the pooled features (what a second head reads) are the mean
of the feature map, and the class activation map of class c is the feature
map times that dense layer's column c (for this shape it equals Grad-CAM, and
needs no gradients). The compiled model exports the feature map as a second
output; the dense layer's weights are read from the H5 with h5py, so a worker
never imports TensorFlow for any of this.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from recognizer import errors


def _last_layer(model, class_name: str):
    found = [layer for layer in model.layers if type(layer).__name__ == class_name]
    if not found:
        raise errors.ShapeMismatch(f"The model has no {class_name} layer, so it has no class activation map.")
    return found[-1]


def with_feature_map(model):
    """A Keras model with the same input and weights, outputs [probabilities, last conv feature map (N, h, w, C)]."""
    import keras

    pool = _last_layer(model, "GlobalAveragePooling2D")
    return keras.Model(model.inputs, [model.outputs[0], pool.input], name=f"{model.name}_with_map")


def pooled(feature_map: np.ndarray) -> np.ndarray:
    """(N, h, w, C) -> (N, C): exactly what the model's global average pooling computes."""
    return feature_map.mean(axis=(1, 2), dtype=np.float64)


def classifier_layer_name(h5_path: str | Path) -> str:
    """The name of the last Dense layer, from the H5's stored config (nothing is deserialized)."""
    from recognizer.artifacts import read_model_config

    layers = read_model_config(Path(h5_path)).get("config", {}).get("layers", [])
    dense = [layer["config"]["name"] for layer in layers if layer.get("class_name") == "Dense"]
    if not dense:
        raise errors.ShapeMismatch(f"{Path(h5_path).name} has no Dense layer to read class weights from.")
    return dense[-1]


def classifier_weights(h5_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (C, classes), bias (classes,)) of the model's last Dense layer, read with h5py."""
    name = classifier_layer_name(h5_path)
    found: dict[str, np.ndarray] = {}
    with h5py.File(h5_path, "r") as handle:
        group = handle["model_weights"][name]

        def take(key, obj):
            if isinstance(obj, h5py.Dataset):
                kind = "kernel" if obj.ndim == 2 else "bias"
                found.setdefault(kind, np.asarray(obj, dtype=np.float32))

        group.visititems(take)
    if set(found) != {"kernel", "bias"}:
        raise errors.ShapeMismatch(f"The Dense layer {name!r} of {Path(h5_path).name} has no kernel and bias.")
    return found["kernel"], found["bias"]


def class_activation_map(feature_map: np.ndarray, kernel: np.ndarray, index: int) -> np.ndarray:
    """(h, w, C) map and the classifier kernel -> (h, w) evidence for class `index`, scaled to [0, 1]."""
    cam = np.tensordot(feature_map.astype(np.float32), kernel[:, index], axes=([-1], [0]))
    cam = np.maximum(cam - np.median(cam), 0)  # only where the class gains over the picture's typical evidence
    top = float(cam.max())
    return cam / top if top > 0 else cam


def feature_map_model(model):
    """with_feature_map(model) when the model ends in global average pooling, else the model unchanged."""
    try:
        return with_feature_map(model)
    except errors.ShapeMismatch:
        return model
