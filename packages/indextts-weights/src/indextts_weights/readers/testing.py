"""Torch-free writers of ``torch.save`` and safetensors files, for tests.

They write what torch writes (protocol-2 pickles with ``GLOBAL torch._utils
_rebuild_tensor_v2``, storage persistent ids, the zip or legacy container), so the readers
can be tested, and checkpoints built, without torch. Also a tool to write hostile files:
:class:`GlobalCall` pickles a call of any ``module.name``.

Example::

    w = Storage(np.arange(6, dtype=np.float32))
    obj = {"w": Tensor(w, 0, (2, 3), (3, 1)), "wt": Tensor(w, 0, (3, 2), (1, 3))}
    write_torch_zip(path, obj)  # two tensors sharing one storage
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from indextts_weights.readers import torch_pickle as _reader
from indextts_weights.readers.torch_pickle import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION

_STORAGE_OF_DTYPE = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
    "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage",
}
_SAFETENSORS_OF_DTYPE = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


@dataclass(eq=False)
class Storage:
    """One storage: the 1-D ``data`` (raw uint16 bits for ``"BFloat16Storage"``).

    Tensors holding the same :class:`Storage` object share it in the file.
    """

    data: np.ndarray
    storage_type: str = ""

    def __post_init__(self) -> None:
        self.data = np.ascontiguousarray(self.data).reshape(-1)
        if not self.storage_type:
            self.storage_type = _STORAGE_OF_DTYPE[self.data.dtype.name]


@dataclass(eq=False)
class StorageView:
    """Legacy format only: ``numel`` elements of ``root`` from element ``offset``."""

    root: Storage
    offset: int
    numel: int


@dataclass(eq=False)
class Tensor:
    """A tensor as torch pickles it: storage, element offset, size, stride."""

    storage: Storage | StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    parameter: bool = False


def tensor(array: np.ndarray, *, storage_type: str = "", parameter: bool = False) -> Tensor:
    """A contiguous tensor with its own storage holding ``array``."""
    array = np.asarray(array, order="C")
    strides = tuple(int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim))
    return Tensor(Storage(array, storage_type), 0, array.shape, strides, parameter)


@dataclass(eq=False)
class GlobalCall:
    """Pickles as ``GLOBAL module name`` + ``args`` + ``REDUCE`` (what ``__reduce__`` writes)."""

    module: str
    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str

    def __call__(self) -> None:  # save_reduce insists on a callable
        raise NotImplementedError


def global_ref(module: str, name: str) -> Any:
    """Pickles as the bare ``GLOBAL module name`` (how ``torch.float32`` is pickled)."""
    return _Global(module, name)


def _storage_type(name: str) -> _Global:
    return _Global("torch.storage" if name == "UntypedStorage" else "torch", name)


@dataclass
class _Pickled:
    data: bytes
    storages: dict[str, Storage] = field(default_factory=dict)


class _Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch we can extend
    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)

    def __init__(self, file: io.BytesIO, *, legacy: bool) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.keys: dict[int, str] = {}
        self.storages: dict[str, Storage] = {}

    if TYPE_CHECKING:  # the pure-Python pickler's internals, which typeshed's stub omits

        def write(self, data: bytes) -> None: ...

        def save_reduce(
            self, func: Callable[..., Any], args: tuple[Any, ...], *, obj: object
        ) -> None: ...

    def _key(self, storage: Storage) -> str:
        if id(storage) not in self.keys:
            key = str(len(self.keys)) if not self.legacy else str(1000 + len(self.keys))
            self.keys[id(storage)] = key
            self.storages[key] = storage
        return self.keys[id(storage)]

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        if isinstance(obj, Storage):
            pid = ("storage", _storage_type(obj.storage_type), self._key(obj), "cpu")
            return (*pid, obj.data.size, None) if self.legacy else (*pid, obj.data.size)
        if isinstance(obj, StorageView):
            root = obj.root
            view = (f"view{id(obj)}", obj.offset, obj.numel)
            stype = _storage_type(root.storage_type)
            return ("storage", stype, self._key(root), "cpu", root.data.size, view)
        return None

    def _save_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    def _save_tensor(self, obj: Tensor) -> None:
        args = (obj.storage, obj.offset, tuple(obj.size), tuple(obj.stride), False)
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        if not obj.parameter:
            self.save_reduce(rebuild, (*args, collections.OrderedDict()), obj=obj)
            return
        inner = GlobalCall("torch._utils", "_rebuild_tensor_v2", (*args, collections.OrderedDict()))
        parameter = _Global("torch._utils", "_rebuild_parameter")
        self.save_reduce(parameter, (inner, False, collections.OrderedDict()), obj=obj)

    def _save_call(self, obj: GlobalCall) -> None:
        self.save_reduce(_Global(obj.module, obj.name), tuple(obj.args), obj=obj)

    dispatch[_Global] = _save_global
    dispatch[Tensor] = _save_tensor
    dispatch[GlobalCall] = _save_call


def torch_pickle(obj: Any, *, legacy: bool = False) -> tuple[bytes, dict[str, Storage]]:
    """The object pickle torch would write for ``obj``, and its storages by key."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, legacy=legacy)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def _storage_bytes(storage: Storage, byteorder: str) -> bytes:
    data = storage.data
    if data.dtype.itemsize > 1:
        data = data.astype(data.dtype.newbyteorder("<" if byteorder == "little" else ">"))
    return data.tobytes()


