"""Our NPZ weight files: atomic writes, a recorded format version, strict loading.

The metadata (a JSON object stored as a uint8 array under :data:`META_KEY`) holds
``format_version``, ``model`` and, optionally, ``config``: the model's configuration as a
JSON object (the fields of its ``Args`` dataclass, nested dataclasses as nested objects,
tuples as lists). Files without ``config`` hold the official configuration; the loaders
build a non-default model from the record (:func:`args_from_record`).

``dtype`` (optional; absent: the arrays' own dtypes, float32 from ``convert``) is the
precision of the floating arrays, one of :data:`DTYPES`. numpy has no bfloat16: a
``"bfloat16"`` file stores each floating array as its uint16 bit patterns (the upper half
of the float32, rounded to nearest even), and :func:`read_npz` widens them back to float32
exactly; the loaders then cast to ``mx.bfloat16`` (lossless). ``source`` (optional) says
what the file was converted from: ``{"file": name, "dtypes": {dtype: tensors read}}``.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from indextts_weights.atomic import atomic_path
from indextts_weights.errors import WeightsError
from indextts_weights.mapping.checks import describe_problems
from mlx_indextts_models.config import from_dict, to_dict

FORMAT_VERSION = 1
META_KEY = "__indextts_mlx_meta__"
#: The precisions a file's floating arrays may be stored in (``convert --dtype``).
DTYPES = ("float32", "float16", "bfloat16")


T = TypeVar("T")


def config_record(config: Any) -> dict[str, Any]:
    """A model configuration as a JSON-ready dict: a dataclass instance (nested dataclasses
    become dicts, tuples lists) or a mapping, checked to survive ``json.dumps``."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        record = to_dict(config)
    elif isinstance(config, Mapping):
        record = dict(config)
    else:
        raise TypeError(f"config must be a dataclass instance or a mapping, got {config!r}")
    checked: dict[str, Any] = json.loads(json.dumps(record, allow_nan=False))
    return checked


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def to_bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns (uint16) of a floating array: its float32 rounded to the
    nearest bfloat16, ties to even (as ``torch``/``mx`` ``.astype(bfloat16)``); NaN stays
    NaN."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> 16
    nan = np.isnan(array)
    out: np.ndarray = rounded.astype(np.uint16)
    if nan.any():
        out[nan] = ((bits[nan] >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)
    return out


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) → float32, exactly."""
    widened: np.ndarray = (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return widened


def cast_floats(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """``arrays`` with every floating array cast to ``dtype`` (one of :data:`DTYPES`;
    ``"bfloat16"``: float32, rounded at saving), others unchanged, emptying ``arrays`` one
    array at a time (one copy at a time coexists with the originals)."""
    _check_dtype(dtype)
    target = np.dtype(np.float16 if dtype == "float16" else np.float32)
    out = {}
    for key in list(arrays):
        value = arrays.pop(key)
        floating = np.issubdtype(value.dtype, np.floating)
        out[key] = value.astype(target) if floating and value.dtype != target else value
    return out


def save_npz(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    model: str,
    config: Any = None,
    dtype: str | None = None,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` to ``path`` atomically, with ``{"format_version", "model"}`` metadata
    (and ``"config"``: :func:`config_record` of ``config``, when given).

    ``dtype`` (one of :data:`DTYPES`): store every floating array in that precision and
    record it (bfloat16 as uint16 bit patterns, see the module docstring; a uint16 array is
    then refused, as it would read back as bfloat16). ``source``: recorded as given (what
    the file was converted from).

    The metadata is stored as a uint8 array of JSON under :data:`META_KEY`, so the file
    loads with ``allow_pickle=False``.
    """
    path = Path(path)
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY} is reserved")
    fields: dict[str, Any] = {"format_version": FORMAT_VERSION, "model": model}
    if config is not None:
        fields["config"] = config_record(config)
    if dtype is not None:
        _check_dtype(dtype)
        fields["dtype"] = dtype
        if dtype == "bfloat16":
            clashes = sorted(k for k, v in arrays.items() if v.dtype == np.uint16)
            if clashes:
                raise ValueError(f"uint16 arrays {clashes[:5]} cannot be told from bfloat16")
            arrays = {
                k: to_bfloat16_bits(v) if np.issubdtype(v.dtype, np.floating) else v
                for k, v in arrays.items()
            }
        else:
            arrays = cast_floats(dict(arrays), dtype)
    if source is not None:
        fields["source"] = json.loads(json.dumps(dict(source)))
    meta = json.dumps(fields).encode()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        header = {META_KEY: np.frombuffer(meta, dtype=np.uint8)}
        # numpy's stub lets **kwds fill savez's allow_pickle: bool; these keys are array names.
        np.savez(handle, **header, **arrays)  # type: ignore[arg-type]
    return path


#: Told the bytes each read of an NPZ file returns, while :func:`reading_progress` runs.
_ON_BYTES: ContextVar[Callable[[int], None] | None] = ContextVar("on_bytes", default=None)


@contextmanager
def reading_progress(on_bytes: Callable[[int], None]) -> Iterator[None]:
    """Call ``on_bytes(n)`` for the ``n`` bytes of every read from our NPZ files while the
    block runs (a progress bar of a model's loading: the bytes add up to about its file
    size)."""
    token = _ON_BYTES.set(on_bytes)
    try:
        yield
    finally:
        _ON_BYTES.reset(token)


