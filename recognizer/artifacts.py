"""Model artifacts: a Keras H5 plus its JSON manifest, saved and loaded with every check.

Keras ignores `safe_mode` for H5 files, so a crafted H5 with a Lambda layer
would run its code on load. The stored model config is therefore read with
h5py and checked BEFORE Keras deserializes anything.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py

from recognizer import errors
from recognizer.manifest import Manifest, file_sha256, manifest_path, now_iso, read_manifest, write_manifest

# Keras classes that run code or read files named in their config: never accepted, whatever Keras' own safe mode does.
CODE_OR_FILE_CLASSES = frozenset({
    "Lambda", "TFOpLambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer",
    "StringLookup", "IntegerLookup", "TextVectorization",  # their `vocabulary` may be a path to a file
})
# Abstract bases, and wrappers of any function: a real model never stores one, and they would accept any config.
BASE_CLASSES = frozenset({
    "Layer", "Wrapper", "Initializer", "Regularizer", "Constraint", "Optimizer", "LearningRateSchedule", "Loss",
    "Metric", "LossFunctionWrapper", "MeanMetricWrapper", "Reduce",
})
# What a saved model itself is, and the marker Keras writes for the tensors that connect layers.
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model", "__keras_tensor__"})
ALLOWED_MODULE_ROOT = "keras"
ACTIVATION_KEYS = ("activation", "recurrent_activation")
CUSTOM_ADVICE = "only built-in Keras classes are accepted"

@dataclass
class Artifact:
    """A checked, loaded artifact: the Keras model, its manifest and where it came from."""

    model: Any
    manifest: Manifest
    path: Path


def _objects(node: Any) -> Iterator[dict]:
    """Every serialized Keras object (a dict with a class_name) in a config tree, however deep (no recursion)."""
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def read_model_config(h5_path: Path) -> dict:
    """The model config stored in an H5 file, read with h5py only (nothing is deserialized)."""
    try:
        with h5py.File(h5_path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as exc:
        raise errors.ArtifactError(
            f"{h5_path.name} is not a readable HDF5 file ({exc}); it may be truncated. Export it again."
        ) from None
    if raw is None:
        raise errors.ArtifactError(
            f"{h5_path.name} holds weights only (no model config). Save the whole model with model.save('x.h5')."
        )
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: also numbers of 4300+ digits
        raise errors.ArtifactError(f"The model config in {h5_path.name} is not valid JSON ({exc}).") from None


@functools.lru_cache(maxsize=1)
def allowed_classes() -> frozenset[str]:
    """The layer, initializer, regularizer, constraint, dtype-policy, optimizer, loss and metric classes of Keras,
    minus code and files."""
    import keras

    families = (
        (keras.layers, keras.layers.Layer),
        (keras.initializers, keras.initializers.Initializer),
        (keras.regularizers, keras.regularizers.Regularizer),
        (keras.constraints, keras.constraints.Constraint),
        (keras.dtype_policies, keras.dtype_policies.DTypePolicy),
        # A compiled model's config names its optimizer (loss and metrics too, when given as objects).
        (keras.optimizers, keras.optimizers.Optimizer),
        (keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule),
        (keras.losses, keras.losses.Loss),
        (keras.metrics, keras.metrics.Metric),
    )
    names = {
        name for module, base in families
        for name, value in vars(module).items() if inspect.isclass(value) and issubclass(value, base)
    }
    return frozenset(names - CODE_OR_FILE_CLASSES - BASE_CLASSES) | MODEL_CLASSES


@functools.lru_cache(maxsize=1)
def allowed_activations() -> frozenset[str]:
    """The activation functions Keras provides, by the names a config refers to them."""
    import keras

    return frozenset(name for name, value in vars(keras.activations).items() if inspect.isfunction(value)) - {
        "get", "serialize", "deserialize"
    }


def check_config_is_safe(config: Any) -> None:
    """Accept only built-in Keras classes that neither run code nor read files; refuse anything else."""
    for obj in _objects(config):
        _check_object(obj)


def _check_object(obj: dict) -> None:
    name, module, registered = obj.get("class_name"), obj.get("module"), obj.get("registered_name")
    if not isinstance(name, str) or not isinstance(module, (str, type(None))) or not isinstance(registered, (str, type(None))):
        raise errors.UnsafeModel(
            f"The model config names an object by {_short(name)} (module {_short(module)}); "
            f"class names and modules must be text, and {CUSTOM_ADVICE}."
        )
    if name in CODE_OR_FILE_CLASSES:
        raise errors.UnsafeModel(
            f"The model contains a {name} layer, which can run arbitrary code or read files when loaded, so it is refused. "
            "Rebuild the model with built-in layers only."
        )
    if name not in allowed_classes():
        raise errors.UnsafeModel(f"The model uses the custom object {name!r}; {CUSTOM_ADVICE}.")
    if module is not None and module.split(".")[0] != ALLOWED_MODULE_ROOT:
        raise errors.UnsafeModel(f"The model uses {name} from module {module!r}; {CUSTOM_ADVICE}.")
    if registered not in (None, name):
        raise errors.UnsafeModel(f"The model uses the custom object {registered!r}; {CUSTOM_ADVICE}.")
    settings = obj.get("config")
    for key in ACTIVATION_KEYS if isinstance(settings, dict) else ():
        value = settings.get(key)
        if isinstance(value, str) and value not in allowed_activations():
            raise errors.UnsafeModel(f"The model uses the activation {value!r}; {CUSTOM_ADVICE}.")


def _short(value: Any) -> str:
    return repr(value)[:60]


def check_shapes(model: Any, manifest: Manifest) -> None:
    """Input (None, H, W, 3) as the manifest says; output width equal to the class count."""
    spec = manifest.input
    expected_in = (None, spec.height, spec.width, 3)
    actual_in = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else None
    if actual_in != expected_in:
        raise errors.ShapeMismatch(
            f"The model takes input {actual_in}; the manifest says {expected_in}. Fix the manifest's input size."
        )
    width = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if width != manifest.num_classes:
        raise errors.ShapeMismatch(
            f"The model has {width} outputs but the manifest lists {manifest.num_classes} classes. "
            "They must match one to one, in order."
        )


def verify_sha256(h5_path: str | Path, expected: str, *, expected_by: str) -> None:
    """The one integrity check: the file exists and its sha256 is the one `expected_by` recorded."""
    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise errors.ArtifactError(f"No model file at {h5_path}.")
    actual = file_sha256(h5_path)
    if not expected:
        raise errors.ChecksumMismatch(
            f"{expected_by} records no sha256 for {h5_path.name}; export the artifact again (its manifest names the "
            "file's checksum) and register it."
        )
    if actual != expected:
        raise errors.ChecksumMismatch(
            f"{h5_path.name} has sha256 {actual[:12]}..., but {expected_by} expects {expected[:12]}.... "
            "The file changed since, or belongs to another artifact: put the right file back, or export the model again "
            "(H5 and manifest) and register that."
        )


def load_artifact(h5_path: str | Path) -> Artifact:
    """Check and load an artifact: manifest, sha256, safe config, then Keras, then shapes."""
    h5_path = Path(h5_path)
    if not h5_path.is_file():  # before the manifest: a mistyped path is about the model file, not its manifest
        raise errors.ArtifactError(f"No model file at {h5_path}.")
    manifest = read_manifest(manifest_path(h5_path))
    verify_sha256(h5_path, manifest.sha256, expected_by="its manifest")
    check_config_is_safe(read_model_config(h5_path))
    model = _keras_load(h5_path)
    check_shapes(model, manifest)
    return Artifact(model=model, manifest=manifest, path=h5_path)


def _keras_load(h5_path: Path):
    import keras

    try:
        return keras.models.load_model(h5_path, compile=False, safe_mode=True)
    except Exception as exc:  # h5/Keras raise many types for a broken file
        raise errors.ArtifactError(f"Keras could not load {h5_path.name}: {exc}") from None


@contextlib.contextmanager
def _h5_on_purpose() -> Iterator[None]:
    """Keras warns on every H5 save that the format is legacy: the artifact is H5 by design (README), so that
    warning, in the train command's output and every training job's log, would only alarm."""
    absl = logging.getLogger("absl")
    notice = _LegacyH5Notice()
    absl.addFilter(notice)
    try:
        yield
    finally:
        absl.removeFilter(notice)


class _LegacyH5Notice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("You are saving your model as an HDF5 file")


def save_artifact(model: Any, manifest: Manifest, h5_path: str | Path) -> Manifest:
    """Write the H5 and its manifest (with the file's sha256); returns the manifest as written."""
    h5_path = Path(h5_path)
    if h5_path.suffix != ".h5":
        raise ValueError("artifacts are saved as .h5 files")
    h5_path.parent.mkdir(parents=True, exist_ok=True)
    check_shapes(model, manifest)
    check_config_is_safe(json.loads(model.to_json()))
    with _h5_on_purpose():
        model.save(h5_path, include_optimizer=False)
    written = manifest.with_updates(sha256=file_sha256(h5_path), created_at=manifest.created_at or now_iso())
    write_manifest(written, manifest_path(h5_path))
    return written
