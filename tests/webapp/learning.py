"""Shared by the learning-loop tests: photos made on the fly, kept photos switched on, feedback sent."""

from __future__ import annotations

import pytest
from PIL import ExifTags, Image

from tests.synthetic import picture
from tests.webapp.helpers import encode, predict


def feedback_url(prediction_id) -> str:
    return f"/api/v1/predictions/{prediction_id}/feedback"


def send(client, prediction_id, **body):
    return client.post(feedback_url(prediction_id), {"correct": False, "label": "red fox", **body}, content_type="application/json")


def gps_jpeg() -> bytes:
    """A real JPEG carrying a camera make, a GPS position, an orientation tag and a comment."""
    image = Image.new("RGB", (80, 40), (200, 30, 30))
    image.paste((20, 20, 220), (0, 0, 40, 40))  # left half blue: shows which way the photo was turned
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "FieldCam"
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90 degrees clockwise to view"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.5),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (0.0, 7.0, 39.0),
    }
    return encode(image, "JPEG", exif=exif, comment=b"seen at the north pond", quality=95)


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(picture("red-stripes", seed=1), "JPEG", quality=90)


@pytest.fixture
def other_jpeg() -> bytes:
    return encode(picture("blue-circle", seed=2), "JPEG", quality=90)


@pytest.fixture
def keeping(settings, media_root, active_tiny):
    settings.FEEDBACK_ENABLED = True
    settings.FEEDBACK_RETENTION_DAYS = 7
    return media_root


@pytest.fixture
def predicted(client, keeping, jpeg_bytes) -> int:
    reply = predict(client, jpeg_bytes)
    assert reply.status_code == 200, reply.content
    return reply.json()["id"]




def feedback_on(client, data: bytes, label: str = "red fox", domain: str = "animal") -> int:
    """Predict `data` through the API and say the answer is `label`; returns the prediction id."""
    prediction_id = predict(client, data).json()["id"]
    reply = send(client, prediction_id, label=label, domain=domain or None)
    assert reply.status_code == 201, reply.content
    return prediction_id
