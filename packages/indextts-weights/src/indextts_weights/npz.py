"""Our NPZ weight files: atomic writes, a recorded format version, strict loading."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from indextts_weights.errors import WeightsError

FORMAT_VERSION = 1
META_KEY = "__indextts_mlx_meta__"


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray], *, model: str) -> Path:
    """Write ``arrays`` to ``path`` atomically, with ``{"format_version", "model"}`` metadata.

    The metadata is stored as a uint8 array of JSON under :data:`META_KEY`, so the file
    loads with ``allow_pickle=False``.
    """
    path = Path(path)
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY} is reserved")
    meta = json.dumps({"format_version": FORMAT_VERSION, "model": model}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{META_KEY: np.frombuffer(meta, dtype=np.uint8)}, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: str | Path, *, model: str | None = None) -> dict[str, np.ndarray]:
    """Read one of our NPZ files (no pickle), checking its format version and model name.

    Raises:
        WeightsError: missing file, not an NPZ, no/unknown format version, wrong model.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file: {exc}") from exc
    if META_KEY not in arrays:
        raise WeightsError(f"{path} has no format version: convert it again with indextts-weights")
    meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path} has format version {meta.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}: convert the checkpoints again"
        )
    if model is not None and meta.get("model") != model:
        raise WeightsError(f"{path} holds {meta.get('model')!r} weights, expected {model!r}")
    return arrays


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
    problems = [
        (label, items)
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", misshaped),
        )
        if items
    ]
    if problems:
        detail = "; ".join(
            f"{label}: {', '.join(items[:20])}"
            + (f" (+{len(items) - 20} more)" if len(items) > 20 else "")
            for label, items in problems
        )
        raise WeightsError(f"{source} does not fit the model: {detail}")
