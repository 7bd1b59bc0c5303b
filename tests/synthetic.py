"""Tiny image-folder datasets drawn on the fly: classes that any backbone tells apart in seconds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
# Each kind is a colour and a shape, so that ImageNet features separate them with a handful of examples.
KINDS = {
    "red-stripes": ((205, 35, 35), "stripes"),
    "green-blocks": ((35, 170, 60), "blocks"),
    "blue-circle": ((40, 60, 210), "circle"),
    "purple-cross": ((150, 40, 170), "cross"),
}


def picture(kind: str, seed: int, size: int = SIZE) -> Image.Image:
    """One noisy picture of `kind`; every seed gives different bytes (the feature cache keys on them)."""
    colour, shape = KINDS[kind]
    rng = np.random.default_rng(seed)
    background = np.clip(rng.normal(235, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    jitter = int(rng.integers(-3, 4))
    if shape == "stripes":
        for x in range(jitter % 8, size, 12):
            draw.rectangle((x, 0, x + 5, size), fill=colour)
    elif shape == "blocks":
        for x in range(0, size, 16):
            for y in range((x // 16 % 2) * 16, size, 32):
                draw.rectangle((x + jitter, y, x + jitter + 15, y + 15), fill=colour)
    elif shape == "circle":
        r = size // 3 + jitter
        draw.ellipse((size // 2 - r, size // 2 - r, size // 2 + r, size // 2 + r), fill=colour)
    else:
        w = size // 6
        draw.rectangle((size // 2 - w + jitter, 4, size // 2 + w + jitter, size - 4), fill=colour)
        draw.rectangle((4, size // 2 - w, size - 4, size // 2 + w), fill=colour)
    noise = rng.normal(0, 10, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def truncated_png(seed: int = 0) -> bytes:
    """A PNG whose header is intact but whose pixel data stops halfway: it fails only when decoded."""
    data = png_bytes(picture("red-stripes", seed))
    return data[: len(data) // 2]


def write_dataset(root: Path, per_class: dict[str, int], *, seed: int = 0) -> Path:
    """root/<name>/<name>-<i>.png per folder name and count, drawn as the kind of that name (any kind for
    other names); from three folders on, neither creation order nor its reverse is the sorted order."""
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(per_class)
    for k, name in enumerate(names[1::2] + names[0::2]):
        count = per_class[name]
        kind = name if name in KINDS else list(KINDS)[k % len(KINDS)]
        folder = root / name
        folder.mkdir(exist_ok=True)
        for i in range(count):
            picture(kind, seed=seed * 10_000 + k * 100 + i).save(folder / f"{name}-{i}.png")
    return root
