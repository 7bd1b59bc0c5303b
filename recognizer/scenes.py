"""Cut-outs on white turned into scene-like pictures, for training heads that must work on real uploads.

The development photos are subjects cut out and pasted on plain white, while
people upload whole scenes. A head trained on white backgrounds learns "white
means X"; so each cut-out is lifted off its white (the white connected to the
border), pasted at a random size and place onto a synthetic background
(smooth multi-scale noise in natural or indoor colours, or a sky/ground
gradient), and cropped. Everything is drawn from a seeded generator, so the
same seed gives the same picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WHITE_TOLERANCE = 18  # JPEG noise around the pure white the cut-outs were composited on
PALETTES = (  # pairs of colours a background fades between: foliage, soil, sky, water, rock, indoor walls, floors
    ((34, 70, 28), (120, 150, 60)), ((90, 70, 45), (160, 130, 90)), ((110, 160, 220), (220, 235, 250)),
    ((20, 60, 90), (70, 130, 150)), ((90, 90, 90), (170, 165, 155)), ((200, 190, 170), (240, 230, 210)),
    ((60, 40, 30), (140, 100, 70)), ((30, 30, 35), (90, 90, 100)), ((170, 190, 120), (230, 220, 160)),
)


def foreground_mask(image: Image.Image) -> Image.Image:
    """'L' mask, 255 on the subject: everything except the near-white region connected to the border."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    white = (rgb.min(axis=-1) >= 255 - WHITE_TOLERANCE).astype(np.uint8) * 255
    # One white frame joins every border pixel; copy() because fromarray may share numpy's read-only buffer.
    padded = Image.fromarray(np.pad(white, 1, constant_values=255)).copy()
    ImageDraw.floodfill(padded, (0, 0), 128)
    background = np.asarray(padded)[1:-1, 1:-1] == 128
    mask = Image.fromarray(np.where(background, 0, 255).astype(np.uint8))
    return mask.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(1))


def _noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (h, w): coarse-to-fine random grids upsampled and summed."""
    width, height = size
    total = np.zeros((height, width), dtype=np.float32)
    for octave, cells in enumerate((2, 4, 8, 24, 64)):
        grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        total += np.asarray(grid.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255 / (octave + 1)
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A synthetic backdrop: textured noise between two palette colours, or a two-colour horizon gradient."""
    low, high = (np.array(c, dtype=np.float32) for c in PALETTES[rng.integers(len(PALETTES))])
    jitter = rng.normal(0, 12, 3).astype(np.float32)
    if rng.random() < 0.7:
        t = _noise(rng, size)[..., None]
    else:
        width, height = size
        horizon = rng.uniform(0.3, 0.7)
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] * np.ones((1, width, 1), np.float32)
        t = np.clip((t - horizon) * 4 + 0.5, 0, 1) * 0.8 + _noise(rng, size)[..., None] * 0.2
    pixels = low + (high - low) * t + jitter
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def in_scene(image: Image.Image, rng: np.random.Generator, *, out_size: int = 320) -> Image.Image:
    """The cut-out pasted onto a random backdrop at a random scale and place, then randomly cropped and flipped."""
    image = image.convert("RGB")
    mask = foreground_mask(image)
    aspect = rng.uniform(0.75, 1.33)
    canvas = (out_size, int(out_size / aspect))
    scale = rng.uniform(0.45, 0.95) * min(canvas[0] / image.width, canvas[1] / image.height)
    subject = (max(8, int(image.width * scale)), max(8, int(image.height * scale)))
    scene = background(rng, canvas)
    left = int(rng.integers(0, canvas[0] - subject[0] + 1))
    top = int(rng.integers(0, canvas[1] - subject[1] + 1))
    scene.paste(image.resize(subject, Image.Resampling.BICUBIC), (left, top), mask.resize(subject, Image.Resampling.BILINEAR))
    return _random_crop(scene, rng, keep=(left, top, left + subject[0], top + subject[1]))


def _random_crop(scene: Image.Image, rng: np.random.Generator, *, keep: tuple[int, int, int, int]) -> Image.Image:
    """Crop up to a fifth off each side, never more than a quarter into the subject's box; flip half the time."""
    left, top, right, bottom = keep
    box_w, box_h = right - left, bottom - top
    x0 = int(rng.uniform(0, min(scene.width * 0.2, left + box_w * 0.25) + 1))
    y0 = int(rng.uniform(0, min(scene.height * 0.2, top + box_h * 0.25) + 1))
    x1 = scene.width - int(rng.uniform(0, min(scene.width * 0.2, scene.width - right + box_w * 0.25) + 1))
    y1 = scene.height - int(rng.uniform(0, min(scene.height * 0.2, scene.height - bottom + box_h * 0.25) + 1))
    cropped = scene.crop((x0, y0, max(x1, x0 + 16), max(y1, y0 + 16)))
    return cropped.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else cropped
