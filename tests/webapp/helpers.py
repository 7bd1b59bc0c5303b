"""Helpers of the web service tests: images made on the fly, uploads, and the one error shape."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from recognizer.manifest import file_sha256, write_manifest
from tests.conftest import tiny_manifest

PREDICT = "/api/v1/predict"
BATCH = "/api/v1/predict/batch"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(photos: Path, name: str, size: int | None = None) -> Image.Image:
    """A real photo of the dev set as RGB, optionally shrunk so its longest side is `size`."""
    image = Image.open(photos / name).convert("RGB")
    if size:
        image.thumbnail((size, size))
    return image


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type)


def predict(client, data: bytes, name: str = "photo.jpg", **fields):
    """POST one image to /api/v1/predict as multipart."""
    return client.post(PREDICT, {"image": upload(data, name), **fields})


def assert_error(reply, status: int, code: str | None = None) -> dict:
    """The reply has `status` and the body {"error": {"code", "message", "request_id"}}; returns the inner error."""
    assert reply.status_code == status, (reply.status_code, reply.content[:500])
    assert reply["Content-Type"].startswith("application/json"), reply["Content-Type"]
    body = reply.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "request_id"}, error
    assert error["request_id"] == reply["X-Request-ID"], (error, reply["X-Request-ID"])
    assert error["message"] and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, error
    return error


def probabilities(body: dict) -> dict[str, float]:
    return {p["label"]: p["probability"] for p in body["predictions"]}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height (1-bit grey) with a few KB of pixel data: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = (b"\x00" + b"\x00" * ((width + 7) // 8)) * 8
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b"")


def png_with_text(data: bytes, key: bytes, text: bytes) -> bytes:
    """The PNG `data` with a tEXt chunk inserted right after IHDR."""
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return data[:ihdr_end] + _chunk(b"tEXt", key + b"\x00" + text) + data[ihdr_end:]


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """The JPEG `data` with its frame header (SOF0/SOF2) rewritten to claim width x height."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at != -1:
            return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    raise ValueError("no SOF marker")


def corrupt_idat(data: bytes) -> bytes:
    """Flip bytes inside the first IDAT chunk's compressed data, keeping the header chunks intact."""
    at = data.find(b"IDAT") + 4
    middle = at + 20
    damaged = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    return data[:middle] + damaged + data[middle + 16 :]


def files_under(*roots: Path) -> set[str]:
    """Every file below the given folders (missing folders count as empty)."""
    found = set()
    for root in roots:
        root = Path(root)
        if root.is_dir():
            found |= {str(p) for p in root.rglob("*") if p.is_file()}
    return found


# ---- broken model artifacts ----------------------------------------------------------------

def lambda_artifact(folder: Path) -> Path:
    """An H5 whose graph holds a Lambda layer (code that would run on load), with a matching manifest."""
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Lambda(lambda t: t / 128.0, name="sneaky")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    path = folder / "lambda.h5"
    keras.Model(inputs, outputs).save(path)
    write_manifest(tiny_manifest().with_updates(sha256=file_sha256(path)), path.with_suffix(".json"))
    return path


def truncated_artifact(folder: Path, source: Path) -> Path:
    """The first half of a real H5, with a manifest whose sha256 matches the truncated bytes."""
    path = folder / "truncated.h5"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    write_manifest(tiny_manifest().with_updates(sha256=file_sha256(path)), path.with_suffix(".json"))
    return path


def mismatched_artifact(folder: Path, h5: Path, manifest_of: Path) -> Path:
    """A real H5 next to the manifest of another H5."""
    path = folder / "mismatch.h5"
    path.write_bytes(h5.read_bytes())
    path.with_suffix(".json").write_bytes(manifest_of.with_suffix(".json").read_bytes())
    return path