class _CountingFile(io.FileIO):
    """A file that reports the size of each read (below the buffering numpy's zip sees)."""

    def __init__(self, path: Path, on_bytes: Callable[[int], None]) -> None:
        super().__init__(path, "rb")
        self._on_bytes = on_bytes

    def readinto(self, buffer: Any) -> int | None:
        n = super().readinto(buffer)
        if n:
            self._on_bytes(n)
        return n


def _open(path: Path) -> BinaryIO:
    on_bytes = _ON_BYTES.get()
    if on_bytes is None:
        return open(path, "rb")
    return io.BufferedReader(_CountingFile(path, on_bytes))


def npz_keys(path: str | Path) -> list[str]:
    """The array names of an NPZ file, without reading the arrays.

    Raises:
        WeightsError: missing file, or not an NPZ.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return [k for k in data.files if k != META_KEY]
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file: {exc}") from exc


def read_npz(path: str | Path, *, model: str | None = None) -> dict[str, np.ndarray]:
    """Read one of our NPZ files (no pickle), checking its format version and model name.

    The arrays of a bfloat16 file come back as float32 (exactly; :func:`read_dtype` says
    the file's precision).

    Raises:
        WeightsError: missing file, not an NPZ, no/unknown format version, wrong model.
    """
    return read_arrays(path, model=model)[0]


def read_arrays(
    path: str | Path, *, model: str | None = None
) -> tuple[dict[str, np.ndarray], str | None]:
    """:func:`read_npz` and :func:`read_dtype` in one read of the file."""
    meta, arrays = _read(path, model=model, arrays=True)
    dtype = meta.get("dtype")
    if dtype == "bfloat16":
        arrays = {
            k: from_bfloat16_bits(v) if v.dtype == np.uint16 else v for k, v in arrays.items()
        }
    return arrays, None if dtype is None else str(dtype)


def read_dtype(path: str | Path, *, model: str | None = None) -> str | None:
    """The precision recorded in one of our NPZ files (one of :data:`DTYPES`), or None when
    it records none (its arrays' own dtypes: float32 for every file ``convert`` wrote
    before ``--dtype``), reading only the metadata. Checks as :func:`read_npz` does."""
    dtype = _read(path, model=model, arrays=False)[0].get("dtype")
    return None if dtype is None else str(dtype)


def read_config(path: str | Path, *, model: str | None = None) -> dict[str, Any] | None:
    """The ``config`` record of one of our NPZ files (None when it has none: the official
    configuration), reading only the metadata. Checks as :func:`read_npz` does."""
    return _read(path, model=model, arrays=False)[0].get("config")


def _read(
    path: str | Path, *, model: str | None, arrays: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with _open(path) as handle, np.load(handle, allow_pickle=False) as data:
            keys = data.files if arrays else [k for k in data.files if k == META_KEY]
            found = {key: data[key] for key in keys}
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file: {exc}") from exc
    if META_KEY not in found:
        raise WeightsError(f"{path} has no format version: convert it again with indextts-weights")
    try:
        meta = json.loads(found.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"{path} has unreadable metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise WeightsError(f"{path} has unreadable metadata: {meta!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path} has format version {meta.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}: convert the checkpoints again"
        )
    if model is not None and meta.get("model") != model:
        raise WeightsError(f"{path} holds {meta.get('model')!r} weights, expected {model!r}")
    if "config" in meta and not isinstance(meta["config"], dict):
        raise WeightsError(f"{path}: its config record is not a JSON object")
    if "dtype" in meta and meta["dtype"] not in DTYPES:
        raise WeightsError(
            f"{path} records dtype {meta['dtype']!r}; this version reads {', '.join(DTYPES)}"
        )
    return meta, found


def args_from_record(cls: type[T], record: Mapping[str, Any], *, source: str = "config") -> T:
    """Rebuild the dataclass ``cls`` from a :func:`config_record` with the models' one strict
    builder (:func:`mlx_indextts_models.config.from_dict`), naming ``source`` on failure.

    Raises:
        WeightsError: a key that is not a field of ``cls``, or values it rejects.
    """
    try:
        return from_dict(cls, record)
    except ValueError as exc:
        raise WeightsError(f"{source}: config record does not fit {cls.__name__}: {exc}") from exc


def check_state(
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    *,
    source: str,
    ignored: Iterable[str] = (),
) -> None:
    """Strict comparison of a state dict with the parameter shapes a model expects.

    Args:
        arrays: name → array found.
        expected: name → shape the model needs.
        source: what is being checked (a file name), for messages.
        ignored: names that may be present and are deliberately unused.

    Raises:
        WeightsError: listing every missing, unexpected and mis-shaped key.
    """
    ignored = set(ignored)
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected) - ignored)
    misshaped = sorted(
        f"{k} {tuple(arrays[k].shape)} (expected {tuple(expected[k])})"
        for k in set(arrays) & set(expected)
        if tuple(arrays[k].shape) != tuple(expected[k])
    )
    problems = [("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)]
    detail = describe_problems(problems, limit=20)
    if detail:
        raise WeightsError(f"{source} does not fit the model: {detail}")
