"""Read files written by ``torch.save`` without torch and without running pickle code.

Two containers are supported:

* the zip container (default since torch 1.6): ``<prefix>/data.pkl`` (the object pickle),
  ``<prefix>/data/<key>`` (one raw storage per key), optional ``<prefix>/byteorder``
  (``little``/``big``) and ``<prefix>/version``;
* the legacy stream (``_use_new_zipfile_serialization=False``): pickles of the magic
  number, the protocol version (1001) and a sys-info dict, then the object pickle, then the
  list of storage keys, then per key an int64 element count and the raw little-endian
  storage bytes.

The object pickle goes through :class:`RestrictedUnpickler`, a torch-free re-implementation
of torch's own weights-only unpickler (``torch.load(weights_only=True)``, torch 2.13): the
same allow-list of globals (:data:`ALLOWED_GLOBALS`: the tensor and storage rebuilds, the
storage and tensor types, every dtype, ``torch.Size``, ``torch.device``, layouts,
quantization schemes, ``OrderedDict``, ``Counter``, ``set``, ``bytearray``, ``complex``,
``_codecs.encode`` for bytes; nothing is imported, each is a stand-in here), the same
opcodes (:data:`OPCODES`) and the same limits on what ``REDUCE``/``NEWOBJ``/``BUILD``/
``APPEND``/``SETITEM`` may touch. Anything else raises
:class:`~indextts_weights.errors.UnsafeCheckpointError` before it can be called; the
parity tests compare both sets with torch's. Tensor kinds torch allows but numpy cannot
hold (quantized, sparse, nested, meta, float8 and sub-byte dtypes) are a
:class:`~indextts_weights.errors.WeightsError` naming the kind. The very old tar container
(torch < 0.4) is not supported.

The pickle is resolved with every storage as a lazy reference; ``unwrap`` keeps a part of
it (``net``) before any storage is read, so only that part's storages are read.

Result: the pickled object with every tensor replaced by an independent, writable,
C-contiguous ``numpy.ndarray``; ``OrderedDict`` becomes ``dict``, ``Counter`` stays a
``Counter``, ``torch.Size`` a ``tuple``, ``torch.device`` a :class:`TorchDevice` (a ``str``:
``"cpu"``, ``"cuda:1"``), dtypes :class:`TorchDtype`, other torch constants (layouts,
quantization schemes, bare type or function references) :class:`TorchName`; parameters
become their data (tensor attributes are dropped); lists, tuples, sets, str, bytes, int,
float, complex, bool and None are kept. dtypes: float64/32/16, complex128/64,
int64/32/16/8, uint64/32/16/8 and bool are preserved; **bfloat16 is converted to float32**
(exactly: bf16 is the top half of a float32).
"""

from __future__ import annotations

import collections
import copyreg
import functools
import io
import math
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from pickle import (
    APPEND,
    APPENDS,
    BINFLOAT,
    BINGET,
    BININT,
    BININT1,
    BININT2,
    BINPERSID,
    BINPUT,
    BINUNICODE,
    BUILD,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_SET,
    EMPTY_TUPLE,
    GLOBAL,
    LONG1,
    LONG_BINGET,
    LONG_BINPUT,
    MARK,
    NEWFALSE,
    NEWOBJ,
    NEWTRUE,
    NONE,
    PROTO,
    REDUCE,
    SETITEM,
    SETITEMS,
    SHORT_BINSTRING,
    TUPLE,
    TUPLE1,
    TUPLE2,
    TUPLE3,
)
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from indextts_weights.errors import UnsafeCheckpointError, WeightsError
from indextts_weights.readers.dtypes import note_dtype

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
LEGACY_MAGIC_BYTES = b"\x8a\x0a" + LEGACY_MAGIC_NUMBER.to_bytes(10, "little")

# A tensor may have more elements than its storage (stride 0, from ``expand``): up to this.
MAX_EXPANDED_ELEMENTS = 1 << 26


class _Elements(NamedTuple):
    """How stored elements become an array: the stored dtype (little-endian spelling), and
    whether they are bfloat16 bits (widened to float32) or bool bytes."""

    dtype: np.dtype
    bfloat16: bool = False
    bool: bool = False


