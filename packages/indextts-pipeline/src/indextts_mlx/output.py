"""Writing audio files: the format from the extension (or given), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from indextts_mlx.errors import IndexTTSError
from indextts_weights.atomic import atomic_path

#: Extension → soundfile format name.
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}


def audio_format_for(path: str | Path, audio_format: str | None = None) -> str:
    """The soundfile format for ``path`` (``audio_format`` wins: ``wav``, ``flac``, ``ogg``,
    ``mp3``); an error names the supported ones when neither says."""
    name = (audio_format or Path(path).suffix.lstrip(".")).upper()
    if f".{name.lower()}" not in FORMATS:
        raise IndexTTSError(
            f"cannot tell the audio format of {str(path)!r}: use one of "
            + ", ".join(sorted(FORMATS))
        )
    if name not in sf.available_formats():
        raise IndexTTSError(f"this libsndfile cannot write {name} files; use wav or flac")
    return name


def write_audio(
    path: str | Path, audio: np.ndarray, sample_rate: int, audio_format: str | None = None
) -> Path:
    """Write mono float32 ``audio`` (``[-1, 1]``) to ``path``: 16-bit PCM for WAV/FLAC (as
    the reference saves), the codec's default otherwise. The file appears complete or not
    at all (temp file in the same folder, then rename)."""
    path = Path(path).expanduser()
    fmt = audio_format_for(path, audio_format)
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    with atomic_path(path) as tmp:
        sf.write(tmp, np.asarray(audio, np.float32), sample_rate, format=fmt, subtype=subtype)
    return path
