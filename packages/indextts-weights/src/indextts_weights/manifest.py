"""``manifest.json``: what a weights folder holds, and checks of a folder against it.

The manifest records, for every output file of ``indextts-weights convert`` (the NPZ
files and ``bpe.model``), its size, SHA-256 and format version, and for NPZ files the
name, shape and dtype of every array and their element count, the precision the file
was converted to (``dtype``) and what it was converted from (``source``: the official
file's name and how many of its tensors each stored dtype had, e.g. ``{"float16": 300}``).
:func:`verify` compares a folder with it; :func:`inventory` describes a folder
(``indextts-weights info``).
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indextts_weights.atomic import atomic_path
from indextts_weights.config import OPTIONAL, WEIGHT_FILES, WeightsConfig
from indextts_weights.errors import WeightsError
from indextts_weights.npz import FORMAT_VERSION, META_KEY

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
BPE_NAME = "bpe.model"
OPTIONAL_FILES = frozenset(WEIGHT_FILES[n] for n in OPTIONAL)


def npz_index(
    path: str | Path,
) -> tuple[dict[str, Any], dict[str, tuple[tuple[int, ...], str]]]:
    """The metadata and ``name → (shape, dtype)`` of one of our NPZ files, from the array
    headers only (no array data is read, so this is fast on multi-GB files).

    Raises:
        WeightsError: missing file, not a readable NPZ, no metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    index: dict[str, tuple[tuple[int, ...], str]] = {}
    meta: dict[str, Any] | None = None
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                name = member[:-4] if member.endswith(".npy") else member
                with archive.open(member) as handle:
                    if name == META_KEY:
                        meta = json.loads(np.lib.format.read_array(handle).tobytes().decode())
                        continue
                    version = np.lib.format.read_magic(handle)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(handle)
                index[name] = (tuple(int(n) for n in shape), np.dtype(dtype).name)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file: {exc}") from exc
    if not isinstance(meta, dict):
        raise WeightsError(f"{path} has no format version: convert it again with indextts-weights")
    return meta, index


def known_files() -> tuple[str, ...]:
    """Every file name a weights folder may hold (sorted NPZ names, then ``bpe.model``)."""
    return (*sorted(WEIGHT_FILES.values()), BPE_NAME)


def required_files() -> tuple[str, ...]:
    """The file names that must be present (:class:`WeightsConfig`'s non-optional files)."""
    config = WeightsConfig(weights_dir=Path("."), bpe_model=Path(BPE_NAME))
    return tuple(sorted(config.path(n).name for n in config.files() if n not in OPTIONAL))


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def human_size(size: int) -> str:
    """``1536`` → ``"1.5 KiB"`` (binary units)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def describe_file(path: str | Path) -> dict[str, Any]:
    """The manifest entry of one file: size, sha256, format version; for an NPZ file also
    ``model``, ``dtype`` (recorded precision, or None), ``source`` (when recorded),
    ``arrays`` (name → ``{"shape", "dtype"}``) and ``parameters``.

    Raises:
        WeightsError: an NPZ file is unreadable.
    """
    path = Path(path)
    entry: dict[str, Any] = {
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
        "format_version": None,
    }
    if path.suffix == ".npz":
        meta, index = npz_index(path)
        entry["format_version"] = meta.get("format_version")
        entry["model"] = meta.get("model")
        # the precision of its floating arrays, and the source's stored dtypes (convert)
        entry["dtype"] = meta.get("dtype")
        if "source" in meta:
            entry["source"] = meta["source"]
        entry["parameters"] = sum(math.prod(shape) for shape, _ in index.values())
        entry["arrays"] = {
            name: {"shape": list(shape), "dtype": dtype} for name, (shape, dtype) in index.items()
        }
    return entry


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none.

    Raises:
        WeightsError: the manifest exists but is not a manifest this version reads.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise WeightsError(f"{path} is not an indextts-weights manifest (no 'files')")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise WeightsError(
            f"{path} has manifest version {manifest.get('manifest_version')}, this version "
            f"reads {MANIFEST_VERSION}: convert the checkpoints again"
        )
    return manifest


def write_manifest(folder: str | Path, files: dict[str, dict[str, Any]]) -> Path:
    """Write ``manifest.json`` in ``folder`` atomically (temp file + rename)."""
    folder = Path(folder)
    from indextts_weights import __version__

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "npz_format_version": FORMAT_VERSION,
        "tool": f"indextts-weights {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": dict(sorted(files.items())),
    }
    path = folder / MANIFEST_NAME
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    return path


def update_manifest(folder: str | Path, written: Iterable[str | Path]) -> Path:
    """Record ``written`` (just made) in ``folder``'s manifest, keeping the entries of the
    other known files still present (re-described when they are absent from the old
    manifest or their size changed). Entries of files no longer present are dropped."""
    folder = Path(folder)
    fresh = {Path(p).name for p in written}
    try:
        old = (read_manifest(folder) or {}).get("files", {})
    except WeightsError:
        old = {}
    files: dict[str, dict[str, Any]] = {}
    for name in sorted(set(known_files()) | set(old) | fresh):
        path = folder / name
        if not path.is_file():
            continue
        previous = old.get(name)
        if name in fresh or previous is None or previous.get("size") != path.stat().st_size:
            files[name] = describe_file(path)
        else:
            files[name] = previous
    return write_manifest(folder, files)


@dataclass(frozen=True)
class FileCheck:
    """One line of ``verify``'s report."""

    name: str
    status: str  # ok, missing, size mismatch, hash mismatch, shape mismatch, unreadable,
    # absent (optional file not there), unrecorded (present, not in the manifest)
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "absent", "unrecorded")


