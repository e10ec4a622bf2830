"""Our NPZ weight files: atomic writes, a recorded format version, strict loading.

The metadata (a JSON object stored as a uint8 array under :data:`META_KEY`) holds
``format_version``, ``model`` and, optionally, ``config``: the model's configuration as a
JSON object (the fields of its ``Args`` dataclass, nested dataclasses as nested objects,
tuples as lists). Files without ``config`` hold the official configuration; the loaders
build a non-default model from the record (:func:`args_from_record`).
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


def save_npz(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    model: str,
    config: Any = None,
) -> Path:
    """Write ``arrays`` to ``path`` atomically, with ``{"format_version", "model"}`` metadata
    (and ``"config"``: :func:`config_record` of ``config``, when given).

    The metadata is stored as a uint8 array of JSON under :data:`META_KEY`, so the file
    loads with ``allow_pickle=False``.
    """
    path = Path(path)
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY} is reserved")
    fields: dict[str, Any] = {"format_version": FORMAT_VERSION, "model": model}
    if config is not None:
        fields["config"] = config_record(config)
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

    Raises:
        WeightsError: missing file, not an NPZ, no/unknown format version, wrong model.
    """
    return _read(path, model=model, arrays=True)[1]


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
