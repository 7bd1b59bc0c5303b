"""The one way an image becomes a model batch, shared by training, evaluation and serving.

`open_image` checks what the bytes are (format, pixel count) from the header
alone; `to_batch` does everything else, exactly as the artifact's manifest
says. Nothing here may differ between training and serving, so nothing else
in the project resizes or normalizes pixels.
"""

from __future__ import annotations

import codecs
import io
import os
from dataclasses import asdict, dataclass
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from recognizer import errors
from recognizer.errors import gettext_noop

# A truncated upload is an error, never a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our own pixel check runs first and says more; Pillow's bomb guard stays as a backstop.
Image.MAX_IMAGE_PIXELS = 200_000_000

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
MIN_SIDE = 8

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
CROPS = ("center", "none", "pad")
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
NORMALIZATIONS = ("caffe", "tf", "torch", "lite", "none")

Source = Union[bytes, str, os.PathLike, BinaryIO]


@dataclass(frozen=True)
class InputSpec:
    """How a picture becomes a model input; saved in every manifest."""

    height: int
    width: int
    resize: str = "bilinear"
    crop: str = "center"
    crop_fraction: float = 0.875
    normalization: str = "caffe"

    def __post_init__(self):
        if self.resize not in RESAMPLING:
            raise ValueError(f"resize must be one of {sorted(RESAMPLING)}, not {self.resize!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, not {self.crop!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {self.normalization!r}")
        if not 0.1 <= self.crop_fraction <= 1.0:
            raise ValueError("crop_fraction must be between 0.1 and 1.0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        return cls(**data)


_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"<?xml", gettext_noop("XML or SVG")),
    (b"<svg", "SVG"),
    (b"<!doctype html", "HTML"),
    (b"<html", "HTML"),
    (b"PK\x03\x04", gettext_noop("ZIP archive")),
    (b"\x1f\x8b", gettext_noop("gzip archive")),
    (b"\x89HDF", gettext_noop("HDF5 file")),
)


def describe_bytes(head: bytes) -> str:
    """A short human name for what non-image bytes look like (PDF, HTML, text...)."""
    lowered = head.lstrip().lower()
    for magic, name in _SIGNATURES:
        if lowered.startswith(magic.lower()):
            return name
    try:
        # final=False: the head may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return gettext_noop("text")
    except UnicodeDecodeError:
        return gettext_noop("unknown binary data")


def _read_all(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return handle.read()
    return source.read()


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} KB"