def torch_zip_members(
    obj: Any, *, prefix: str = "archive", byteorder: str = "little"
) -> dict[str, bytes]:
    """The zip members ``torch.save(obj)`` writes (member name → bytes)."""
    data, storages = torch_pickle(obj)
    members = {f"{prefix}/data.pkl": data, f"{prefix}/byteorder": byteorder.encode()}
    for key, storage in storages.items():
        members[f"{prefix}/data/{key}"] = _storage_bytes(storage, byteorder)
    members[f"{prefix}/version"] = b"3\n"
    return members


def write_zip(path: str | Path, members: Mapping[str, bytes]) -> Path:
    """Write ``members`` uncompressed, in order (as torch does)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def write_torch_zip(
    path: str | Path, obj: Any, *, prefix: str = "archive", byteorder: str = "little"
) -> Path:
    """``torch.save(obj, path)`` without torch (zip container)."""
    return write_zip(path, torch_zip_members(obj, prefix=prefix, byteorder=byteorder))


def write_torch_legacy(path: str | Path, obj: Any) -> Path:
    """``torch.save(obj, path, _use_new_zipfile_serialization=False)`` without torch."""
    out = io.BytesIO()
    sys_info = {
        "protocol_version": LEGACY_PROTOCOL_VERSION,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, sys_info):
        pickle.dump(header, out, protocol=2)
    data, storages = torch_pickle(obj, legacy=True)
    out.write(data)
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        out.write(struct.pack("<q", storages[key].data.size))
        out.write(_storage_bytes(storages[key], "little"))
    path = Path(path)
    path.write_bytes(out.getvalue())
    return path


def safetensors_bytes(
    tensors: Mapping[str, np.ndarray],
    *,
    dtypes: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """A safetensors file; ``dtypes`` overrides the dtype name (``"BF16"`` for uint16 bits)."""
    dtypes = dtypes or {}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, position = [], 0
    for name, array in tensors.items():
        array = np.asarray(array, order="C")
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        dtype = dtypes.get(name, _SAFETENSORS_OF_DTYPE.get(array.dtype.name, ""))
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [position, position + len(blob)],
        }
        blobs.append(blob)
        position += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray], **kwargs: Any) -> Path:
    """Write :func:`safetensors_bytes` to ``path``."""
    path = Path(path)
    path.write_bytes(safetensors_bytes(tensors, **kwargs))
    return path


@contextlib.contextmanager
def storage_reads() -> Iterator[list[int]]:
    """The byte size of each storage the torch readers read while inside (both containers),
    to check that a pruned read leaves the other storages unread. Not thread-safe."""
    sizes: list[int] = []
    native = _reader._native

    def spy(buffer: np.ndarray, dtype: np.dtype, big_endian: bool) -> np.ndarray:
        sizes.append(buffer.nbytes)
        return native(buffer, dtype, big_endian)

    _reader._native = spy
    try:
        yield sizes
    finally:
        _reader._native = native