def _check_npz_readable(path: Path) -> str | None:
    """None when ``path`` is one of our NPZ files in the current format, else why not."""
    try:
        meta, _ = npz_index(path)
    except WeightsError as exc:
        return str(exc).replace(f"{path} ", "")
    if meta.get("format_version") != FORMAT_VERSION:
        return f"format version {meta.get('format_version')}, expected {FORMAT_VERSION}"
    return None


def _check_against(path: Path, entry: dict[str, Any], *, hashes: bool) -> FileCheck:
    name = path.name
    if not path.is_file():
        return FileCheck(name, "missing", f"recorded in {MANIFEST_NAME}")
    size = path.stat().st_size
    if size != entry.get("size"):
        return FileCheck(name, "size mismatch", f"{size} bytes, manifest says {entry.get('size')}")
    if "arrays" in entry:
        try:
            meta, index = npz_index(path)
        except WeightsError as exc:
            return FileCheck(name, "unreadable", str(exc).replace(f"{path} ", ""))
        expected = {k: (tuple(v["shape"]), v["dtype"]) for k, v in entry["arrays"].items()}
        if index != expected:
            differ = sorted(set(index) ^ set(expected)) + sorted(
                k for k in set(index) & set(expected) if index[k] != expected[k]
            )
            shown = ", ".join(differ[:5]) + (
                f" (+{len(differ) - 5} more)" if len(differ) > 5 else ""
            )
            return FileCheck(name, "shape mismatch", f"arrays differ: {shown}")
        if meta.get("format_version") != entry.get("format_version"):
            return FileCheck(
                name,
                "unreadable",
                f"format version {meta.get('format_version')}, manifest says "
                f"{entry.get('format_version')}",
            )
    if hashes:
        digest = sha256_file(path)
        recorded = entry.get("sha256")
        if digest != recorded:
            return FileCheck(
                name,
                "hash mismatch",
                f"sha256 {digest[:12]}…, manifest {str(recorded)[:12]}…",
            )
    return FileCheck(name, "ok", human_size(size))


def verify(folder: str | Path, *, hashes: bool = True) -> tuple[list[FileCheck], bool]:
    """Check a weights folder.

    With a manifest: every recorded file exists with the recorded size, NPZ array shapes
    and dtypes, and (``hashes``) SHA-256. Always: every required file is present and
    every NPZ file not in the manifest is readable.

    Returns:
        (one :class:`FileCheck` per file, whether a manifest was found).

    Raises:
        WeightsError: the folder does not exist or its manifest is unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder not found: {folder}")
    manifest = read_manifest(folder)
    recorded = manifest["files"] if manifest else {}
    required = set(required_files())
    checks = []
    for name in sorted(set(known_files()) | set(recorded)):
        path = folder / name
        if name in recorded:
            checks.append(_check_against(path, recorded[name], hashes=hashes))
        elif not path.is_file():
            if name in required:
                checks.append(FileCheck(name, "missing", "required"))
            elif name in OPTIONAL_FILES:
                checks.append(FileCheck(name, "absent", "optional; enables emo_vector"))
        else:
            problem = _check_npz_readable(path) if path.suffix == ".npz" else None
            size = human_size(path.stat().st_size)
            if problem:
                checks.append(FileCheck(name, "unreadable", problem))
            elif manifest:
                checks.append(FileCheck(name, "unrecorded", f"{size}, not in {MANIFEST_NAME}"))
            else:
                checks.append(FileCheck(name, "ok", f"{size}, present and readable"))
    return checks, manifest is not None


@dataclass(frozen=True)
class FileInfo:
    """One file of a weights folder, for ``indextts-weights info``."""

    name: str
    size: int | None  # None: not there
    parameters: int | None = None
    format_version: int | None = None
    model: str | None = None
    problem: str = ""
    dtype: str | None = None  # the precision the file records (convert --dtype), if any


def inventory(folder: str | Path) -> list[FileInfo]:
    """Every known file of ``folder`` (and any other the manifest records), present or not,
    with its size and, for NPZ files, element count and format version (array headers
    only: fast on large files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder not found: {folder}")
    try:
        recorded = (read_manifest(folder) or {}).get("files", {})
    except WeightsError:
        recorded = {}
    rows = []
    for name in sorted(set(known_files()) | set(recorded)):
        path = folder / name
        if not path.is_file():
            rows.append(FileInfo(name, None))
            continue
        size = path.stat().st_size
        if path.suffix != ".npz":
            rows.append(FileInfo(name, size))
            continue
        try:
            meta, index = npz_index(path)
        except WeightsError as exc:
            rows.append(FileInfo(name, size, problem=str(exc).replace(f"{path} ", "")))
            continue
        count = sum(math.prod(shape) for shape, _ in index.values())
        rows.append(
            FileInfo(
                name,
                size,
                count,
                meta.get("format_version"),
                meta.get("model"),
                dtype=meta.get("dtype"),
            )
        )
    return rows
