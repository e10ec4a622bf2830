"""Read files written by ``torch.save`` without torch and without running pickle code.

Two containers are supported:

* the zip container (default since torch 1.6): ``<prefix>/data.pkl`` (the object pickle),
  ``<prefix>/data/<key>`` (one raw storage per key), optional ``<prefix>/byteorder``
  (``little``/``big``) and ``<prefix>/version``;
* the legacy stream (``_use_new_zipfile_serialization=False``): pickles of the magic
  number, the protocol version (1001) and a sys-info dict, then the object pickle, then the
  list of storage keys, then per key an int64 element count and the raw little-endian
  storage bytes.

The object pickle goes through :class:`RestrictedUnpickler`, whose ``find_class`` hands out
only the tensor-rebuild functions, the storage type markers, ``collections.OrderedDict``,
``torch.Size`` and ``torch.device`` (all re-implemented here; nothing is imported). Any
other global raises :class:`~indextts_weights.errors.UnsafeCheckpointError` before it can be
called. The very old tar container (torch < 0.4) is not supported.

Result: the pickled object with every tensor replaced by an independent, writable,
C-contiguous ``numpy.ndarray``; ``OrderedDict`` becomes ``dict``, ``torch.Size`` a
``tuple``, ``torch.device`` its string (``"cpu"``), parameters their data; lists, tuples,
str, int, float, bool and None are kept. dtypes: float32/float64/float16, int64/32/16/8,
uint8 and bool are preserved; **bfloat16 is converted to float32** (exactly: bf16 is the
top half of a float32).
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from indextts_weights.errors import UnsafeCheckpointError, WeightsError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
LEGACY_MAGIC_BYTES = b"\x8a\x0a" + LEGACY_MAGIC_NUMBER.to_bytes(10, "little")

# A tensor may have more elements than its storage (stride 0, from ``expand``): up to this.
MAX_EXPANDED_ELEMENTS = 1 << 26

# torch storage class name → little-endian element dtype of the stored bytes.
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # raw bfloat16 bits, widened to float32 on output
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "u1",  # one byte per element, mapped to bool on output
    "UntypedStorage": "u1",
}


class _Frozen:
    """Objects the pickle can reach: no ``__dict__``, and ``BUILD`` on them is refused."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise UnsafeCheckpointError(
            f"the pickle tries to set state on {type(self).__name__.lstrip('_')}"
        )


class _StorageType(_Frozen):
    """Marker for ``torch.FloatStorage`` & co (only ever used inside a storage id)."""

    __slots__ = ("bfloat16", "bool", "dtype", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])
        self.bfloat16 = name == "BFloat16Storage"
        self.bool = name == "BoolStorage"


class _Storage(_Frozen):
    """A storage the pickle refers to: ``numel`` elements of ``root`` starting at ``offset``.

    ``offset`` is non-zero only for the legacy format's storage views.
    """

    __slots__ = ("numel", "offset", "root", "stype")

    def __init__(self, root: str, stype: _StorageType, offset: int, numel: int) -> None:
        self.root, self.stype, self.offset, self.numel = root, stype, offset, numel