def _elements(spelling: str, kind: str = "") -> _Elements:
    return _Elements(np.dtype(spelling), kind == "bfloat16", kind == "bool")


# torch dtype name → its elements, for the dtypes numpy can hold (the others are refused
# with a clear message when a tensor uses them: float8, sub-byte, quantized, complex32).
DTYPE_ELEMENTS: dict[str, _Elements] = {
    "float64": _elements("<f8"),
    "float32": _elements("<f4"),
    "float16": _elements("<f2"),
    "bfloat16": _elements("<u2", "bfloat16"),
    "complex128": _elements("<c16"),
    "complex64": _elements("<c8"),
    "int64": _elements("<i8"),
    "int32": _elements("<i4"),
    "int16": _elements("<i2"),
    "int8": _elements("i1"),
    "uint64": _elements("<u8"),
    "uint32": _elements("<u4"),
    "uint16": _elements("<u2"),
    "uint8": _elements("u1"),
    "bool": _elements("u1", "bool"),
}


class TorchName:
    """A torch constant that ``torch.load(weights_only=True)`` accepts as a value, by name:
    a quantization scheme (``torch.per_tensor_affine``), a layout (``torch.strided``), a
    tensor or storage type, a rebuild function. Immutable; equal when the names are."""

    __slots__ = ("_qualname",)
    _qualname: str

    def __init__(self, qualname: str) -> None:
        object.__setattr__(self, "_qualname", qualname)

    @property
    def qualname(self) -> str:
        """The full name, e.g. ``"torch.per_tensor_affine"``."""
        return self._qualname

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._qualname} is immutable")

    def __setstate__(self, state: object) -> None:
        raise UnsafeCheckpointError(f"the pickle tries to set state on {self._qualname}")

    def __repr__(self) -> str:
        return self._qualname

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TorchName)
            and type(other) is type(self)
            and (other._qualname == self._qualname)
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._qualname))


class TorchDtype(TorchName):
    """``torch.float32`` & co as a value (``str()`` is ``"torch.float32"``)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """``"float32"``."""
        return self.qualname.removeprefix("torch.")

    @property
    def numpy(self) -> np.dtype | None:
        """The numpy dtype its tensors are read as (bfloat16: float32), or None where numpy
        has none (float8, sub-byte and quantized types)."""
        elements = DTYPE_ELEMENTS.get(self.name)
        if elements is None:
            return None
        if elements.bfloat16:
            return np.dtype(np.float32)
        return np.dtype(bool) if elements.bool else elements.dtype.newbyteorder("=")


class TorchDevice(str):
    """``torch.device`` as its string (``"cpu"``, ``"cuda:1"``), with ``type`` and
    ``device_index``."""

    __slots__ = ()

    @property
    def type(self) -> str:
        return self.partition(":")[0]

    @property
    def device_index(self) -> int | None:
        """``torch.device.index`` (``index`` is ``str.index``)."""
        index = self.partition(":")[2]
        return int(index) if index else None


class _Frozen:
    """Placeholders the pickle can reach: no ``__dict__``, and ``BUILD`` on them is refused."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise UnsafeCheckpointError(
            f"the pickle tries to set state on {type(self).__name__.lstrip('_')}"
        )


