"""The one way an image becomes a model batch, shared by training, evaluation and serving.

`open_image` checks what the bytes are (format, pixel count) from the header
alone, and `header_cost` what decoding them will take at its peak; `to_batch`
does everything else, exactly as the artifact's manifest says, decoding at a
reduced size (JPEG draft, or a reduction right after decoding) so that a small
file never costs a full-size composite. Nothing here may differ between training and serving, so nothing else
in the project resizes or normalizes pixels.
"""

from __future__ import annotations

import codecs
import io
import math
import os
from dataclasses import asdict, dataclass
from typing import BinaryIO, Union

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from recognizer import errors
from recognizer.errors import gettext_noop

# A truncated upload is an error, never a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our own pixel check runs first and says more; Pillow's bomb guard stays as a backstop.
Image.MAX_IMAGE_PIXELS = 200_000_000

DEFAULT_MAX_PIXELS = 40_000_000
# Only JPEG can be decoded at a reduced scale; every other format is decoded whole, so it gets a lower limit.
DEFAULT_MAX_FULL_DECODE_PIXELS = 16_000_000
DRAFTABLE = ("JPEG", "MPO")
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
MIN_SIDE = 8
# A picture enlarged more than this many times to the model's input shows it blur, and its answer means nothing: such
# a picture is refused (a 224-pixel model with its 0.875 crop needs 32 pixels a side; any model at least MIN_SIDE).
MAX_ENLARGEMENT = 8
# Pillow keeps L in 1 byte a pixel, I;16 in 2, every other mode (RGB included) in 4; palette and 1-bit images are
# expanded before they are reduced, so they cost their expansion too.
_BYTES_PER_PIXEL = {"L": 1, "1": 2, "P": 5, "PA": 6, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Peak memory of decoding, in decoded frames, measured with /proc's VmHWM on 16 MP RGBA files: libwebp decodes into
# a canvas it allocates when the file is opened and Pillow copies its result twice (5); PNG, GIF, BMP and drafted
# JPEG stay within two frames.
_PEAK_FRAMES = {"WEBP": 5}
_DEFAULT_PEAK_FRAMES = 2

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


def format_name(kind: str) -> str:
    """A Pillow format as people write it: 'WEBP' -> 'WebP'; the others are written as Pillow names them."""
    return {"WEBP": "WebP"}.get(kind, kind)


def accept_types(formats: tuple[str, ...]) -> str:
    """The media types of `formats` for a file input's `accept`: 'image/jpeg,image/png,...'."""
    Image.init()
    return ",".join(dict.fromkeys(Image.MIME.get(kind, f"image/{kind.lower()}") for kind in formats))


def size_text(count: int, digits: int = 1) -> str:
    """A size in bytes as people read it, in decimal units: '10 MB', '10.5 MB', '812.3 KB'."""
    value, unit = (count / 1e6, "MB") if count >= 1e6 else (count / 1e3, "KB")
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") + f" {unit}"


def size_texts(size: int, limit: int) -> tuple[str, str]:
    """A size and its limit with as many decimals as it takes to read differently: a file just over a 10 MB limit is
    '10.02 MB', not '10 MB'; in bytes when even three decimals read the same."""
    for digits in (1, 2, 3):
        texts = size_text(size, digits), size_text(limit, digits)
        if texts[0] != texts[1]:
            return texts
    return f"{size} bytes", f"{limit} bytes"


def _check_bytes(data: bytes, max_bytes: int | None) -> None:
    if max_bytes is not None and len(data) > max_bytes:
        size, limit = size_texts(len(data), max_bytes)
        raise errors.FileTooLarge(
            gettext_noop("The file is %(size)s; the limit is %(limit)s. Send a smaller copy."), size=size, limit=limit,
        )


def webp_size(head: bytes) -> tuple[int, int] | None:
    """The canvas size written in a WebP header, or None; read before Pillow opens it, which allocates the canvas."""
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    return None


def _check_pixels(kind: str, size: tuple[int, int], max_pixels: int, max_full_decode_pixels: int, min_side: int) -> None:
    width, height = size
    limit = max_pixels if kind in DRAFTABLE else min(max_pixels, max_full_decode_pixels)
    if width * height > limit:
        numbers = {"width": width, "height": height, "megapixels": width * height / 1e6, "limit": limit / 1e6}
        if limit == max_pixels:
            raise errors.ImageTooLarge(gettext_noop(
                "The image is %(width)dx%(height)d (%(megapixels).1f megapixels); "
                "the limit is %(limit).0f megapixels. Send a smaller copy."
            ), **numbers)
        raise errors.ImageTooLarge(gettext_noop(
            "The image is %(width)dx%(height)d (%(megapixels).1f megapixels); the limit is %(limit).0f megapixels "
            "for %(format)s images, which are decoded at full size (JPEG: %(jpeg_limit).0f). Send a smaller copy."
        ), format=kind, jpeg_limit=max_pixels / 1e6, **numbers)
    _check_not_too_small(size, min_side)


def least_side(spec: InputSpec) -> int:
    """The shortest side a picture may have for this model: enlarged more than MAX_ENLARGEMENT times, it is blur."""
    return max(MIN_SIDE, math.ceil(needed_side(spec) / MAX_ENLARGEMENT))


def _check_not_too_small(size: tuple[int, int], min_side: int) -> None:
    if min(size) < min_side:
        raise errors.ImageTooSmall(
            gettext_noop("The image is %(width)dx%(height)d pixels, too small to judge: each side must be at least "
                         "%(minimum)d pixels."),
            width=size[0], height=size[1], minimum=min_side,
        )


def _unreadable(exc: Exception, template: str) -> errors.UnreadableImage:
    """A broken file's error: a file cut short (the common case: an upload or copy interrupted) in words of ours, any
    other damage with the library's own words as the detail."""
    if "truncated" in str(exc).lower():
        return errors.UnreadableImage(gettext_noop(
            "The image data is truncated: the file ends before the picture does. Send the whole file."
        ))
    return errors.UnreadableImage(template, detail=str(exc))


def _check_before_opening(
    data: bytes, max_pixels: int, max_full_decode_pixels: int, formats: tuple[str, ...], min_side: int
) -> None:
    if not data:
        raise errors.EmptyImage(gettext_noop("The file is empty (0 bytes). Send a photo in JPEG, PNG, WebP, GIF or BMP."))
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return
    # Checked before Pillow opens it: opening a WebP allocates its whole canvas.
    if "WEBP" not in formats:
        raise errors.UnsupportedImageFormat(
            gettext_noop("%(format)s images are not accepted. Send one of: %(accepted)s."),
            format="WebP", accepted=", ".join(map(format_name, formats)),
        )
    size = webp_size(data[:32])
    if size is None:
        raise errors.UnreadableImage(gettext_noop("The WebP header is damaged: it gives no picture size."))
    _check_pixels("WEBP", size, max_pixels, max_full_decode_pixels, min_side)


def open_image(
    source: Source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_full_decode_pixels: int = DEFAULT_MAX_FULL_DECODE_PIXELS,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    max_bytes: int | None = None,
    min_side: int = MIN_SIDE,
) -> Image.Image:
    """Open an image lazily and check its size in bytes, format and pixels from the header; pixels stay undecoded.

    `min_side`: the shortest side accepted; least_side(spec) for the model that will see it.
    """
    data = _read_all(source)
    _check_bytes(data, max_bytes)
    _check_before_opening(data, max_pixels, max_full_decode_pixels, formats, min_side)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # not an OSError: it would escape as a bare Pillow error
        raise errors.ImageTooLarge(
            gettext_noop(
                "The image has more than %(megapixels).0f megapixels; the limit is %(limit).0f megapixels for JPEG "
                "and %(full_limit).0f for other formats. Send a smaller copy."
            ),
            megapixels=2 * Image.MAX_IMAGE_PIXELS / 1e6, limit=max_pixels / 1e6,
            full_limit=min(max_pixels, max_full_decode_pixels) / 1e6,
        ) from None
    except UnidentifiedImageError:
        kind = describe_bytes(data[:64])
        raise errors.UnsupportedImageFormat(
            gettext_noop("This file is not an image we can read (%(kind)s). Send a JPEG, PNG, WebP, GIF or BMP photo."),
            kind=kind,
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow reports broken headers several ways
        raise _unreadable(exc, gettext_noop("The image header is damaged (%(detail)s).")) from None
    # Pillow names a JPEG that carries a second picture (phones' gain maps, previews) MPO.
    kind = "JPEG" if image.format == "MPO" else image.format
    if kind not in formats:
        raise errors.UnsupportedImageFormat(
            gettext_noop("%(format)s images are not accepted. Send one of: %(accepted)s."),
            format=format_name(image.format), accepted=", ".join(map(format_name, formats)),
        )
    _check_pixels(kind, image.size, max_pixels, max_full_decode_pixels, min_side)
    return image


def needed_side(spec: InputSpec) -> int:
    """The shortest side a decoded picture needs so that fitting it to the spec never enlarges it."""
    side = max(spec.height, spec.width)
    return int(round(side / spec.crop_fraction)) if spec.crop == "center" else side


def seen_share(size: tuple[int, int], spec: InputSpec) -> float:
    """The share of a picture's area the model is shown: a centre crop keeps the middle of a wide or tall picture (a
    box of crop_fraction of its shorter side, in the model's aspect); 'none' stretches and 'pad' pads, keeping all."""
    if spec.crop != "center":
        return 1.0
    left, top, right, bottom = crop_box(size, spec)
    return (right - left) * (bottom - top) / (size[0] * size[1])


def header_cost(
    source: Source,
    spec: InputSpec,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_full_decode_pixels: int = DEFAULT_MAX_FULL_DECODE_PIXELS,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    max_bytes: int | None = None,
) -> int:
    """The checks of open_image, then the bytes decoding will take at its peak; nothing is decoded.

    A WebP is not even opened (that allocates its canvas): its header gives the size, costed as RGBA.
    """
    data, least = _read_all(source), least_side(spec)
    _check_bytes(data, max_bytes)
    _check_before_opening(data, max_pixels, max_full_decode_pixels, formats, least)
    size = webp_size(data[:32])
    if size is not None:
        return size[0] * size[1] * 4 * _PEAK_FRAMES["WEBP"]
    limits = {"max_pixels": max_pixels, "max_full_decode_pixels": max_full_decode_pixels, "formats": formats, "min_side": least}
    with open_image(data, **limits) as image:
        return decode_cost(image, spec)


def decode_cost(image: Image.Image, spec: InputSpec) -> int:
    """Bytes that decoding this opened image takes at its peak, from the header alone (JPEGs at their draft scale)."""
    if image.format in DRAFTABLE:
        side = needed_side(spec)
        image.draft("RGB", (side, side))  # the very draft decode asks for; Pillow applies it once
    frames = _PEAK_FRAMES.get(image.format, _DEFAULT_PEAK_FRAMES)
    return image.width * image.height * _BYTES_PER_PIXEL.get(image.mode, 4) * frames


def decode(image: Image.Image, spec: InputSpec) -> Image.Image:
    """Decode at reduced size (JPEG: draft; others: reduce right after decoding), orient, convert to 8-bit RGB.

    The result is what to_pixels fits to the spec, and to_pixels takes it back unchanged.
    """
    _check_not_too_small(image.size, least_side(spec))  # for callers that opened it without the model's minimum
    side = needed_side(spec)
    if image.format in DRAFTABLE:
        image.draft("RGB", (side, side))  # scales by 1/2, 1/4, 1/8 while both sides stay >= side
    try:
        image.seek(0)  # animated images: the first frame
        image.load()
        image = _upright(_reduce(image, side))
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _unreadable(exc, gettext_noop("The image data is damaged or truncated (%(detail)s).")) from None
    return _to_rgb(image)


def _upright(image: Image.Image) -> Image.Image:
    """The picture turned as its EXIF orientation tag says; itself, not a copy, when there is nothing to turn."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _reduce(image: Image.Image, side: int) -> Image.Image:
    """Shrink by a whole factor while the short side stays >= side, before any compositing or mode conversion.

    Compositing alpha or converting modes at full size is what made small files cost gigabytes.
    """
    factor = min(image.size) // side
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        # Pillow cannot average 16-bit words; picking pixels keeps the mode, whose range _to_rgb relies on.
        reduced = image.resize((image.width // factor, image.height // factor), Image.Resampling.NEAREST)
    elif image.mode in ("P", "PA", "1"):
        # Averaging palette indexes would invent colours: expand them first (accounted for in decode_cost).
        expanded = "L" if image.mode == "1" else "RGBA" if _has_alpha(image) else "RGB"
        reduced = image.convert(expanded).reduce(factor)
    else:
        reduced = image.reduce(factor)
    reduced.info = dict(image.info)  # transparency key, EXIF orientation
    return reduced


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
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _has_alpha(image: Image.Image) -> bool:
    # L, RGB and P carry transparency as a key colour or palette entry (PNG tRNS, GIF).
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


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
    # Only the crop's pixels are resampled, from the source region they come from (half the work of resizing the
    # whole picture and cutting it; the same pixels within one level for 99% of them, tested).
    return image.resize(target, resample, box=crop_box(image.size, spec))


def crop_box(size: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """The region of a picture of `size` a centre crop shows the model, in the picture's pixels: the crop of the
    picture resized so that its short side is side / crop_fraction, computed directly."""
    width, height = size
    scale = max(spec.width, spec.height) / spec.crop_fraction / min(width, height)
    scaled = (max(spec.width, round(width * scale)), max(spec.height, round(height * scale)))
    left, top = (scaled[0] - spec.width) // 2, (scaled[1] - spec.height) // 2
    x_step, y_step = width / scaled[0], height / scaled[1]
    return left * x_step, top * y_step, (left + spec.width) * x_step, (top + spec.height) * y_step


def to_pixels(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """PIL image -> (H, W, 3) uint8 array, decoded, oriented, converted and resized as the spec says."""
    return np.asarray(_fit(decode(image, spec), spec), dtype=np.uint8)


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
    return to_batch(open_image(source, **{"min_side": least_side(spec), **limits}), spec)