class _Tensor(_Frozen):
    """A tensor to be cut out of a storage once the storages are read."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _Global(_Frozen):
    """A callable the pickle may reference; a fresh one per load, so nothing is shared."""

    __slots__ = ("function", "qualname")

    def __init__(self, qualname: str, function: Callable[..., Any]) -> None:
        self.qualname, self.function = qualname, function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WeightsError(f"tensor {what} must be a non-negative int, got {value!r}")
    return value


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise WeightsError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(_int(v, what) for v in value)


def _rebuild_tensor(
    storage: object, storage_offset: object, size: object, stride: object
) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise WeightsError(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    offset = _int(storage_offset, "storage offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise WeightsError(f"tensor size {size} and stride {stride} differ in length")
    count = math.prod(size)
    if count > max(storage.numel, MAX_EXPANDED_ELEMENTS):
        raise WeightsError(
            f"a tensor of size {size} would expand storage {storage.root!r} "
            f"({storage.numel} elements) to {count} elements"
        )
    if count:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.numel:
            raise WeightsError(
                f"storage {storage.root!r} is too small for a tensor: size {size}, stride "
                f"{stride}, offset {offset} need {last + 1} elements, it has {storage.numel}"
            )
    return _Tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _Tensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(
    data: object, requires_grad: object = False, backward_hooks: object = None
) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise WeightsError(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


def _rebuild_parameter_with_state(
    data: object, requires_grad: object, backward_hooks: object, state: object
) -> _Tensor:
    return _rebuild_parameter(data)


class _OrderedDict(dict[Any, Any]):
    """``collections.OrderedDict`` while unpickling; a plain ``dict`` in the result.

    ``Module.state_dict()`` pickles its ``_metadata`` (per-module version numbers) as the
    object's state (``BUILD``); it is accepted and dropped.
    """

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        pass


def _ordered_dict(*args: Any) -> dict[Any, Any]:
    return _OrderedDict(*args)


def _size(dims: object = ()) -> tuple[int, ...]:
    return _ints(dims, "size")


def _device(kind: object, index: object = None) -> str:
    if not isinstance(kind, str) or (index is not None and not isinstance(index, int)):
        raise WeightsError(f"malformed torch.device({kind!r}, {index!r})")
    return kind if index is None else f"{kind}:{index}"


def _allowed_globals() -> dict[tuple[str, str], Callable[[], _Frozen]]:
    """(module, name) → factory of the object ``find_class`` returns for it."""
    rebuild: dict[str, Callable[..., Any]] = {
        "_rebuild_tensor": _rebuild_tensor,
        "_rebuild_tensor_v2": _rebuild_tensor_v2,
        "_rebuild_parameter": _rebuild_parameter,
        "_rebuild_parameter_with_state": _rebuild_parameter_with_state,
    }
    allowed: dict[tuple[str, str], Callable[[], _Frozen]] = {
        ("torch._utils", name): functools.partial(_Global, f"torch._utils.{name}", fn)
        for name, fn in rebuild.items()
    }
    allowed[("collections", "OrderedDict")] = lambda: _Global(
        "collections.OrderedDict", _ordered_dict
    )
    allowed[("torch", "Size")] = lambda: _Global("torch.Size", _size)
    allowed[("torch", "device")] = lambda: _Global("torch.device", _device)
    for name in STORAGE_DTYPES:
        if name != "UntypedStorage":
            allowed[("torch", name)] = functools.partial(_StorageType, name)
    allowed[("torch", "UntypedStorage")] = lambda: _StorageType("UntypedStorage")
    allowed[("torch.storage", "UntypedStorage")] = lambda: _StorageType("UntypedStorage")
    return allowed


ALLOWED_GLOBALS = frozenset(f"{m}.{n}" for m, n in _allowed_globals())


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS`.

    Every global reference (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, extension codes) goes
    through :meth:`find_class`; anything not allowed raises
    :class:`~indextts_weights.errors.UnsafeCheckpointError` naming ``module.name`` and the
    file, before anything is called. Storage ids go to ``storage_for``.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        source: str,
        storage_for: Callable[[tuple[Any, ...]], _Storage] | None = None,
    ) -> None:
        super().__init__(file)
        self._source = source
        self._storage_for = storage_for
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> _Frozen:
        factory = self._allowed.get((module, name))
        if factory is None:
            why = (
                "an unsupported tensor type"
                if module.startswith("torch") and name.endswith("Storage")
                else "only tensors and plain containers are loaded; the file may be malicious"
            )
            raise UnsafeCheckpointError(
                f"{self._source}: refused global '{module}.{name}' in the checkpoint's pickle "
                f"({why})"
            )
        return factory()

    def persistent_load(self, pid: object) -> _Storage:
        if self._storage_for is None:
            raise WeightsError(f"{self._source}: unexpected persistent id {pid!r}")
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise UnsafeCheckpointError(
                f"{self._source}: refused persistent id {pid!r} (only storages are loaded)"
            )
        return self._storage_for(pid)


def _unpickle(
    file: BinaryIO, source: str, storage_for: Callable[[tuple[Any, ...]], _Storage] | None = None
) -> Any:
    try:
        return RestrictedUnpickler(file, source=source, storage_for=storage_for).load()
    except WeightsError:
        raise
    except Exception as exc:  # pickle raises many kinds on corrupt input
        raise WeightsError(f"{source}: corrupt pickle ({type(exc).__name__}: {exc})") from exc


class _StorageIds:
    """Turns storage ids into :class:`_Storage` objects, one per key, checked for consistency."""

    def __init__(self, source: str, *, legacy: bool) -> None:
        self.source, self.legacy = source, legacy
        self.roots: dict[str, _Storage] = {}

    def __call__(self, pid: tuple[Any, ...]) -> _Storage:
        size = 6 if self.legacy else 5
        if len(pid) != size:
            raise WeightsError(f"{self.source}: malformed storage id {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(stype, _StorageType):
            raise WeightsError(f"{self.source}: storage id {pid!r} has no storage type")
        if not isinstance(key, str) or not key or "/" in key or "\\" in key or ".." in key:
            raise WeightsError(f"{self.source}: malformed storage key {key!r}")
        numel = _int(numel, "storage size")
        root = self.roots.get(key)
        if root is None:
            root = self.roots[key] = _Storage(key, stype, 0, numel)
        elif root.stype.name != stype.name:
            raise WeightsError(
                f"{self.source}: storage {key!r} is read as {root.stype.name} and {stype.name}"
            )
        view = pid[5] if self.legacy else None
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise WeightsError(f"{self.source}: malformed storage view {view!r}")
        offset, view_numel = _int(view[1], "view offset"), _int(view[2], "view size")
        if offset + view_numel > root.numel:
            raise WeightsError(f"{self.source}: storage view {view!r} is outside {key!r}")
        return _Storage(key, stype, offset, view_numel)


# ---------------------------------------------------------------------------------------------
# Turning the placeholders into numpy arrays


def descend(obj: Any, unwrap: tuple[str, ...]) -> Any:
    """``obj[k1][k2]...`` for the keys of ``unwrap``, each only where ``obj`` is a mapping
    holding it (the converters' lenient unwrapping: ``("model",)`` reads a plain state dict
    and ``{"model": state_dict}`` alike)."""
    for key in unwrap:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
    return obj


def _roots_used(obj: Any) -> set[str]:
    """Keys of the root storages the placeholders in ``obj`` refer to."""
    return {(item.storage if isinstance(item, _Tensor) else item).root for item in _walk(obj)}


def _walk(obj: Any) -> Iterator[_Tensor | _Storage]:
    """Every placeholder reachable from ``obj`` (containers visited once)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (_Tensor, _Storage)):
            yield item
        elif isinstance(item, (dict, list, tuple, set, frozenset)) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                stack.extend(item.keys())


