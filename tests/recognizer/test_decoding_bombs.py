"""Small files that decode huge: refused from their headers, or decoded within the cost estimated from them.

Memory is measured in a fresh interpreter from /proc (VmHWM), since Pillow allocates pixels in C.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from recognizer import errors
from recognizer.preprocessing import InputSpec, header_cost, open_image, to_batch, webp_size
from tests.recognizer.test_preprocessing import peak_memory_growth

SPEC = InputSpec(height=224, width=224, normalization="torch")
MB = 2**20


def rgba_bomb(fmt: str, size: tuple[int, int], **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (10, 200, 30, 128)).save(out, fmt, **options)
    return out.getvalue()


def palette_bomb(fmt: str, size: tuple[int, int]) -> bytes:
    image = Image.new("P", size, 0)
    image.putpalette([0, 0, 0, 255, 255, 255] * 128)
    out = io.BytesIO()
    image.save(out, fmt, transparency=0)
    return out.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("bombs")
    files = {
        "webp-40mp": rgba_bomb("WEBP", (6400, 6250), lossless=True, quality=0, method=0),
        "webp-16mp": rgba_bomb("WEBP", (4000, 4000), lossless=True, quality=0, method=0),
        "png-16mp": rgba_bomb("PNG", (4000, 4000), compress_level=9),
        "gif-16mp": palette_bomb("GIF", (4000, 4000)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def test_the_webp_size_is_read_from_the_header_of_lossless_lossy_and_extended_files():
    for options in ({"lossless": True}, {"quality": 50}, {"lossless": True, "exif": b"Exif\x00\x00II*\x00"}):
        assert webp_size(rgba_bomb("WEBP", (300, 200), **options)[:32]) == (300, 200)
    assert webp_size(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


def test_a_40_mp_webp_of_a_few_bytes_is_refused_before_pillow_allocates_its_canvas(bombs):
    assert bombs["webp-40mp"].stat().st_size < 2_000
    with pytest.raises(errors.ImageTooLarge, match="6400x6250.*16 megapixels for WEBP"):
        open_image(bombs["webp-40mp"])
    out = peak_memory_growth(
        "from recognizer.preprocessing import open_image\n"
        f"data = open({str(bombs['webp-40mp'])!r}, 'rb').read()\n"
        "grown()\n"
        "try:\n"
        "    open_image(data)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, grown())\n"
    )
    assert out[0] == "ImageTooLarge"
    assert int(out[1]) < 16 * MB  # Pillow's own open allocates 160 MB for this canvas


def test_a_webp_is_refused_before_opening_when_webp_is_not_accepted(bombs):
    with pytest.raises(errors.UnsupportedImageFormat, match="WebP images are not accepted"):
        open_image(bombs["webp-16mp"], formats=("JPEG", "PNG"))


@pytest.mark.parametrize("name", ["webp-16mp", "png-16mp", "gif-16mp"])
def test_a_16_mp_transparent_image_decodes_within_the_cost_its_header_announces(bombs, name):
    cost = header_cost(bombs[name], SPEC)
    out = peak_memory_growth(
        "from recognizer.preprocessing import InputSpec, open_image, to_batch\n"
        f"data = open({str(bombs[name])!r}, 'rb').read()\n"
        "spec = InputSpec(height=224, width=224, normalization='torch')\n"
        "grown()\n"
        "batch = to_batch(open_image(data), spec)\n"
        "print(batch.shape, grown())\n"
    )
    peak = int(out[-1])
    assert peak <= cost + 8 * MB, f"{name}: {peak / MB:.0f} MB at peak, {cost / MB:.0f} MB announced"
    # Compositing alpha at full size, as decoding did before, took at least five RGBA frames.
    assert peak < 5 * 4 * 16_000_000


def test_a_reduced_transparent_png_still_shows_white_where_it_is_transparent():
    image = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 1000, 1000))
    data = io.BytesIO()
    image.save(data, "PNG")
    pixels = to_batch(open_image(data.getvalue()), InputSpec(height=32, width=64, crop="none", normalization="none"))[0]
    assert pixels[16, 8].tolist() == pytest.approx([200, 0, 0], abs=1)
    assert pixels[16, 56].tolist() == pytest.approx([255, 255, 255], abs=1)


def test_a_40_mp_jpeg_costs_a_few_megabytes_because_it_is_drafted():
    out = io.BytesIO()
    Image.new("RGB", (8000, 5000), (90, 120, 30)).save(out, "JPEG", quality=50)
    assert header_cost(out.getvalue(), SPEC) < 8 * MB


def test_a_webp_whose_header_gives_no_size_is_refused_before_pillow_opens_it(bombs):
    data = bytearray(bombs["webp-16mp"].read_bytes())
    data[12:16] = b"VP8?"  # a chunk we cannot read the size of
    with pytest.raises(errors.UnreadableImage, match="WebP header is damaged"):
        open_image(bytes(data))
