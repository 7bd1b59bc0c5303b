"""Read a torch state_dict saved in torch's legacy (pre-1.6, non-zip) format with pickle and numpy only.

The file is five things back to back: a pickled magic number, a pickled protocol
version, pickled sys_info, the main pickle (the dict, whose tensors point at
storages by key), a pickled list of storage keys, and then, key by key, an
8-byte little-endian element count followed by that storage's raw bytes.

The main pickle is untrusted input: the unpickler here resolves only the few
globals a state_dict needs, each to a function of this module, and refuses
anything else, so a crafted file cannot run code.
"""

from __future__ import annotations

import collections
import math
import os
import pickle
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from recognizer import errors

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_ADVICE = "This reader handles only the legacy format; re-save it with torch.save(..., _use_new_zipfile_serialization=False)."

STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _View:
    """A storage that is a slice of another (written by very old torch versions)."""

    root: _Storage
    offset: int
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage | _View
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # Storages are read after the main pickle, so a tensor can only be a reference until then.
    if not isinstance(storage, (_Storage, _View)):
        raise errors.ArtifactError(f"A tensor in the file points at {type(storage).__name__}, not at a storage.")
    return _TensorRef(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data  # nn.Parameter adds nothing numpy needs


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    """An unpickler that knows only the globals of a plain state_dict."""

    def __init__(self, handle: BinaryIO, storages: dict[str, _Storage]):
        super().__init__(handle, encoding="utf-8")
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise errors.UnsafeModel(
                f"The torch file refers to {module}.{name}, which a plain state_dict never needs; "
                "refusing to load it, because unpickling it could run code. Only load weights from a source you trust."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise errors.ArtifactError(f"Unexpected persistent id {pid!r:.80} in the torch file.")
        _, kind, key, _location, numel, *view = pid
        if not isinstance(kind, _StorageType):
            raise errors.ArtifactError(f"Storage {key!r} has an unknown type {kind!r:.80}.")
        storage = self._storages.setdefault(str(key), _Storage(str(key), kind.dtype, int(numel)))
        if view and view[0] is not None:
            _view_key, offset, view_numel = view[0]
            return _View(storage, int(offset), int(view_numel))
        return storage


def _read_header(unpickler: _Unpickler) -> None:
    if unpickler.load() != MAGIC_NUMBER:
        raise errors.ArtifactError(
            f"This is not a legacy torch file (wrong magic number). {ZIP_ADVICE}"
        )
    if unpickler.load() != PROTOCOL_VERSION:
        raise errors.ArtifactError("The legacy torch file has an unknown protocol version.")
    sys_info = unpickler.load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise errors.ArtifactError("The torch file was written on a big-endian machine; it is not supported.")


def _read_storages(handle: BinaryIO, keys, storages: dict[str, _Storage]) -> None:
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise errors.ArtifactError(f"The torch file stores data for {key!r}, which no tensor uses.")
        (count,) = struct.unpack("<q", handle.read(8))
        if count != storage.numel:
            raise errors.ArtifactError(f"Storage {key!r} holds {count} elements; the tensors expect {storage.numel}.")
        raw = handle.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise errors.ArtifactError(f"The torch file is truncated inside storage {key!r}.")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)


def _materialize(ref: _TensorRef) -> np.ndarray:
    """Copy a tensor out of its storage, after checking the view stays inside it (as_strided does not)."""
    storage, base = (ref.storage.root, ref.storage.offset) if isinstance(ref.storage, _View) else (ref.storage, 0)
    if storage.data is None:
        raise errors.ArtifactError(f"Storage {storage.key!r} is used by a tensor but missing from the file.")
    if len(ref.size) != len(ref.stride) or any(n < 0 for n in ref.size) or any(s < 0 for s in ref.stride):
        raise errors.ArtifactError(f"A tensor has an invalid size {ref.size} or stride {ref.stride}.")
    start = base + ref.offset
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=storage.dtype)
    last = start + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if start < 0 or last >= storage.data.size:
        raise errors.ArtifactError(f"A tensor reaches outside its storage {storage.key!r}.")
    # A zero or overlapping stride repeats elements: a few bytes of storage would be copied out into any size.
    if any(s == 0 and n > 1 for n, s in zip(ref.size, ref.stride)) or math.prod(ref.size) > storage.data.size - start:
        raise errors.ArtifactError(
            f"A tensor of size {ref.size} repeats the elements of its storage {storage.key!r} (stride {ref.stride}); "
            "a state_dict never does."
        )
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage.data[start:], shape=ref.size, strides=tuple(s * itemsize for s in ref.stride), writeable=False
    )
    return view.copy()


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a legacy-format torch state_dict into {name: numpy array} without importing torch."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            raise errors.ArtifactError(f"{os.fspath(path)} is a zip-format torch file (torch >= 1.6). {ZIP_ADVICE}")
        handle.seek(0)
        unpickler = _Unpickler(handle, storages)
        try:
            _read_header(unpickler)
            state = unpickler.load()
            keys = unpickler.load()
            _read_storages(handle, keys, storages)
        except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, AttributeError) as exc:
            # errors.* are raised on purpose and pass through; these mean the bytes are damaged
            raise errors.ArtifactError(f"{os.fspath(path)} is not a readable legacy torch file ({exc}).") from None
    if not isinstance(state, dict):
        raise errors.ArtifactError(f"The torch file holds a {type(state).__name__}, not a state_dict.")
    result = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise errors.ArtifactError(f"Entry {name!r} of the state_dict is a {type(value).__name__}, not a tensor.")
        result[str(name)] = _materialize(value)
    return result
