"""Rendered segment audio on disk, keyed by a content hash, with a checksum per entry.

An entry is ``<dir>/<key[:2]>/<key>.npz`` holding the float32 audio and its SHA-256; it is
written to a temp file, synced and renamed, so a reader sees a whole entry or none, and a
damaged one (truncated, altered) reads as missing and is simply rendered again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from indextts_weights.atomic import atomic_path

#: The environment variable that moves the default cache.
ENV_CACHE_DIR = "INDEXTTS_MLX_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$INDEXTTS_MLX_CACHE_DIR``, else ``$XDG_CACHE_HOME/indextts-mlx/segments``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "indextts-mlx" / "segments"


class SegmentCache:
    """Segment audio by key in ``directory`` (default :func:`default_cache_dir`)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = (
            Path(directory).expanduser() if directory is not None else default_cache_dir()
        )

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str) -> np.ndarray | None:
        """The cached float32 ``(N,)`` audio, or None when missing or damaged."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                audio: np.ndarray = data["audio"]
                digest = str(data["sha256"])
        except Exception:  # any unreadable entry is simply rendered again
            return None
        if audio.dtype != np.float32 or audio.ndim != 1:
            return None
        if hashlib.sha256(audio.tobytes()).hexdigest() != digest:
            return None
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        """Store ``audio`` under ``key``, atomically and durably."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        digest = hashlib.sha256(audio.tobytes()).hexdigest()
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, audio=audio, sha256=np.array(digest))
            f.flush()
            os.fsync(f.fileno())
