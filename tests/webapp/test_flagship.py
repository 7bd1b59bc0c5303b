"""The flagship path end to end: ResNet50 trained on real photos, exported, registered, compiled and served.

The ImageNet weights cannot be downloaded here, so the test writes a weights file in the layout Keras
ships them in (from an untrained ResNet50) and supplies it through RECOGNIZER_RESNET50_WEIGHTS, as an
operator would supply the real one.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from django.core.management import call_command

from recognizer.backbones.resnet50 import WEIGHTS_ENV, WEIGHTS_FILE
from recognizer.manifest import manifest_path, read_manifest
from recognizer.optimized import parity_record_path
from tests.webapp.helpers import predict
from webapp.models import ModelVersion
from webapp.runtime import runtime

pytestmark = pytest.mark.slow

NAME = "flagship"
PHOTOS = {  # three real photos per domain; each domain folder is one class
    "animal": ("horse.jpg", "tiger.jpg", "zebra.jpg"),
    "bird": ("flamingo.jpg", "turkey.jpg", "toucan.jpg"),
    "plant": ("rose.jpg", "red-gazania.jpg", "lavender.jpg"),
}


@pytest.fixture(scope="module")
def resnet50_weights(tmp_path_factory) -> Path:
    """A ResNet50 weights file in Keras' own HDF5 weights layout, as keras.applications downloads it."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("weights") / WEIGHTS_FILE
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, keras.applications.ResNet50(weights=None))
    keras.backend.clear_session()
    return path


def _stored_kernel(h5: Path, layer: str, group: str = "") -> np.ndarray:
    with h5py.File(h5, "r") as handle:
        node = handle[group][layer] if group else handle[layer]
        first = node.attrs["weight_names"][0]
        return np.asarray(node[first.decode() if isinstance(first, bytes) else first])


def test_resnet50_trains_exports_registers_compiles_and_answers_through_the_api(
    db, fresh_runtime, settings, monkeypatch, tmp_path, photos, resnet50_weights, client
):
    monkeypatch.setenv(WEIGHTS_ENV, str(resnet50_weights))
    settings.MODELS_DIR, settings.VAR_DIR = tmp_path / "models", tmp_path / "var"
    settings.RECOGNIZER_ENGINE = "onnxruntime"
    for domain, names in PHOTOS.items():
        (tmp_path / "data" / domain).mkdir(parents=True)
        for name in names:
            shutil.copy(photos / domain / name, tmp_path / "data" / domain / name)

    out = io.StringIO()
    call_command("train", "--data", str(tmp_path / "data"), "--name", NAME, "--backbone", "resnet50",
                 "--epochs", "5", "--activate", "--verbosity", "0", stdout=out, stderr=io.StringIO())
    version = ModelVersion.objects.get(name=NAME)

    # Trained from the supplied weights and exported with the preprocessing ResNet50 needs.
    h5 = Path(version.artifact_path)
    assert h5 == (settings.MODELS_DIR / f"{NAME}-v1" / f"{NAME}-v1.h5").resolve()
    np.testing.assert_array_equal(_stored_kernel(h5, "conv1_conv", "model_weights"), _stored_kernel(resnet50_weights, "conv1_conv"))
    manifest = read_manifest(manifest_path(h5))
    assert (manifest.backbone, manifest.input.normalization) == ("resnet50", "caffe")
    assert (manifest.input.height, manifest.input.width) == (224, 224)
    assert [(c.id, c.domain) for c in manifest.classes] == [("animal", "animal"), ("bird", "bird"), ("plant", "plant")]
    assert manifest.training["train"] == 6 and manifest.training["validation"] == 3

    # Registered, active, and compiled for ONNX Runtime after a passing parity check.
    assert version.is_active and version.version == 1
    assert version.engine == "onnxruntime", version.engine_note
    record = json.loads(parity_record_path(h5, "onnxruntime").read_text())
    assert record["passed"] and record["parity"]["images"] > 0 and record["artifact_sha256"] == version.sha256
    assert f"registered {NAME} v1, active, on onnxruntime" in out.getvalue()

    # Answered through the API by ONNX Runtime in this process.
    reply = predict(client, (photos / "bird" / "flamingo.jpg").read_bytes(), model=NAME)
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["model"] == {"name": NAME, "version": 1}
    assert {p["label"] for p in body["predictions"]} == {"animal", "bird", "plant"}
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1.0, abs=1e-4)
    assert runtime().get(NAME).engine.kind == "onnxruntime"
    assert client.get(f"/api/v1/models/{NAME}").json()["engine"] == "onnxruntime"

    # Where it looked: the compiled ResNet50 gives its last feature map, so the heat map needs no TensorFlow.
    explained = predict(client, (photos / "bird" / "flamingo.jpg").read_bytes(), model=NAME, explain="true").json()
    png = base64.b64decode(explained["heatmap_png_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as overlay:
        assert overlay.size[0] > 0 and overlay.size[1] > 0
