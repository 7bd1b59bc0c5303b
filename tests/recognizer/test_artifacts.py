"""Artifacts (H5 + manifest): a faithful round trip, reproducible bytes, and every refusal with its own error."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recognizer import artifacts, errors
from recognizer.artifacts import load_artifact, save_artifact
from recognizer.manifest import FORMAT_VERSION, file_sha256, manifest_path, read_manifest, write_manifest
from recognizer.preprocessing import InputSpec
from tests.conftest import TINY_CLASSES, TINY_SPEC, build_tiny_model, save_tiny, tiny_manifest


@pytest.fixture
def artifact(tiny_artifact, tmp_path) -> Path:
    """A private copy of the tiny artifact that a test may damage."""
    h5 = tmp_path / tiny_artifact.name
    shutil.copy(tiny_artifact, h5)
    shutil.copy(manifest_path(tiny_artifact), manifest_path(h5))
    return h5


def write_raw(model, manifest, h5: Path) -> Path:
    """Save like an exporter that skipped our checks: plain model.save and a manifest with the right sha256."""
    model.save(h5)
    write_manifest(manifest.with_updates(sha256=file_sha256(h5)), manifest_path(h5))
    return h5


def edit_manifest(h5: Path, **changes) -> None:
    data = json.loads(manifest_path(h5).read_text())
    data.update(changes)
    manifest_path(h5).write_text(json.dumps(data))


def rehash(h5: Path) -> None:
    """Make the manifest vouch for the H5 as it is now, so that the next check in line is reached."""
    edit_manifest(h5, sha256=file_sha256(h5))


def test_a_saved_artifact_loads_back_with_the_same_manifest_and_outputs(tmp_path):
    model = build_tiny_model()
    written = save_artifact(model, tiny_manifest(), tmp_path / "m.h5")
    loaded = load_artifact(tmp_path / "m.h5")
    assert loaded.manifest == written == read_manifest(tmp_path / "m.json")
    assert written.sha256 == file_sha256(tmp_path / "m.h5") and written.created_at
    assert loaded.manifest.classes == TINY_CLASSES and loaded.manifest.input == TINY_SPEC
    batch = np.random.default_rng(0).normal(0, 50, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded.model(batch)), np.asarray(model(batch)), atol=1e-6)


def test_building_the_same_model_twice_gives_the_same_sha256(tmp_path, tiny_artifact):
    again = save_tiny(tmp_path / "again.h5")
    assert file_sha256(again) == file_sha256(tiny_artifact)
    assert read_manifest(manifest_path(again)).sha256 == read_manifest(manifest_path(tiny_artifact)).sha256
    other_weights = save_tiny(tmp_path / "other.h5", seed=1)
    assert file_sha256(other_weights) != file_sha256(tiny_artifact)


def test_saving_an_artifact_does_not_warn_that_h5_is_legacy_and_other_warnings_still_pass(tmp_path, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    save_artifact(build_tiny_model(seed=1), tiny_manifest(), tmp_path / "m.h5")
    assert not [r for r in caplog.records if "HDF5 file" in r.getMessage()]
    logging.getLogger("absl").warning("You are saving your model as an HDF5 file (said elsewhere)")
    assert [r.getMessage() for r in caplog.records] == ["You are saving your model as an HDF5 file (said elsewhere)"]


def test_save_refuses_a_name_without_the_h5_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.h5"):
        save_artifact(build_tiny_model(), tiny_manifest(), tmp_path / "m.keras")


def test_a_truncated_h5_is_refused_as_unreadable(artifact):
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])
    rehash(artifact)
    with pytest.raises(errors.ArtifactError, match="not a readable HDF5 file.*truncated"):
        load_artifact(artifact)


def test_a_truncated_h5_under_its_old_manifest_fails_the_checksum(artifact):
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.ChecksumMismatch, match="put the right file back, or export the model again"):
        load_artifact(artifact)


def test_a_changed_h5_fails_the_checksum(artifact):
    expected = read_manifest(manifest_path(artifact)).sha256
    with open(artifact, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(errors.ChecksumMismatch, match=f"manifest expects {expected[:12]}"):
        load_artifact(artifact)


def test_a_manifest_without_a_sha256_fails_the_checksum(artifact):
    edit_manifest(artifact, sha256="")
    with pytest.raises(errors.ChecksumMismatch, match=r"manifest records no sha256 for .*; export the artifact again"):
        load_artifact(artifact)


# --- code in the H5 ------------------------------------------------------------------------------------------


def lambda_model(marker: Path):
    """A model whose Lambda layer creates `marker` whenever its function runs (also while the graph is built)."""
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    # The path is a constant inside the code object, the part of a lambda that Keras writes into the H5.
    payload = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    x = keras.layers.Lambda(payload, name="payload")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(len(TINY_CLASSES), activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture
def lambda_artifact(tmp_path):
    marker = tmp_path / "code-ran"
    h5 = write_raw(lambda_model(marker), tiny_manifest(), tmp_path / "lambda.h5")
    marker.unlink()  # building the graph ran the function once
    return h5, marker


def unsafe_keras_load(h5_path):
    """What a Keras that ignores safe_mode for H5 (as older ones did) would do."""
    import keras

    return keras.models.load_model(h5_path, compile=False, safe_mode=False)


def test_the_lambda_payload_really_runs_when_keras_loads_it_unchecked(lambda_artifact):
    h5, marker = lambda_artifact
    unsafe_keras_load(h5)
    assert marker.exists()


def test_an_h5_with_a_lambda_layer_is_refused_before_any_of_its_code_runs(lambda_artifact, monkeypatch):
    h5, marker = lambda_artifact
    monkeypatch.setattr(artifacts, "_keras_load", unsafe_keras_load)  # our check alone must stop it
    with pytest.raises(errors.UnsafeModel, match="Lambda layer, which can run arbitrary code"):
        load_artifact(h5)
    assert not marker.exists()


def test_saving_a_model_with_a_lambda_layer_is_refused(tmp_path):
    with pytest.raises(errors.UnsafeModel, match="Lambda"):
        save_artifact(lambda_model(tmp_path / "marker"), tiny_manifest(), tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_an_h5_with_a_custom_registered_layer_is_refused(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="thirdparty")
    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(Doubling(name="double")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="probs")(x))
    h5 = write_raw(model, tiny_manifest(), tmp_path / "custom.h5")
    with pytest.raises(errors.UnsafeModel, match="Doubling.*only built-in Keras classes are accepted"):
        load_artifact(h5)


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"class_name": "Dense", "module": "evil.layers", "registered_name": None}, "from module 'evil.layers'"),
        ({"class_name": "Dense", "module": "keras.layers", "registered_name": "evil>Dense"}, "object 'evil>Dense'"),
        ({"class_name": "TFOpLambda", "module": "keras.layers"}, "TFOpLambda layer"),
    ],
)
def test_the_config_check_finds_unsafe_objects_however_deep(obj, message):
    layers = [{"class_name": "InputLayer"}, {"config": {"inner": [obj]}}]
    config = {"class_name": "Functional", "config": {"layers": layers}}
    with pytest.raises(errors.UnsafeModel, match=message):
        artifacts.check_config_is_safe(config)


def test_the_config_check_accepts_a_plain_keras_model():
    artifacts.check_config_is_safe(json.loads(build_tiny_model().to_json()))


# --- manifest and model disagree -----------------------------------------------------------------------------


def test_a_manifest_with_fewer_classes_than_outputs_is_refused(artifact):
    edit_manifest(artifact, classes=[json.loads(json.dumps(c.__dict__)) for c in TINY_CLASSES[:3]])
    with pytest.raises(errors.ShapeMismatch, match="4 outputs but the manifest lists 3 classes"):
        load_artifact(artifact)


def test_a_manifest_listing_one_class_id_twice_is_refused(artifact):
    classes = [json.loads(json.dumps(c.__dict__)) for c in TINY_CLASSES]
    classes[3]["id"] = classes[0]["id"]
    edit_manifest(artifact, classes=classes)
    with pytest.raises(errors.ManifestError, match="class ids must differ; listed more than once: cat"):
        load_artifact(artifact)


def test_saving_a_model_whose_outputs_differ_from_the_classes_is_refused(tmp_path):
    with pytest.raises(errors.ShapeMismatch, match="5 outputs but the manifest lists 4 classes"):
        save_artifact(build_tiny_model(num_classes=5), tiny_manifest(), tmp_path / "m.h5")


def test_a_manifest_whose_input_size_differs_from_the_model_is_refused(artifact):
    edit_manifest(artifact, input=replace(TINY_SPEC, height=64, width=64).to_dict())
    expected = r"takes input \(None, 32, 32, 3\); the manifest says \(None, 64, 64, 3\)"
    with pytest.raises(errors.ShapeMismatch, match=expected):
        load_artifact(artifact)


# --- manifest problems ---------------------------------------------------------------------------------------


def test_a_missing_h5_is_named_as_the_missing_file_not_as_a_missing_manifest(tmp_path):
    with pytest.raises(errors.ArtifactError, match=r"No model file at .*nowhere\.h5"):
        load_artifact(tmp_path / "nowhere.h5")


def test_an_h5_without_its_manifest_is_refused(artifact):
    manifest_path(artifact).unlink()
    with pytest.raises(errors.ManifestError, match=r"No manifest at .*tiny-wildlife-v1\.json"):
        load_artifact(artifact)


def test_a_manifest_that_is_not_json_is_refused(artifact):
    manifest_path(artifact).write_text('{"name": "tiny",')
    with pytest.raises(errors.ManifestError, match="is not valid JSON"):
        load_artifact(artifact)


def test_a_manifest_that_is_a_list_is_refused(artifact):
    manifest_path(artifact).write_text("[]")
    with pytest.raises(errors.ManifestError, match="must be a JSON object"):
        load_artifact(artifact)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, None, "1"])
def test_a_manifest_of_another_format_version_is_refused(artifact, version):
    edit_manifest(artifact, format_version=version)
    with pytest.raises(errors.ManifestError, match=f"format_version is {version!r}; this service reads version 1"):
        load_artifact(artifact)


def test_a_manifest_missing_a_field_is_refused(artifact):
    data = json.loads(manifest_path(artifact).read_text())
    del data["backbone"]
    manifest_path(artifact).write_text(json.dumps(data))
    with pytest.raises(errors.ManifestError, match="missing or has a malformed field: 'backbone'"):
        load_artifact(artifact)


def test_a_manifest_with_an_unknown_domain_is_refused(artifact):
    classes = [dict(c.__dict__) for c in TINY_CLASSES]
    classes[2]["domain"] = "fungus"
    edit_manifest(artifact, classes=classes)
    with pytest.raises(errors.ManifestError, match="domain 'fungus'; use one of animal, bird, plant, other"):
        load_artifact(artifact)


def test_a_manifest_with_classes_out_of_order_is_refused(artifact):
    classes = [dict(c.__dict__) for c in TINY_CLASSES]
    classes[0], classes[1] = classes[1], classes[0]
    edit_manifest(artifact, classes=classes)
    with pytest.raises(errors.ManifestError, match="in output order"):
        load_artifact(artifact)


def test_a_manifest_with_a_bad_input_spec_is_refused(artifact):
    edit_manifest(artifact, input={**TINY_SPEC.to_dict(), "normalization": "imagenet"})
    with pytest.raises(errors.ManifestError, match="normalization must be one of"):
        load_artifact(artifact)


def test_a_missing_h5_beside_its_manifest_is_refused(artifact):
    artifact.unlink()
    with pytest.raises(errors.ArtifactError, match="No model file at"):
        load_artifact(artifact)


def test_a_weights_only_h5_is_refused(tmp_path):
    model = build_tiny_model()
    model.save_weights(tmp_path / "m.weights.h5")  # Keras insists on this suffix
    h5 = tmp_path / "m.h5"
    shutil.move(tmp_path / "m.weights.h5", h5)
    write_manifest(tiny_manifest().with_updates(sha256=file_sha256(h5)), manifest_path(h5))
    with pytest.raises(errors.ArtifactError, match=r"holds weights only .*model\.save\('x\.h5'\)"):
        load_artifact(h5)


def test_a_spec_with_an_unknown_crop_is_refused_when_built():
    with pytest.raises(ValueError, match="crop must be one of"):
        InputSpec(height=8, width=8, crop="square")


def test_an_h5_with_a_custom_registered_activation_function_is_refused(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="thirdparty")
    def doubled_softmax(x):
        return keras.activations.softmax(x * 2.0)

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation=doubled_softmax, name="probs")(x))
    h5 = write_raw(model, tiny_manifest(), tmp_path / "custom-activation.h5")
    with pytest.raises(errors.UnsafeModel, match="only built-in Keras classes are accepted"):
        load_artifact(h5)


# --- crafted configs: only Keras' own classes, refused before Keras sees them --------------------------------


def craft(h5: Path, mutate) -> Path:
    """Rewrite the model config stored in `h5` with `mutate(config)`, and make the manifest vouch for the result."""
    import h5py

    config = artifacts.read_model_config(h5)
    mutate(config)
    with h5py.File(h5, "r+") as handle:
        handle.attrs["model_config"] = json.dumps(config)
    rehash(h5)
    return h5


def layer(config: dict, name: str) -> dict:
    return next(item for item in config["config"]["layers"] if item["config"]["name"] == name)


def keras_must_not_run(path):
    raise AssertionError(f"Keras was asked to deserialize {path}")


LAMBDA_ACTIVATION = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}
FUNCTION_ACTIVATION = {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "function"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: layer(c, "probs")["config"].update(activation=LAMBDA_ACTIVATION), "custom object '__lambda__'"),
        (lambda c: layer(c, "probs")["config"].update(activation=FUNCTION_ACTIVATION), "custom object 'function'"),
        (lambda c: layer(c, "probs")["config"].update(activation="os.system"), "activation 'os.system'"),
        (lambda c: layer(c, "conv").update(class_name=["Conv2D"]), r"names an object by \['Conv2D'\]"),
        (lambda c: layer(c, "conv").update(module={"keras": 1}), r"module \{'keras': 1\}"),
        (lambda c: layer(c, "conv").update(class_name="TextVectorization"), "TextVectorization layer, which can run arbitrary code or read files"),
        (lambda c: layer(c, "conv").update(class_name="Layer"), "custom object 'Layer'"),
    ],
    ids=["lambda-activation", "function-reference", "unknown-activation", "list-class-name", "dict-module", "file-reading-layer", "base-class"],
)
def test_a_crafted_config_is_refused_before_keras_deserializes_it(artifact, monkeypatch, mutate, message):
    craft(artifact, mutate)
    monkeypatch.setattr(artifacts, "_keras_load", keras_must_not_run)
    with pytest.raises(errors.UnsafeModel, match=message):
        load_artifact(artifact)


def test_the_allow_list_holds_keras_layers_but_none_that_run_code_or_read_files():
    allowed = artifacts.allowed_classes()
    assert {"Conv2D", "DepthwiseConv2D", "BatchNormalization", "Dense", "GlorotUniform", "L2", "MaxNorm"} <= allowed
    assert {"DTypePolicy", "Adam", "SparseCategoricalCrossentropy"} <= allowed
    code_or_files = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "StringLookup", "TextVectorization"}
    assert not allowed & (code_or_files | {"function", "__lambda__", "LossFunctionWrapper", "Layer"})


@pytest.mark.parametrize(
    "raw", ['{"class_name": "Functional", "n": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000],
    ids=["5000-digit-number", "nested-100000"],
)
def test_a_config_or_manifest_that_python_cannot_parse_is_refused_not_crashed_on(artifact, raw):
    import h5py

    with h5py.File(artifact, "r+") as handle:
        handle.attrs["model_config"] = raw
    rehash(artifact)
    with pytest.raises(errors.ArtifactError, match="model config .* is not valid JSON"):
        load_artifact(artifact)
    manifest_path(artifact).write_text(raw)
    with pytest.raises(errors.ManifestError, match="is not valid JSON"):
        load_artifact(artifact)
