"""The one preprocessing path: normalization, colour modes, EXIF, JPEG draft decoding, crops and bad inputs."""

from __future__ import annotations

import io
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer import errors
from recognizer.photos import PHOTOS_DIR
from recognizer.preprocessing import (
    RESAMPLING, InputSpec, decode, describe_bytes, load_batch, normalize, open_image, seen_share, to_batch, to_pixels,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FLAT = InputSpec(height=32, width=32, crop="none")  # no crop: every source pixel region stays visible
LEFT, RIGHT = (16, 4), (16, 27)  # (row, column) well inside each half of a 64x64 picture shrunk to 32x32
ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def halves(mode: str, left, right, size=(64, 64)) -> Image.Image:
    """A picture whose left half is one colour and right half another."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def pixels_of(data: bytes, spec: InputSpec = FLAT) -> np.ndarray:
    return to_pixels(open_image(data), spec)


def blank_png(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of any size, its zero rows compressed as a stream (never held in memory)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    rows_per_piece = max(1, (1 << 22) // len(row))
    compressor, idat = zlib.compressobj(9), []
    for start in range(0, height, rows_per_piece):
        idat.append(compressor.compress(row * min(rows_per_piece, height - start)))
    idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")


def peak_memory_growth(script: str) -> list[str]:
    """Run `script` in a fresh interpreter; `grown()` there gives how far its peak RSS rose since the last call.

    tracemalloc cannot answer this: Pillow allocates pixel buffers in C, where tracemalloc does not look. Nor can
    ru_maxrss: a child inherits the parent's (this test process's) high-water mark. /proc's VmHWM is per process.
    """
    prelude = (
        "def _status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key + ':'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "def _reset():\n"
        "    with open('/proc/self/clear_refs', 'w') as f:\n"
        "        f.write('5')\n"  # peak RSS := current RSS
        "    return _status('VmRSS')\n"
        "_base = [_reset()]\n"
        "def grown():\n"
        "    growth = _status('VmHWM') - _base[0]\n"
        "    _base[0] = _reset()\n"
        "    return growth\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture
def deadline():
    """Fail instead of hanging: every bad input must be refused within a few seconds."""

    def expire(signum, frame):
        raise TimeoutError("the input was not refused within 5 seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 5)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> Path:
    """A 12-megapixel (4000x3000) smooth JPEG; smooth so that it is small on disk."""
    across = np.linspace(0, 255, 4000, dtype=np.float32)
    down = np.linspace(0, 255, 3000, dtype=np.float32)[:, None]
    rgb = np.stack(np.broadcast_arrays(across[None, :], down, np.float32(90)), axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.fromarray(rgb).save(path, quality=85)
    return path


# --- normalization -------------------------------------------------------------------------------------------


def test_to_batch_equals_keras_resnet50_preprocess_input_on_a_real_photo(photos):
    from keras.applications.resnet50 import preprocess_input

    spec = InputSpec(height=224, width=224, normalization="caffe")
    path = photos / "bird" / "flamingo.jpg"
    pixels = to_pixels(open_image(path), spec)
    expected = preprocess_input(pixels.astype(np.float32)[np.newaxis].copy())
    batch = to_batch(open_image(path), spec)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, expected, atol=1e-4)


@pytest.mark.parametrize(
    "mode, keras_module",
    [("tf", "keras.applications.mobilenet_v2"), ("torch", "keras.applications.densenet")],
)
def test_other_normalizations_equal_their_keras_counterparts(mode, keras_module):
    import importlib

    pixels = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    expected = importlib.import_module(keras_module).preprocess_input(pixels.astype(np.float32).copy())
    np.testing.assert_allclose(normalize(pixels, mode), expected, atol=1e-4)


def test_lite_normalization_maps_127_to_zero_and_255_to_one():
    assert normalize(np.array([[127, 255, 0]], dtype=np.uint8), "lite").tolist() == [[0.0, 1.0, -127 / 128]]


# --- colour modes --------------------------------------------------------------------------------------------


def test_rgba_is_composited_on_white_so_a_fully_transparent_pixel_becomes_white():
    picture = halves("RGBA", (10, 20, 30, 0), (10, 20, 30, 255))
    out = pixels_of(encode(picture, "PNG"))
    assert out[LEFT].tolist() == [255, 255, 255]
    assert out[RIGHT].tolist() == [10, 20, 30]


def test_half_transparent_black_on_white_is_mid_grey():
    out = pixels_of(encode(Image.new("RGBA", (40, 40), (0, 0, 0, 128)), "PNG"))
    assert np.abs(out.astype(int) - 127).max() <= 1


@pytest.mark.parametrize(
    "picture, fmt, left, right",
    [
        (Image.new("L", (64, 64), 77), "PNG", (77, 77, 77), (77, 77, 77)),
        (halves("LA", (40, 0), (40, 255)), "PNG", (255, 255, 255), (40, 40, 40)),
        (halves("1", 0, 1), "PNG", (0, 0, 0), (255, 255, 255)),
    ],
    ids=["L", "LA", "1"],
)
def test_grey_modes_become_rgb(picture, fmt, left, right):
    out = pixels_of(encode(picture, fmt))
    assert out.shape == (32, 32, 3)
    assert (tuple(out[LEFT]), tuple(out[RIGHT])) == (left, right)


def test_a_palette_image_with_a_transparent_entry_shows_white_there():
    picture = halves("P", 0, 1)
    picture.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    data = encode(picture, "PNG", transparency=0)
    assert open_image(data).mode == "P"
    out = pixels_of(data)
    assert (tuple(out[LEFT]), tuple(out[RIGHT])) == ((255, 255, 255), (0, 128, 0))


@pytest.mark.parametrize("mode, key, colour", [("L", 0, 0), ("RGB", (0, 0, 0), (0, 0, 0))])
def test_a_transparent_key_colour_of_an_l_or_rgb_png_shows_white(mode, key, colour):
    out = pixels_of(encode(Image.new(mode, (40, 40), colour), "PNG", transparency=key))
    assert out[LEFT].tolist() == [255, 255, 255]


def test_a_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)
    assert open_image(data).mode == "CMYK"
    out = pixels_of(data)
    assert np.abs(out[LEFT].astype(int) - [255, 0, 0]).max() <= 3


def test_a_16_bit_png_is_scaled_onto_8_bits():
    grey = np.full((64, 64), 128 * 257, dtype=np.uint16)
    grey[:, 32:] = 65535
    data = encode(Image.fromarray(grey), "PNG")
    assert open_image(data).mode.startswith("I;16")
    out = pixels_of(data)
    assert (tuple(out[LEFT]), tuple(out[RIGHT])) == ((128, 128, 128), (255, 255, 255))


def test_a_dark_16_bit_png_stays_dark():
    # Values below 256 out of 65535 are near black, not mid grey: the scale comes from the mode, not the content.
    data = encode(Image.fromarray(np.full((40, 40), 200, dtype=np.uint16)), "PNG")
    assert pixels_of(data).max() <= 1


@pytest.mark.parametrize("value, expected", [(0.5, 127), (200.0, 200)])
def test_a_float_image_becomes_rgb(value, expected):
    picture = Image.fromarray(np.full((40, 40), value, dtype=np.float32))
    assert picture.mode == "F"
    out = to_pixels(picture, FLAT)
    assert out.dtype == np.uint8 and out[LEFT].tolist() == [expected] * 3


def test_an_animated_gif_is_read_from_its_first_frame():
    frames = [Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = pixels_of(data)
    assert out[LEFT].tolist() == [255, 0, 0] and out[RIGHT].tolist() == [255, 0, 0]


def test_a_jpeg_carrying_a_second_picture_is_read_as_a_jpeg():
    # Phones write such files (MPO to Pillow) for gain maps and previews; the first picture is the photo.
    main, extra = Image.new("RGB", (64, 48), (200, 0, 0)), Image.new("RGB", (32, 24), (0, 0, 200))
    data = encode(main, "MPO", save_all=True, append_images=[extra], quality=95)
    out = pixels_of(data)
    assert np.abs(out[LEFT].astype(int) - [200, 0, 0]).max() <= 3


# --- EXIF orientation ----------------------------------------------------------------------------------------


def exif_jpeg(picture: Image.Image, orientation: int | None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return encode(picture, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_6_turns_a_landscape_picture_upright():
    # Stored 80x40, left red and right blue; tag 6 says "turn 90 degrees clockwise to view": red on top.
    stored = halves("RGB", (255, 0, 0), (0, 0, 255), size=(80, 40))
    data = exif_jpeg(stored, 6)
    out = pixels_of(data, InputSpec(height=32, width=32, crop="pad"))
    assert out[:, 4].tolist() == [[255, 255, 255]] * 32  # the upright picture is portrait: white bars at the sides
    top, bottom = out[4, 16].astype(int), out[27, 16].astype(int)
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_a_real_photo_stored_rotated_with_its_tag_gives_the_upright_pixels(photos):
    path = photos / "bird" / "turkey.jpg"
    spec = InputSpec(height=96, width=96)
    upright = to_pixels(open_image(path), spec).astype(int)
    stored = Image.open(path).transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    tagged = to_pixels(open_image(exif_jpeg(stored, 6)), spec).astype(int)
    untagged = to_pixels(open_image(exif_jpeg(stored, None)), spec).astype(int)
    assert np.abs(tagged - upright).mean() < 3  # only JPEG re-encoding noise
    assert np.abs(untagged - upright).mean() > 20  # the check can tell a turned picture apart



def test_a_decoded_picture_with_nothing_to_turn_is_taken_back_as_it_is_not_copied():
    # The service decodes an upload once and fits that picture; orienting it again must not copy a whole frame.
    picture = decode(open_image(encode(Image.new("RGB", (300, 200), (0, 128, 0)), "JPEG")), InputSpec(96, 96))
    assert decode(picture, InputSpec(96, 96)) is picture

# --- JPEG draft decoding -------------------------------------------------------------------------------------


def test_a_12_megapixel_jpeg_gives_a_model_sized_batch(big_jpeg):
    spec = InputSpec(height=224, width=224, resize="bicubic", normalization="lite")
    assert load_batch(big_jpeg, spec).shape == (1, 224, 224, 3)


def test_a_12_megapixel_jpeg_is_decoded_at_reduced_scale(big_jpeg):
    full_frame = 4000 * 3000 * 3
    growth = peak_memory_growth(
        "from PIL import Image\n"
        "from recognizer.preprocessing import InputSpec, open_image, to_pixels\n"
        f"data = open({str(big_jpeg)!r}, 'rb').read()\n"
        "grown()\n"
        "print(to_pixels(open_image(data), InputSpec(224, 224)).shape[0], grown())\n"
        "image = open_image(data); image.load()\n"  # control: the same file decoded at full size
        "print(grown())\n"
    )
    side, reduced, full = (int(v) for v in growth)
    assert side == 224
    assert full > 0.8 * full_frame, "the control decode should need the whole frame"
    assert reduced < full_frame / 3


# --- crops ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", ["center", "none", "pad"])
@pytest.mark.parametrize("size", [(100, 100), (300, 60), (60, 300), (9, 300)])
def test_every_crop_gives_the_spec_size(crop, size):
    spec = InputSpec(height=24, width=40, crop=crop)
    out = to_pixels(Image.new("RGB", size, (0, 128, 0)), spec)
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8
    assert to_batch(Image.new("RGB", size), spec).shape == (1, 24, 40, 3)


def framed(size=64, border=2) -> Image.Image:
    picture = Image.new("RGB", (size, size), (0, 0, 255))
    picture.paste((255, 0, 0), (border, border, size - border, size - border))
    return picture


def test_center_crop_cuts_the_frame_off():
    out = to_pixels(framed(), InputSpec(height=32, width=32, crop="center", crop_fraction=0.875)).astype(int)
    assert out[..., 0].min() > 200 and out[..., 2].max() < 60


def resized_then_cut(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """The centre crop the long way: resize the whole picture, then cut the middle out."""
    scale = max(spec.width, spec.height) / spec.crop_fraction / min(image.size)
    size = (max(spec.width, round(image.width * scale)), max(spec.height, round(image.height * scale)))
    left, top = (size[0] - spec.width) // 2, (size[1] - spec.height) // 2
    whole = image.resize(size, RESAMPLING[spec.resize])
    return np.asarray(whole.crop((left, top, left + spec.width, top + spec.height)), dtype=np.uint8)


@pytest.mark.parametrize("spec", [
    InputSpec(height=224, width=224, resize="bicubic", normalization="lite"),  # the default model's
    InputSpec(height=224, width=224, resize="bilinear"),
    InputSpec(height=24, width=40, resize="bilinear", crop_fraction=0.6),
], ids=["224-bicubic", "224-bilinear", "24x40-bilinear"])
def test_center_crop_resampled_from_its_region_matches_resizing_the_whole_picture(spec):
    for path in sorted(PHOTOS_DIR.glob("*/*/*.jpg")):
        decoded = decode(open_image(path), spec)
        fast = to_pixels(open_image(path), spec).astype(int)
        diff = np.abs(fast - resized_then_cut(decoded, spec).astype(int))
        assert diff.mean() < 0.3 and np.percentile(diff, 99) <= 1, (path.name, diff.mean(), np.percentile(diff, 99))


def test_no_crop_keeps_the_frame():
    out = to_pixels(framed(), InputSpec(height=32, width=32, crop="none")).astype(int)
    assert out[0, 0, 2] > 150 and out[16, 16, 0] > 200


def test_pad_keeps_the_whole_picture_on_white():
    out = to_pixels(Image.new("RGB", (60, 120), (255, 0, 0)), InputSpec(height=32, width=32, crop="pad"))
    assert out[:, :7].reshape(-1, 3).tolist() == [[255, 255, 255]] * (32 * 7)
    assert out[:, 10:22].reshape(-1, 3).tolist() == [[255, 0, 0]] * (32 * 12)


# --- bad inputs ----------------------------------------------------------------------------------------------


def test_zero_bytes_are_an_empty_image(deadline):
    with pytest.raises(errors.EmptyImage, match="empty"):
        open_image(b"")


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", "PDF"),
        (b"<!DOCTYPE html>\n<html><body>not a photo</body></html>", "HTML"),
        (b"<html><head></head></html>", "HTML"),
        (b"name,species\nfelix,cat\n", "text"),
        (("a" + "\u00e9" * 40).encode(), "text"),  # the 64-byte head ends inside a two-byte character
        (b"\x00\x17\xfe\xfd" * 40, "unknown binary data"),
    ],
    ids=["pdf", "html-doctype", "html", "csv-text", "utf8-text", "binary"],
)
def test_non_image_bytes_are_refused_naming_what_they_look_like(deadline, data, kind):
    with pytest.raises(errors.UnsupportedImageFormat, match=f"\\({kind}\\)"):
        open_image(data)


def test_describe_bytes_names_svg():
    assert describe_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"/>') == "SVG"


def test_a_truncated_jpeg_is_unreadable(deadline, jpeg_bytes):
    image = open_image(jpeg_bytes[: len(jpeg_bytes) // 2])  # the header is intact: it opens
    with pytest.raises(errors.UnreadableImage) as refused:
        to_pixels(image, FLAT)
    # said whole and translatable, without Pillow's English ("image file is truncated (112 bytes not processed)")
    assert str(refused.value) == "The image data is truncated: the file ends before the picture does. Send the whole file."


def test_a_tiff_is_refused_because_it_is_not_an_accepted_format(deadline):
    with pytest.raises(errors.UnsupportedImageFormat, match="TIFF images are not accepted. Send one of: JPEG"):
        open_image(encode(Image.new("RGB", (40, 40)), "TIFF"))


def test_refusals_name_formats_as_people_write_them(deadline):
    with pytest.raises(errors.UnsupportedImageFormat) as refused:
        open_image(encode(Image.new("RGB", (40, 40)), "WEBP"), formats=("JPEG", "PNG"))
    assert str(refused.value) == "WebP images are not accepted. Send one of: JPEG, PNG."
    with pytest.raises(errors.UnsupportedImageFormat) as refused:
        open_image(encode(Image.new("RGB", (40, 40)), "TIFF"))
    assert str(refused.value) == "TIFF images are not accepted. Send one of: JPEG, PNG, WebP, GIF, BMP."


@pytest.mark.parametrize("size", [(1, 1), (1, 50000), (50000, 1), (7, 100)])
def test_pictures_with_a_side_under_8_pixels_are_too_small(deadline, size):
    data = blank_png(*size)
    with pytest.raises(errors.ImageTooSmall, match=f"{size[0]}x{size[1]} pixels, too small to judge: each side must be at least 8 pixels"):
        open_image(data)


def test_an_image_over_the_pixel_limit_is_refused_with_its_size(deadline):
    with pytest.raises(errors.ImageTooLarge, match=r"10000x5000 \(50.0 megapixels\); the limit is 16 megapixels for PNG"):
        open_image(blank_png(10000, 5000))
    with pytest.raises(errors.ImageTooLarge, match="the limit is 1 megapixels"):
        open_image(blank_png(1200, 1000), max_pixels=1_000_000)


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(blank_png(30000, 30000))
    return path


def test_a_30000x30000_png_of_a_few_kilobytes_is_refused_from_its_header(deadline, bomb_png):
    assert bomb_png.stat().st_size < 200_000  # 900 megapixels once decoded
    with pytest.raises(errors.ImageTooLarge, match="megapixels; the limit is 40 megapixels for JPEG and 16 for other formats"):
        open_image(bomb_png)  # a PNG: the 16 MP limit applies, and the message must not name only the JPEG one


def test_refusing_the_30000x30000_png_needs_no_pixel_memory(bomb_png):
    out = peak_memory_growth(
        "from recognizer.preprocessing import open_image\n"
        "from recognizer.errors import ImageTooLarge\n"
        f"data = open({str(bomb_png)!r}, 'rb').read()\n"
        "grown()\n"
        "try:\n"
        "    open_image(data)\n"
        "except ImageTooLarge:\n"
        "    print('refused', grown())\n"
    )
    assert out[0] == "refused"
    assert int(out[1]) < 20_000_000  # decoding would need 900 MB


def test_the_share_of_a_photo_shown_to_the_model_is_its_centre_crop_and_all_of_it_otherwise():
    spec = InputSpec(height=224, width=224, crop="center", crop_fraction=0.875)
    assert seen_share((1000, 1000), spec) == pytest.approx(0.875 ** 2, abs=1e-3)
    assert seen_share((3000, 1000), spec) == pytest.approx(0.875 ** 2 / 3, abs=1e-3)
    assert seen_share((1000, 3000), spec) == pytest.approx(0.875 ** 2 / 3, abs=1e-3)
    assert seen_share((8000, 400), InputSpec(height=224, width=224, crop="none")) == 1.0
    assert seen_share((8000, 400), InputSpec(height=224, width=224, crop="pad")) == 1.0


def test_what_the_share_counts_is_what_the_model_is_shown():
    # A 300x100 picture, black but for a white band at each end: the 0.875 centre crop (a 87.5-pixel square in the
    # middle, 29% of the area) shows only black; the same picture stretched whole ('none') shows the bands.
    picture = Image.new("RGB", (300, 100))
    picture.paste((255, 255, 255), (0, 0, 100, 100))
    picture.paste((255, 255, 255), (200, 0, 300, 100))
    centre = InputSpec(height=32, width=32, crop="center", crop_fraction=0.875)
    assert seen_share(picture.size, centre) == pytest.approx(87.5 * 87.5 / 30000, rel=0.02)
    assert to_pixels(picture, centre).max() == 0
    assert to_pixels(picture, FLAT).max() == 255


def test_a_picture_the_model_would_enlarge_more_than_eight_times_is_refused_as_too_small_to_judge():
    # A 10x10 picture was answered "Domain: other (77% sure)": a 224-pixel model needs 32 pixels a side.
    spec = InputSpec(height=224, width=224, crop="center", crop_fraction=0.875)
    with pytest.raises(errors.ImageTooSmall) as refused:
        to_pixels(open_image(encode(Image.new("RGB", (10, 10)), "PNG")), spec)
    assert str(refused.value) == "The image is 10x10 pixels, too small to judge: each side must be at least 32 pixels."
    with pytest.raises(errors.ImageTooSmall, match="400x31 pixels"):
        to_pixels(open_image(encode(Image.new("RGB", (400, 31)), "PNG")), spec)
    assert to_pixels(open_image(encode(Image.new("RGB", (32, 32)), "PNG")), spec).shape == (224, 224, 3)
    assert to_pixels(open_image(encode(Image.new("RGB", (10, 10)), "PNG")), FLAT).shape == (32, 32, 3)  # a 32-pixel model


def test_a_picture_too_small_for_the_model_gets_one_minimum_whichever_check_meets_it_first():
    # A 7x7 picture was told "at least 8", and an 8x300 one then "at least 32": the model's minimum, whenever it is known.
    from recognizer.preprocessing import header_cost

    spec = InputSpec(height=224, width=224, crop="center", crop_fraction=0.875)
    for size in ((7, 7), (8, 300), (31, 31)):
        data = encode(Image.new("RGB", size), "PNG")
        expected = f"The image is {size[0]}x{size[1]} pixels, too small to judge: each side must be at least 32 pixels."
        for check in (lambda: header_cost(data, spec), lambda: load_batch(data, spec)):
            with pytest.raises(errors.ImageTooSmall) as refused:
                check()
            assert str(refused.value) == expected
    with pytest.raises(errors.ImageTooSmall, match="at least 8 pixels"):  # opened for no model in particular
        open_image(encode(Image.new("RGB", (7, 7)), "PNG"))


def test_a_jpeg_cut_inside_its_header_is_said_to_be_truncated_in_our_words(jpeg_bytes):
    with pytest.raises(errors.UnreadableImage) as refused:
        to_pixels(open_image(jpeg_bytes[:300]), FLAT)
    assert str(refused.value) == "The image data is truncated: the file ends before the picture does. Send the whole file."


def test_a_file_just_over_the_size_limit_reads_larger_than_the_limit():
    from recognizer.preprocessing import size_texts

    assert size_texts(30_700_000, 10_000_000) == ("30.7 MB", "10 MB")
    assert size_texts(10_020_000, 10_000_000) == ("10.02 MB", "10 MB")
    assert size_texts(10_000_400, 10_000_000) == ("10000400 bytes", "10000000 bytes")
    with pytest.raises(errors.FileTooLarge) as refused:
        open_image(b"x" * 10_020_000, max_bytes=10_000_000)
    assert str(refused.value) == "The file is 10.02 MB; the limit is 10 MB. Send a smaller copy."