def open_image(
    source: Source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    max_bytes: int | None = None,
) -> Image.Image:
    """Open an image lazily and check its size in bytes, format and pixels from the header; pixels stay undecoded."""
    data = _read_all(source)
    if not data:
        raise errors.EmptyImage(gettext_noop("The file is empty (0 bytes). Send a photo in JPEG, PNG, WebP, GIF or BMP."))
    if max_bytes is not None and len(data) > max_bytes:
        raise errors.FileTooLarge(
            gettext_noop("The file is %(size)s; the limit is %(limit)s. Send a smaller copy."),
            size=_size(len(data)), limit=_size(max_bytes),
        )
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # not an OSError: it would escape as a bare Pillow error
        raise errors.ImageTooLarge(
            gettext_noop(
                "The image has more than %(megapixels).0f megapixels; the limit is %(limit).0f megapixels. "
                "Send a smaller copy."
            ),
            megapixels=2 * Image.MAX_IMAGE_PIXELS / 1e6, limit=max_pixels / 1e6,
        ) from None
    except UnidentifiedImageError:
        kind = describe_bytes(data[:64])
        raise errors.UnsupportedImageFormat(
            gettext_noop("This file is not an image we can read (%(kind)s). Send a JPEG, PNG, WebP, GIF or BMP photo."),
            kind=kind,
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow reports broken headers several ways
        raise errors.UnreadableImage(gettext_noop("The image header is damaged (%(detail)s)."), detail=str(exc)) from None
    # Pillow names a JPEG that carries a second picture (phones' gain maps, previews) MPO.
    kind = "JPEG" if image.format == "MPO" else image.format
    if kind not in formats:
        raise errors.UnsupportedImageFormat(
            gettext_noop("%(format)s images are not accepted. Send one of: %(accepted)s."),
            format=image.format, accepted=", ".join(formats),
        )
    width, height = image.size
    if width * height > max_pixels:
        raise errors.ImageTooLarge(
            gettext_noop(
                "The image is %(width)dx%(height)d (%(megapixels).1f megapixels); "
                "the limit is %(limit).0f megapixels. Send a smaller copy."
            ),
            width=width, height=height, megapixels=width * height / 1e6, limit=max_pixels / 1e6,
        )
    if min(width, height) < MIN_SIDE:
        raise errors.ImageTooSmall(
            gettext_noop("The image is %(width)dx%(height)d pixels; each side must be at least %(minimum)d pixels."),
            width=width, height=height, minimum=MIN_SIDE,
        )
    return image


def _decode_rgb(image: Image.Image, spec: InputSpec) -> Image.Image:
    """Decode (JPEGs at reduced scale when that is enough), orient and convert to 8-bit RGB."""
    if image.format in ("JPEG", "MPO"):
        short = max(spec.height, spec.width)
        if spec.crop == "center":
            short = int(round(short / spec.crop_fraction))
        image.draft("RGB", (short, short))  # scales by 1/2, 1/4, 1/8 while both sides stay >= short
    try:
        image.seek(0)  # animated images: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise errors.UnreadableImage(gettext_noop("The image data is damaged or truncated (%(detail)s)."), detail=str(exc)) from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        peak = float(pixels.max()) if pixels.size else 0.0
        if mode.startswith("I;16"):
            pixels = pixels / 257.0  # the 16-bit range onto 8-bit, however dark the picture
        elif mode == "F" and peak <= 1.0:
            pixels = pixels * 255.0
        elif peak > 255.0:
            pixels = pixels / 257.0  # 16-bit range onto 8-bit
        gray = np.clip(pixels, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    # L, RGB and P carry transparency as a key colour or palette entry (PNG tRNS, GIF).
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _fit(image: Image.Image, spec: InputSpec) -> Image.Image:
    resample = RESAMPLING[spec.resize]
    target = (spec.width, spec.height)
    if spec.crop == "none":
        return image.resize(target, resample)
    if spec.crop == "pad":
        scale = min(spec.width / image.width, spec.height / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        canvas = Image.new("RGB", target, (255, 255, 255))
        canvas.paste(image.resize(size, resample), ((target[0] - size[0]) // 2, (target[1] - size[1]) // 2))
        return canvas
    scale = max(spec.width, spec.height) / spec.crop_fraction / min(image.width, image.height)
    size = (max(spec.width, round(image.width * scale)), max(spec.height, round(image.height * scale)))
    resized = image.resize(size, resample)
    left, top = (size[0] - spec.width) // 2, (size[1] - spec.height) // 2
    return resized.crop((left, top, left + spec.width, top + spec.height))


def to_pixels(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """PIL image -> (H, W, 3) uint8 array, decoded, oriented, converted and resized as the spec says."""
    return np.asarray(_fit(_decode_rgb(image, spec), spec), dtype=np.uint8)


def normalize(pixels: np.ndarray, mode: str) -> np.ndarray:
    """uint8 RGB pixels (..., 3) -> float32 model input in the backbone's convention."""
    x = pixels.astype(np.float32)
    if mode == "caffe":
        return x[..., ::-1] - CAFFE_MEAN_BGR
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - TORCH_MEAN) / TORCH_STD
    if mode == "lite":
        return (x - 127.0) / 128.0
    if mode == "none":
        return x
    raise ValueError(f"unknown normalization {mode!r}")


def to_batch(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """PIL image -> (1, H, W, 3) float32 batch, as the model's manifest says."""
    return normalize(to_pixels(image, spec), spec.normalization)[np.newaxis]


def load_batch(source: Source, spec: InputSpec, **limits) -> np.ndarray:
    """Bytes, path or file -> (1, H, W, 3) batch; the checks of open_image apply."""
    return to_batch(open_image(source, **limits), spec)
