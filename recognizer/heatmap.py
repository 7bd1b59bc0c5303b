"""Where the model looked: the class activation map of one class, drawn over the picture the model saw.

Computed from the feature map the engine already returns and the classifier
weights read from the H5 with h5py: no TensorFlow, no second forward pass. It
costs only when asked for (see bench/verdict_quality.py for the figures).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image

from recognizer.feature_maps import class_activation_map, classifier_weights
from recognizer.preprocessing import InputSpec, open_image, to_pixels

HEAT_ALPHA = 0.6  # opacity of the hottest spot; cold areas show the photo unchanged


@functools.lru_cache(maxsize=8)
def _kernel(h5_path: str, mtime_ns: int) -> np.ndarray:
    return classifier_weights(h5_path)[0]


def kernel_of(h5_path: str | Path) -> np.ndarray:
    """The classifier kernel of an artifact, read once per file version."""
    path = Path(h5_path)
    return _kernel(str(path), path.stat().st_mtime_ns)


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) float colours from dark blue through red to yellow."""
    red = np.clip(heat * 2.0, 0, 1)
    green = np.clip(heat * 2.0 - 1.0, 0, 1)
    blue = np.clip(0.5 - heat, 0, 1)
    return np.stack([red, green, blue], axis=-1) * 255.0


def overlay_png(source, spec: InputSpec, feature_map: np.ndarray, kernel: np.ndarray, index: int, **limits) -> bytes:
    """PNG bytes: the model's view of `source` with the activation map of class `index` blended over it."""
    image = source if isinstance(source, Image.Image) else open_image(source, **limits)
    pixels = to_pixels(image, spec).astype(np.float32)
    cam = class_activation_map(feature_map, kernel, index)
    heat = np.asarray(
        Image.fromarray((cam * 255).astype(np.uint8)).resize((spec.width, spec.height), Image.Resampling.BICUBIC),
        dtype=np.float32,
    ) / 255.0
    alpha = (HEAT_ALPHA * heat)[..., None]
    blended = pixels * (1 - alpha) + colorize(heat) * alpha
    out = io.BytesIO()
    Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8)).save(out, format="PNG", optimize=False)
    return out.getvalue()