class _StorageType(_Frozen):
    """``torch.FloatStorage`` & co (``torch.cuda.*`` alike), ``torch.storage.UntypedStorage``:
    used inside a storage id; ``elements`` None for the quantized storages."""

    __slots__ = ("elements", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.elements = STORAGE_ELEMENTS.get(name)


class _Storage(_Frozen):
    """A storage the pickle refers to: ``numel`` elements of ``root`` starting at ``offset``.

    ``offset`` is non-zero only for the legacy format's storage views.
    """

    __slots__ = ("numel", "offset", "root", "stype")

    def __init__(self, root: str, stype: _StorageType, offset: int, numel: int) -> None:
        self.root, self.stype, self.offset, self.numel = root, stype, offset, numel

    @property
    def elements(self) -> _Elements:
        if self.stype.elements is None:
            raise WeightsError(f"storage type torch.{self.stype.name} is not supported")
        return self.stype.elements


class _Tensor(_Frozen):
    """A tensor to be cut out of a storage once the storages are read; ``elements`` is the
    storage's, or the dtype's for a tensor on an untyped storage (``_rebuild_tensor_v3``)."""

    __slots__ = ("elements", "offset", "size", "storage", "stride")

    def __init__(
        self,
        storage: _Storage,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        elements: _Elements,
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.elements = elements


class _Global(_Frozen):
    """A callable global: ``REDUCE`` calls ``function``; ``NEWOBJ`` calls ``new`` (the
    classes torch lets ``NEWOBJ`` build) or is refused. A fresh one per load."""

    __slots__ = ("function", "new", "qualname")

    def __init__(
        self,
        qualname: str,
        function: Callable[..., Any],
        new: Callable[..., Any] | None = None,
    ) -> None:
        self.qualname, self.function, self.new = qualname, function, new


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WeightsError(f"tensor {what} must be a non-negative int, got {value!r}")
    return value


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise WeightsError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(_int(v, what) for v in value)


def _rebuild_tensor(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    dtype: TorchDtype | None = None,
) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise WeightsError(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    offset = _int(storage_offset, "storage offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise WeightsError(f"tensor size {size} and stride {stride} differ in length")
    if dtype is None:
        elements, numel = storage.elements, storage.numel
    else:
        elements = _dtype_elements(dtype)
        numel = storage.numel * storage.elements.dtype.itemsize // elements.dtype.itemsize
    count = math.prod(size)
    if count > max(numel, MAX_EXPANDED_ELEMENTS):
        raise WeightsError(
            f"a tensor of size {size} would expand storage {storage.root!r} "
            f"({numel} elements) to {count} elements"
        )
    if count:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= numel:
            raise WeightsError(
                f"storage {storage.root!r} is too small for a tensor: size {size}, stride "
                f"{stride}, offset {offset} need {last + 1} elements, it has {numel}"
            )
    return _Tensor(storage, offset, size, stride, elements)


def _dtype_elements(dtype: object) -> _Elements:
    if not isinstance(dtype, TorchDtype):
        raise WeightsError(f"a tensor's dtype is {dtype!r}, not a torch dtype")
    elements = DTYPE_ELEMENTS.get(dtype.name)
    if elements is None:
        raise WeightsError(f"tensors of dtype {dtype} are not supported (numpy has no such type)")
    return elements


def _rebuild_tensor_v1(
    storage: object, storage_offset: object, size: object, stride: object
) -> _Tensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


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


def _rebuild_tensor_v3(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    dtype: object,
    metadata: object = None,
) -> _Tensor:
    if not isinstance(dtype, TorchDtype):
        raise WeightsError(f"a tensor's dtype is {dtype!r}, not a torch dtype")
    if not (isinstance(storage, _Storage) and storage.stype.name == "UntypedStorage"):
        raise WeightsError("_rebuild_tensor_v3 needs an untyped storage")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype)


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


def _parameter(data: object = None, requires_grad: object = True) -> _Tensor:
    return _rebuild_parameter(data)


def _rebuild_from_type_v2(func: object, new_type: object, args: object, state: object) -> _Tensor:
    """A tensor with Python attributes (dropped) or a ``Parameter``/``Tensor`` type."""
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        raise WeightsError(f"malformed _rebuild_from_type_v2({func!r}, ..., {args!r})")
    name = new_type.qualname if isinstance(new_type, (TorchName, _Global)) else None
    if name not in ("torch.Tensor", "torch.nn.parameter.Parameter"):
        raise WeightsError(f"tensors of type {new_type!r} are not supported")
    return _rebuild_parameter(func.function(*args))


def _rebuild_device_tensor_from_cpu_tensor(
    data: object, dtype: object, device: object, requires_grad: object
) -> _Tensor:
    tensor = _rebuild_parameter(data)
    if _dtype_elements(dtype) != tensor.elements:
        raise WeightsError(f"a device tensor converted to {dtype} is not supported")
    return tensor


def _unsupported(kind: str) -> Callable[..., Any]:
    def refuse(*args: object) -> Any:
        raise WeightsError(f"{kind} are not supported (only dense tensors with their data)")

    return refuse


class _OrderedDict(dict[Any, Any]):
    """``collections.OrderedDict`` while unpickling; a plain ``dict`` in the result.

    ``Module.state_dict()`` pickles its ``_metadata`` (per-module version numbers) as the
    object's state (``BUILD``); it is accepted and dropped.
    """

    __slots__ = ()


class _Counter(dict[Any, Any]):
    """``collections.Counter`` while unpickling; a ``Counter`` in the result."""

    __slots__ = ()


def _ordered_dict(*args: Any) -> dict[Any, Any]:
    return _OrderedDict(*args)


def _counter(*args: Any) -> dict[Any, Any]:
    return _Counter(collections.Counter(*args))


def _size(dims: object = ()) -> tuple[int, ...]:
    return _ints(dims, "size")


def _device(kind: object, index: object = None) -> TorchDevice:
    if not isinstance(kind, str) or (
        index is not None and (isinstance(index, bool) or not isinstance(index, int))
    ):
        raise WeightsError(f"malformed torch.device({kind!r}, {index!r})")
    return TorchDevice(kind if index is None else f"{kind}:{index}")


# ``_codecs.encode`` encodings accepted (protocol 2 pickles ``bytes`` as
# ``encode(str, "latin1")``): no codec is looked up by a name the file chooses.
TEXT_ENCODINGS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"})


def _encode(obj: object, encoding: object = "utf-8", errors: object = "strict") -> bytes:
    """``_codecs.encode`` of a ``str`` with one of :data:`TEXT_ENCODINGS` (torch calls the
    real one; every ``bytes`` ``torch.save`` writes is covered)."""
    if not (isinstance(obj, str) and encoding in TEXT_ENCODINGS and errors == "strict"):
        raise WeightsError(f"unsupported _codecs.encode({type(obj).__name__}, {encoding!r})")
    return obj.encode(str(encoding))


def _bytearray(data: object = b"") -> bytearray:
    if not isinstance(data, (bytes, bytearray)):
        raise WeightsError(f"unsupported bytearray({type(data).__name__})")
    return bytearray(data)


def _set(items: object = ()) -> set[Any]:
    if not isinstance(items, (list, tuple, set)):
        raise WeightsError(f"unsupported set({type(items).__name__})")
    return set(items)


def _complex(real: object = 0, imag: object = 0) -> complex:
    if not (isinstance(real, (int, float)) and isinstance(imag, (int, float))):
        raise WeightsError(f"unsupported complex({real!r}, {imag!r})")
    return complex(real, imag)


LAYOUTS = frozenset(
    f"torch.{n}"
    for n in (
        "strided",
        "sparse_coo",
        "sparse_csr",
        "sparse_csc",
        "sparse_bsr",
        "sparse_bsc",
        "_mkldnn",
        "jagged",
    )
)


def _get_layout(name: object) -> TorchName:
    if name not in LAYOUTS:
        raise WeightsError(f"unknown torch layout {name!r}")
    return TorchName(str(name))


# The names torch 2.13's ``torch._weights_only_unpickler._get_allowed_globals()`` lists
# (the parity tests compare the two sets).
LEGACY_STORAGES = (
    "Double",
    "Float",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexDouble",
    "ComplexFloat",
)
QUANTIZED_STORAGES = ("QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8")
TENSOR_TYPES = (
    "BFloat16",
    "Bool",
    "Byte",
    "Char",
    "Double",
    "Float",
    "Half",
    "Int",
    "Long",
    "Short",
)
DTYPES = (
    *DTYPE_ELEMENTS,
    "complex32",
    *(f"float8_{k}" for k in ("e4m3fn", "e4m3fnuz", "e5m2", "e5m2fnuz", "e8m0fnu")),
    "float4_e2m1fn_x2",
    *(f"bits{k}" for k in ("16", "1x8", "2x4", "4x2", "8")),
    *(f"int{k}" for k in range(1, 8)),
    *(f"uint{k}" for k in range(1, 8)),
    "qint32",
    "qint8",
    "quint2x4",
    "quint4x2",
    "quint8",
)
QSCHEMES = (
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
)

STORAGE_ELEMENTS: dict[str, _Elements] = {
    **{
        f"{k}Storage": DTYPE_ELEMENTS[v]
        for k, v in (
            ("Double", "float64"),
            ("Float", "float32"),
            ("Half", "float16"),
            ("BFloat16", "bfloat16"),
            ("Long", "int64"),
            ("Int", "int32"),
            ("Short", "int16"),
            ("Char", "int8"),
            ("Byte", "uint8"),
            ("Bool", "bool"),
            ("ComplexDouble", "complex128"),
            ("ComplexFloat", "complex64"),
        )
    },
    "UntypedStorage": DTYPE_ELEMENTS["uint8"],
}


def _allowed_globals() -> dict[str, Callable[[], object]]:
    """``module.name`` → factory of the object a ``GLOBAL`` of it pushes (fresh per load)."""
    allowed: dict[str, Callable[[], object]] = {}

    def callable_global(
        qualname: str, function: Callable[..., Any], new: Callable[..., Any] | None = None
    ) -> None:
        allowed[qualname] = functools.partial(_Global, qualname, function, new)

    def constant(qualname: str, make: Callable[[str], object]) -> None:
        allowed[qualname] = functools.partial(make, qualname)

    rebuild: dict[str, Callable[..., Any]] = {
        "_rebuild_tensor": _rebuild_tensor_v1,
        "_rebuild_tensor_v2": _rebuild_tensor_v2,
        "_rebuild_tensor_v3": _rebuild_tensor_v3,
        "_rebuild_parameter": _rebuild_parameter,
        "_rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "_rebuild_device_tensor_from_cpu_tensor": _rebuild_device_tensor_from_cpu_tensor,
        "_rebuild_qtensor": _unsupported("quantized tensors"),
        "_rebuild_sparse_tensor": _unsupported("sparse tensors"),
        "_rebuild_meta_tensor_no_storage": _unsupported("meta tensors (they hold no data)"),
        "_rebuild_nested_tensor": _unsupported("nested tensors"),
        "_rebuild_wrapper_subclass": _unsupported("tensor wrapper subclasses"),
        "_rebuild_device_tensor_from_numpy": _unsupported("tensors rebuilt from numpy arrays"),
    }
    for name, function in rebuild.items():
        callable_global(f"torch._utils.{name}", function)
    callable_global("torch._tensor._rebuild_from_type_v2", _rebuild_from_type_v2)
    # NEWOBJ runs ``cls.__new__(cls, *args)``: empty containers, whatever the arguments
    callable_global("collections.OrderedDict", _ordered_dict, lambda *_: _OrderedDict())
    callable_global("collections.Counter", _counter, lambda *_: _Counter())
    callable_global("builtins.set", _set, lambda *_: set())
    callable_global("builtins.bytearray", _bytearray, lambda *_: bytearray())
    callable_global("builtins.complex", _complex, _complex)
    callable_global("_codecs.encode", _encode)
    callable_global("torch.Size", _size, _size)
    callable_global("torch.device", _device, _device)
    callable_global("torch.serialization._get_layout", _get_layout)
    parameter = "torch.nn.parameter.Parameter"
    allowed[parameter] = functools.partial(_Global, parameter, _parameter, _parameter)
    for name in DTYPES:
        constant(f"torch.{name}", TorchDtype)
    for name in QSCHEMES:
        constant(f"torch.{name}", TorchName)
    constant("torch.Tensor", TorchName)
    for kind in TENSOR_TYPES:
        for module in ("torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse"):
            if kind != "Bool" or "sparse" not in module:
                constant(f"{module}.{kind}Tensor", TorchName)
    for kind in (*LEGACY_STORAGES, *QUANTIZED_STORAGES):
        allowed[f"torch.{kind}Storage"] = functools.partial(_StorageType, f"{kind}Storage")
        if kind in LEGACY_STORAGES:
            allowed[f"torch.cuda.{kind}Storage"] = allowed[f"torch.{kind}Storage"]
    allowed["torch.storage.UntypedStorage"] = functools.partial(_StorageType, "UntypedStorage")
    constant("torch.storage.TypedStorage", TorchName)
    return allowed


ALLOWED_GLOBALS = frozenset(_allowed_globals())

# The opcodes torch's weights-only unpickler implements (protocol 2 as torch.save writes it,
# without the text opcodes of protocols 0/1 or the framing, bytes and memo opcodes of 3+).
OPCODES = frozenset(
    getattr(pickle, name)
    for name in (
        *("GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS"),
        *("MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE"),
        *("EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1"),
        *("BININT2", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "BINPERSID", "BINGET"),
        *("LONG_BINGET", "BINPUT", "LONG_BINPUT", "LONG1", "PROTO", "STOP"),
    )
)

#: Opcodes that push a fresh constant or empty container.
_CONSTANTS: dict[bytes, Callable[[], object]] = {
    NONE: lambda: None,
    NEWFALSE: lambda: False,
    NEWTRUE: lambda: True,
    EMPTY_TUPLE: tuple,
    EMPTY_LIST: list,
    EMPTY_DICT: dict,
    EMPTY_SET: set,
}
#: TUPLE1/2/3: how many items of the stack they pack.
_SHORT_TUPLES: dict[bytes, int] = {TUPLE1: 1, TUPLE2: 2, TUPLE3: 3}
#: Opcodes that push one packed number: (struct format, bytes).
_PACKED: dict[bytes, tuple[str, int]] = {BININT: ("<i", 4), BININT2: ("<H", 2), BINFLOAT: (">d", 8)}


# torch's Python 2 module renames (``torch._utils.IMPORT_MAPPING``, from ``_compat_pickle``).
# Its name renames (``NAME_MAPPING``) all lead to refused names, so they need no copy here.
IMPORT_MAPPING = {
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
    "Queue": "queue",
    "repr": "reprlib",
    "_abcoll": "collections.abc",
    "UserDict": "collections",
    "UserList": "collections",
    "UserString": "collections",
    "whichdb": "dbm",
    "StringIO": "io",
    "cStringIO": "io",
}


def _global_name(module: str, name: str) -> str:
    """``module.name`` after torch's Python 2 renames (``__builtin__.set`` → ``builtins.set``)."""
    return f"{IMPORT_MAPPING.get(module, module)}.{name}"


def _refusal(source: str, qualname: str) -> UnsafeCheckpointError:
    module, _, name = qualname.rpartition(".")
    why = (
        "an unsupported tensor type"
        if module.startswith("torch") and name.endswith("Storage")
        else "only tensors and plain containers are loaded; the file may be malicious"
    )
    return UnsafeCheckpointError(
        f"{source}: refused global '{qualname}' in the checkpoint's pickle ({why})"
    )


_EXTENSIONS: dict[Any, tuple[str, str]] = copyreg._inverted_registry  # type: ignore[attr-defined]
_OPCODE_INFO: dict[str, Any] = pickletools.code2op  # type: ignore[attr-defined]


def _refused_global_in(file: BinaryIO, start: int) -> str | None:
    """The first global outside :data:`ALLOWED_GLOBALS` a pickle names (``GLOBAL``, ``INST``,
    ``STACK_GLOBAL`` after two strings, extension codes), found by decoding without running
    it: to name it when the pickle is refused for an opcode before reaching it."""
    file.seek(start)
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(file):
            if op.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                module, name = strings[-2], strings[-1]
            elif op.name in ("EXT1", "EXT2", "EXT4") and arg in _EXTENSIONS:
                module, name = _EXTENSIONS[arg]
            else:
                if isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name):
                    strings.append(str(arg))
                continue
            qualname = _global_name(module, name)
            if qualname not in ALLOWED_GLOBALS:
                return qualname
    except Exception:  # a corrupt pickle: nothing more to name
        pass
    return None


class RestrictedUnpickler:
    """The unpickler of ``torch.load(weights_only=True)``, re-implemented torch-free.

    It runs the same opcodes (:data:`OPCODES`) with the same restrictions: a ``GLOBAL``
    resolves only :data:`ALLOWED_GLOBALS` (to the stand-ins of this module; nothing is
    imported), ``REDUCE`` and ``NEWOBJ`` call only those, ``BUILD`` applies only to
    ``OrderedDict``/``Counter`` (their state is dropped), ``APPEND(S)`` only to lists,
    ``SETITEM(S)`` only to dicts, persistent ids only name storages. Anything else raises
    :class:`~indextts_weights.errors.UnsafeCheckpointError` naming the global or opcode
    and the file, before anything is called. Storage ids go to ``storage_for``.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        source: str,
        storage_for: Callable[[tuple[Any, ...]], _Storage] | None = None,
    ) -> None:
        self._file, self._source, self._storage_for = file, source, storage_for
        self._allowed = _allowed_globals()
        self._start = file.tell()

    def _read(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) != n:
            raise WeightsError(f"{self._source}: truncated pickle")
        return data

    def _refuse(self, what: str) -> UnsafeCheckpointError:
        qualname = _refused_global_in(self._file, self._start)
        if qualname is not None:
            return _refusal(self._source, qualname)
        return UnsafeCheckpointError(
            f"{self._source}: refused {what} in the checkpoint's pickle "
            "(torch.load(weights_only=True) refuses it too)"
        )

    def load(self) -> Any:
        read, readline = self._read, self._file.readline
        stack: list[Any] = []
        metastack: list[list[Any]] = []
        memo: dict[int, Any] = {}

        def pop_mark() -> list[Any]:
            nonlocal stack
            items, stack = stack, metastack.pop()
            return items

        while True:
            op = read(1)
            if op not in OPCODES:
                info = _OPCODE_INFO.get(op.decode("latin-1"))
                raise self._refuse(f"opcode {info.name if info else op.hex()}")
            if op in _CONSTANTS:
                stack.append(_CONSTANTS[op]())
            elif op in _PACKED:
                fmt, size = _PACKED[op]
                stack.append(struct.unpack(fmt, read(size))[0])
            elif op == GLOBAL:
                stack.append(self._global(readline))
            elif op == REDUCE:
                args = stack.pop()
                stack[-1] = self._reduce(stack[-1], args)
            elif op == NEWOBJ:
                args = stack.pop()
                stack.append(self._newobj(stack.pop(), args))
            elif op == BUILD:
                self._check_build(stack.pop(), stack[-1])
            elif op in (APPEND, APPENDS):
                items = [stack.pop()] if op == APPEND else pop_mark()
                if type(stack[-1]) is not list:
                    raise self._refuse(f"append to {type(stack[-1]).__name__}")
                stack[-1].extend(items)
            elif op in (SETITEM, SETITEMS):
                items = stack[-2:] if op == SETITEM else pop_mark()
                if op == SETITEM:
                    del stack[-2:]
                target = stack[-1]
                if type(target) not in (dict, _OrderedDict, _Counter):
                    raise self._refuse(f"item assignment to {type(target).__name__}")
                for i in range(0, len(items) - 1, 2):
                    target[items[i]] = items[i + 1]
            elif op == MARK:
                metastack.append(stack)
                stack = []
            elif op == TUPLE:
                items = pop_mark()  # before naming ``stack``: pop_mark rebinds it
                stack.append(tuple(items))
            elif op in _SHORT_TUPLES:
                n = _SHORT_TUPLES[op]
                stack[-n:] = [tuple(stack[-n:])]
            elif op == BININT1:
                stack.append(read(1)[0])
            elif op == BINUNICODE:
                (length,) = struct.unpack("<I", read(4))
                stack.append(str(read(length), "utf-8", "surrogatepass"))
            elif op == SHORT_BINSTRING:  # a Python 2 str: decoded as torch.load does (utf-8)
                stack.append(read(read(1)[0]).decode("utf-8"))
            elif op == BINPERSID:
                stack.append(self._persistent_load(stack.pop()))
            elif op in (BINGET, LONG_BINGET):
                index = read(1)[0] if op == BINGET else struct.unpack("<I", read(4))[0]
                stack.append(memo[index])
            elif op in (BINPUT, LONG_BINPUT):
                index = read(1)[0] if op == BINPUT else struct.unpack("<I", read(4))[0]
                memo[index] = stack[-1]
            elif op == LONG1:
                stack.append(pickle.decode_long(read(read(1)[0])))
            elif op == PROTO:
                read(1)
            else:  # STOP
                return stack.pop()

    def _global(self, readline: Callable[[], bytes]) -> object:
        """GLOBAL: the stand-in of an allowed name, or the refusal naming it."""
        module = readline()[:-1].decode("utf-8")
        name = readline()[:-1].decode("utf-8")
        qualname = _global_name(module, name)
        factory = self._allowed.get(qualname)
        if factory is None:
            raise _refusal(self._source, qualname)
        return factory()

    def _reduce(self, func: object, args: object) -> object:
        """REDUCE: a call of an allowed function only, with a tuple of arguments."""
        if not isinstance(func, _Global):
            raise self._refuse(f"call of {func!r}")
        if not isinstance(args, tuple):
            raise WeightsError(f"{self._source}: corrupt pickle (REDUCE without a tuple)")
        return func.function(*args)

    def _newobj(self, cls: object, args: object) -> object:
        """NEWOBJ: an instance of an allowed class that may be built this way."""
        if not isinstance(cls, _Global) or cls.new is None:
            raise self._refuse(f"NEWOBJ of {cls!r}")
        if not isinstance(args, tuple):
            raise WeightsError(f"{self._source}: corrupt pickle (NEWOBJ without a tuple)")
        return cls.new(*args)

    def _check_build(self, state: object, inst: object) -> None:
        """BUILD: state may be set on the containers only (their state is dropped)."""
        if not isinstance(inst, (_OrderedDict, _Counter)):
            if isinstance(inst, (_Frozen, TorchName)):
                inst.__setstate__(state)  # raises
            raise UnsafeCheckpointError(
                f"{self._source}: the pickle tries to set state on {type(inst).__name__}"
            )

    def _persistent_load(self, pid: object) -> _Storage:
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
    except Exception as exc:  # corrupt input fails in many ways
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
        if stype.elements is None:
            raise WeightsError(
                f"{self.source}: storage type torch.{stype.name} is not supported (quantized)"
            )
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


def _finish(array: np.ndarray, elements: _Elements) -> np.ndarray:
    note_dtype("bfloat16" if elements.bfloat16 else "bool" if elements.bool else array.dtype.name)
    if elements.bfloat16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if elements.bool:
        flags: np.ndarray = array != 0
        return flags
    return array


def _tensor_array(
    buffer: np.ndarray, ref: _Tensor, exclusive: bool, big_endian: bool
) -> np.ndarray:
    """Cut ``ref`` out of its storage's ``buffer`` (native dtype, the root's elements; the
    bytes of an untyped storage are viewed as the tensor's dtype)."""
    if ref.elements.dtype != buffer.dtype:
        usable = buffer.size // ref.elements.dtype.itemsize * ref.elements.dtype.itemsize
        buffer = _native(buffer[:usable], ref.elements.dtype, big_endian)
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
    return _finish(array, ref.elements)


def _resolve(obj: Any, read_root: Callable[[str], np.ndarray], big_endian: bool = False) -> Any:
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
                arrays[ident] = _tensor_array(buffer, item, exclusive, big_endian)
            else:
                piece = buffer[item.offset : item.offset + item.numel]
                whole = exclusive and piece.size == buffer.size
                arrays[ident] = _finish(piece if whole else piece.copy(), item.elements)
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
    if isinstance(obj, _Global):
        return TorchName(obj.qualname)  # a bare function or class reference
    if isinstance(obj, _StorageType):
        untyped = obj.name == "UntypedStorage"
        return TorchName(f"torch.{'storage.' if untyped else ''}{obj.name}")
    if not isinstance(obj, (dict, list, tuple, set, frozenset)):
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        mapping: dict[Any, Any] = collections.Counter() if isinstance(obj, _Counter) else {}
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
            dtype = root.elements.dtype
            return _native(ckpt.read_buffer(info, root.numel * dtype.itemsize), dtype, big_endian)

        return _resolve(obj, read_root, big_endian)
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
            itemsize = root.elements.dtype.itemsize
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
            buffers[key] = _native(buffer, root.elements.dtype, big_endian=False)

    def read_root(key: str) -> np.ndarray:
        if key not in buffers:
            raise WeightsError(f"{source}: missing storage {key!r}")
        return buffers.pop(key)

    return _resolve(obj, read_root)
