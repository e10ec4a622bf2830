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


def resample(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 ``audio`` from ``sample_rate`` to ``target_rate`` Hz (librosa's
    default high-quality resampler); unchanged when the rates agree."""
    if target_rate == sample_rate:
        return audio
    import librosa

    out = librosa.resample(audio, orig_sr=sample_rate, target_sr=target_rate)
    return np.asarray(out, np.float32)


def write_audio(
    path: str | Path,
    audio: np.ndarray,
    sample_rate: int,
    audio_format: str | None = None,
    *,
    resample_to: int | None = None,
) -> Path:
    """Write mono float32 ``audio`` (``[-1, 1]``, ``sample_rate`` Hz) to ``path``: 16-bit
    PCM for WAV/FLAC (as the reference saves), the codec's default otherwise; resampled to
    ``resample_to`` Hz first when given. The file appears complete or not at all (temp
    file in the same folder, then rename)."""
    path = Path(path).expanduser()
    fmt = audio_format_for(path, audio_format)
    if resample_to is not None:
        audio, sample_rate = resample(audio, sample_rate, resample_to), resample_to
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    with atomic_path(path) as tmp:
        sf.write(tmp, np.asarray(audio, np.float32), sample_rate, format=fmt, subtype=subtype)
    return path