def _is_contiguous(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for n, s in zip(reversed(size), reversed(stride), strict=True):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _finish(array: np.ndarray, stype: _StorageType) -> np.ndarray:
    if stype.bfloat16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if stype.bool:
        flags: np.ndarray = array != 0
        return flags
    return array


def _tensor_array(buffer: np.ndarray, ref: _Tensor, exclusive: bool) -> np.ndarray:
    """Cut ``ref`` out of its storage's ``buffer`` (native dtype, the root's elements)."""
    stype = ref.storage.stype
    start = ref.storage.offset + ref.offset
    count = math.prod(ref.size)
    if exclusive and start == 0 and count == buffer.size and _is_contiguous(ref.size, ref.stride):
        array = buffer.reshape(ref.size)  # sole user of the whole storage: no copy
    elif count == 0:
        array = np.empty(ref.size, buffer.dtype)
    else:
        strides = tuple(s * buffer.itemsize for s in ref.stride)
        view = np.lib.stride_tricks.as_strided(buffer[start:], ref.size, strides, writeable=False)
        array = np.array(view, copy=True, order="C")
    return _finish(array, stype)


def _resolve(obj: Any, read_root: Callable[[str], np.ndarray]) -> Any:
    """Replace the placeholders in ``obj`` by arrays, reading each root storage once.

    ``read_root(key)`` returns the root storage's elements as a native-endian 1-D array
    (at least as long as the storage id says). A tensor that is the only user of a whole
    contiguous storage takes over its buffer; the others are copied out, so every returned
    array is independent of the others.
    """
    users: dict[str, dict[int, _Tensor | _Storage]] = {}
    for item in _walk(obj):
        key = (item.storage if isinstance(item, _Tensor) else item).root
        users.setdefault(key, {})[id(item)] = item
    arrays: dict[int, np.ndarray] = {}
    for key, items in users.items():
        buffer = read_root(key)
        exclusive = len(items) == 1
        for ident, item in items.items():
            if isinstance(item, _Tensor):
                arrays[ident] = _tensor_array(buffer, item, exclusive)
            else:
                piece = buffer[item.offset : item.offset + item.numel]
                whole = exclusive and piece.size == buffer.size
                arrays[ident] = _finish(piece if whole else piece.copy(), item.stype)
        del buffer
    try:
        return _rebuild(obj, arrays, {})
    except RecursionError:
        raise WeightsError("the checkpoint's containers are nested too deeply") from None
    except TypeError as exc:  # e.g. a tensor inside a set
        raise WeightsError(f"unsupported container in the checkpoint: {exc}") from None


def _rebuild(obj: Any, arrays: dict[int, np.ndarray], memo: dict[int, Any]) -> Any:
    if isinstance(obj, (_Tensor, _Storage)):
        return arrays[id(obj)]
    if isinstance(obj, _Frozen):
        raise WeightsError(f"the pickle holds a bare {type(obj).__name__.lstrip('_')} object")
    if not isinstance(obj, (dict, list, tuple, set, frozenset)):
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        mapping: dict[Any, Any] = {}
        memo[id(obj)] = mapping
        for k, v in obj.items():
            mapping[_rebuild(k, arrays, memo)] = _rebuild(v, arrays, memo)
        return mapping
    if isinstance(obj, list):
        items: list[Any] = []
        memo[id(obj)] = items
        items.extend(_rebuild(v, arrays, memo) for v in obj)
        return items
    rebuilt = type(obj)(_rebuild(v, arrays, memo) for v in obj)
    memo[id(obj)] = rebuilt
    return rebuilt


def _native(buffer: np.ndarray, dtype: np.dtype, big_endian: bool) -> np.ndarray:
    """View raw bytes as ``dtype`` (stored little- or big-endian), in native byte order."""
    stored = dtype.newbyteorder(">" if big_endian else "<") if dtype.itemsize > 1 else dtype
    typed = buffer.view(stored)
    if stored.isnative:
        return typed
    return typed.astype(stored.newbyteorder("="))


# ---------------------------------------------------------------------------------------------
# The zip container


def _check_member_names(names: list[str], source: str) -> str:
    """The single top-level prefix of a torch zip; refuses traversal and odd names."""
    if not names:
        raise WeightsError(f"{source}: empty zip archive")
    if len(set(names)) != len(names):
        raise WeightsError(f"{source}: zip archive has duplicate member names")
    prefixes = set()
    for name in names:
        parts = name.split("/")
        if (
            name.startswith("/")
            or "\\" in name
            or ":" in parts[0]
            or any(p in ("..", ".") for p in parts)
            or "\x00" in name
        ):
            raise WeightsError(f"{source}: refused zip member name {name!r} (path traversal)")
        if len(parts) < 2 or not parts[0]:
            raise WeightsError(f"{source}: zip member {name!r} is not inside a top-level folder")
        prefixes.add(parts[0])
    if len(prefixes) != 1:
        raise WeightsError(
            f"{source}: a torch checkpoint has one top-level folder, this zip has "
            f"{sorted(prefixes)[:5]}"
        )
    return prefixes.pop()


def _data_start(handle: BinaryIO, info: zipfile.ZipInfo, file_size: int, source: str) -> int:
    """Offset of the data of a stored (uncompressed) member, from its local header."""
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise WeightsError(f"{source}: corrupt zip: bad local header for {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start: int = info.header_offset + 30 + name_len + extra_len
    if start + info.compress_size > file_size:
        raise WeightsError(f"{source}: truncated zip: {info.filename!r} runs past the end")
    return start


class _ZipCheckpoint:
    """Reads the members of one torch zip checkpoint."""

    def __init__(self, path: Path, *, verify_crc: bool) -> None:
        self.path, self.source, self.verify_crc = path, str(path), verify_crc
        self.file_size = path.stat().st_size
        self.handle = open(path, "rb")  # noqa: SIM115 (closed in close())
        try:
            self.zip = zipfile.ZipFile(self.handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            self.handle.close()
            raise WeightsError(f"{self.source}: truncated or corrupt zip ({exc})") from exc
        try:
            self.infos = {info.filename: info for info in self.zip.infolist()}
            names = [info.filename for info in self.zip.infolist()]
            self.prefix = _check_member_names(names, self.source)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.zip.close()
        self.handle.close()

    def member(self, name: str, what: str) -> zipfile.ZipInfo:
        info = self.infos.get(f"{self.prefix}/{name}")
        if info is None:
            raise WeightsError(f"{self.source}: missing {what} member {self.prefix}/{name}")
        if info.flag_bits & 0x1:
            raise WeightsError(f"{self.source}: encrypted zip member {info.filename!r}")
        return info

    def read_small(self, info: zipfile.ZipInfo, limit: int = 1 << 30) -> bytes:
        if info.file_size > limit:
            raise WeightsError(f"{self.source}: {info.filename!r} is implausibly large")
        try:
            return self.zip.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise WeightsError(
                f"{self.source}: corrupt zip member {info.filename!r}: {exc}"
            ) from exc

    def read_buffer(self, info: zipfile.ZipInfo, nbytes: int) -> np.ndarray:
        """The member's bytes as a writable uint8 array (one copy), CRC-checked."""
        if info.file_size < nbytes:
            raise WeightsError(
                f"{self.source}: storage member {info.filename!r} holds {info.file_size} bytes, "
                f"the pickle needs {nbytes} (storage too small)"
            )
        if info.compress_type != zipfile.ZIP_STORED:
            if info.file_size != nbytes:
                raise WeightsError(f"{self.source}: {info.filename!r} has the wrong size")
            return np.frombuffer(bytearray(self.read_small(info, limit=nbytes)), np.uint8)
        start = _data_start(self.handle, info, self.file_size, self.source)
        buffer = np.empty(info.file_size, np.uint8)
        self.handle.seek(start)
        if self.handle.readinto(buffer.data) != info.file_size:
            raise WeightsError(f"{self.source}: truncated zip member {info.filename!r}")
        if self.verify_crc and zlib.crc32(buffer.data) != info.CRC:
            raise WeightsError(f"{self.source}: corrupt zip member {info.filename!r} (bad CRC)")
        return buffer[:nbytes]


def read_torch_zip(
    path: str | Path, *, verify_crc: bool = True, unwrap: tuple[str, ...] = ()
) -> Any:
    """Read a zip-container ``torch.save`` file (see the module docstring for the result).

    Args:
        path: the checkpoint.
        verify_crc: check each storage member's CRC-32 (about 1 GB/s).
        unwrap: keys to descend into, each where present (:func:`descend`), before any
            storage is read: only the storages of the part kept are read (``s2mel.pth``'s
            ``net`` without the optimizer state beside it).

    Raises:
        UnsafeCheckpointError: the pickle references a global outside :data:`ALLOWED_GLOBALS`.
        WeightsError: truncated/corrupt zip, odd member names, missing or too small
            storages, malformed tensors.
    """
    path = Path(path)
    ckpt = _ZipCheckpoint(path, verify_crc=verify_crc)
    try:
        if f"{ckpt.prefix}/data.pkl" not in ckpt.infos:
            if f"{ckpt.prefix}/constants.pkl" in ckpt.infos:
                raise WeightsError(f"{path}: a TorchScript archive, not a torch.save file")
            raise WeightsError(f"{path}: not a torch checkpoint (no {ckpt.prefix}/data.pkl)")
        big_endian = False
        if f"{ckpt.prefix}/byteorder" in ckpt.infos:
            order = ckpt.read_small(ckpt.member("byteorder", "byte order"), 16).decode(
                "ascii", "replace"
            )
            if order not in ("little", "big"):
                raise WeightsError(f"{path}: unknown byte order {order!r}")
            big_endian = order == "big"
        pickle_bytes = ckpt.read_small(ckpt.member("data.pkl", "pickle"))
        ids = _StorageIds(str(path), legacy=False)
        obj = descend(_unpickle(io.BytesIO(pickle_bytes), str(path), ids), unwrap)

        def read_root(key: str) -> np.ndarray:
            root = ids.roots[key]
            info = ckpt.member(f"data/{key}", "storage")
            nbytes = root.numel * root.stype.dtype.itemsize
            return _native(ckpt.read_buffer(info, nbytes), root.stype.dtype, big_endian)

        return _resolve(obj, read_root)
    finally:
        ckpt.close()


# ---------------------------------------------------------------------------------------------
# The legacy (non-zip) stream


def is_legacy_torch(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a legacy ``torch.save`` stream."""
    return head[:1] == b"\x80" and LEGACY_MAGIC_BYTES in head[:32]


def read_torch_legacy(path: str | Path, *, unwrap: tuple[str, ...] = ()) -> Any:
    """Read a legacy (``_use_new_zipfile_serialization=False``) ``torch.save`` file.

    Same result, ``unwrap`` and errors as :func:`read_torch_zip`. Storages are stored
    little-endian; those outside the part kept are skipped, not read.
    """
    path = Path(path)
    source = str(path)
    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        if _unpickle(handle, source) != LEGACY_MAGIC_NUMBER:
            raise WeightsError(f"{source}: not a legacy torch file (bad magic number)")
        protocol = _unpickle(handle, source)
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise WeightsError(f"{source}: unsupported legacy protocol version {protocol!r}")
        sys_info = _unpickle(handle, source)
        if not isinstance(sys_info, dict):
            raise WeightsError(f"{source}: malformed legacy sys info {sys_info!r}")
        ids = _StorageIds(source, legacy=True)
        obj = descend(_unpickle(handle, source, ids), unwrap)
        needed = _roots_used(obj)
        keys = _unpickle(handle, source)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise WeightsError(f"{source}: malformed legacy storage key list")
        unknown = sorted(set(keys) - set(ids.roots))
        if unknown or len(set(keys)) != len(keys):
            raise WeightsError(f"{source}: legacy storage list has unknown keys {unknown[:5]}")
        buffers: dict[str, np.ndarray] = {}
        for key in keys:
            root = ids.roots[key]
            count_bytes = handle.read(8)
            if len(count_bytes) != 8:
                raise WeightsError(f"{source}: truncated legacy file (storage {key!r})")
            (count,) = struct.unpack("<q", count_bytes)
            itemsize = root.stype.dtype.itemsize
            if count < root.numel or handle.tell() + count * itemsize > file_size:
                raise WeightsError(
                    f"{source}: legacy storage {key!r} holds {count} elements, needs "
                    f"{root.numel} (storage too small or file truncated)"
                )
            if key not in needed:
                handle.seek(count * itemsize, io.SEEK_CUR)
                continue
            buffer = np.empty(count * itemsize, np.uint8)
            if handle.readinto(buffer.data) != buffer.size:
                raise WeightsError(f"{source}: truncated legacy file (storage {key!r})")
            buffers[key] = _native(buffer, root.stype.dtype, big_endian=False)

    def read_root(key: str) -> np.ndarray:
        if key not in buffers:
            raise WeightsError(f"{source}: missing storage {key!r}")
        return buffers.pop(key)

    return _resolve(obj, read_root)
