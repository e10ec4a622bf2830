"""Speaker and emotion prompt audio, loaded exactly as the reference loads it.

Reference (``indextts/infer_v2.py``, docs/data-flow.md steps 3 and 11):

* speaker: ``_load_and_cut_audio(path, 15)`` = ``librosa.load(path)`` (default
  ``sr=22050``, mono, float32, librosa's soxr resampler), first 15 s kept (330 750
  samples); then ``torchaudio.transforms.Resample(22050, 22050)`` (identity) gives
  ``audio_22k`` and ``Resample(22050, 16000)`` (Hann-windowed sinc, width 6, rolloff
  0.99) gives ``audio_16k``. We use :func:`mlx_audio_features.resample`, which equals
  torchaudio's resampler.
* emotion: ``_load_and_cut_audio(path, 15, sr=16000)`` = ``librosa.load(path,
  sr=16000)`` first 15 s (240 000 samples). Even when the emotion audio is the speaker
  file, this 16 kHz signal differs slightly from ``audio_16k``.

Stereo (or more channels) is mixed down by librosa (``mono=True``: the mean of the
channels), as in the reference. On top of the reference, prompts are validated and
rejected with :class:`~indextts_mlx.errors.AudioInputError` when missing, unreadable,
empty, shorter than :data:`MIN_PROMPT_SECONDS`, silent (peak below
:data:`SILENCE_PEAK`) or non-finite.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indextts_mlx.errors import AudioInputError

__all__ = [
    "EMOTION_SAMPLE_RATE",
    "MAX_PROMPT_SECONDS",
    "MIN_PROMPT_SECONDS",
    "SILENCE_PEAK",
    "SPEAKER_SAMPLE_RATE",
    "SpeakerAudio",
    "file_digest",
    "load_emotion_audio",
    "load_speaker_audio",
]

#: ``librosa.load``'s default rate; the reference's speaker audio and mel rate.
SPEAKER_SAMPLE_RATE = 22050
#: Rate of the w2v-bert / CAMPPlus input and of the emotion audio.
EMOTION_SAMPLE_RATE = 16000
#: The reference keeps the first 15 s of every prompt.
MAX_PROMPT_SECONDS = 15
#: Shorter prompts are rejected (the reference accepts them but conditions poorly).
MIN_PROMPT_SECONDS = 0.5
#: Prompts whose absolute peak (after loading and cutting) is below this are silent.
SILENCE_PEAK = 1e-4


@dataclass(frozen=True, eq=False)  # numpy fields: no generated __eq__
class SpeakerAudio:
    """The speaker prompt at both rates the pipeline needs.

    Attributes:
        audio_22k: float32 ``(N,)`` at 22 050 Hz, ``N <= 330 750`` (mel, ``ref_mel``).
        audio_16k: float32 ``(M,)`` at 16 kHz, ``M = ceil(N * 320 / 441)`` (w2v-bert
            features, CAMPPlus fbank).
    """

    audio_22k: np.ndarray
    audio_16k: np.ndarray

    @property
    def seconds(self) -> float:
        """Duration of the (cut) prompt in seconds."""
        return float(self.audio_22k.shape[0] / SPEAKER_SAMPLE_RATE)


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the file's bytes (a conditioning cache key by content, so a
    renamed copy hits the cache and an edited file in place does not).

    Raises:
        AudioInputError: the file is missing or unreadable.
    """
    p = Path(path).expanduser()
    digest = hashlib.sha256()
    try:
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise AudioInputError(f"cannot read audio file {str(p)!r}: {err}") from err
    return digest.hexdigest()


def _librosa_load(path: Path, sr: int | None, role: str) -> tuple[np.ndarray, int]:
    """``librosa.load`` with the reference's arguments, errors turned into
    :class:`AudioInputError` naming the file."""
    if not path.exists():
        raise AudioInputError(f"{role} audio file {str(path)!r} does not exist")
    if not path.is_file():
        raise AudioInputError(f"{role} audio {str(path)!r} is not a file")
    import librosa

    try:
        with warnings.catch_warnings():
            # librosa falls back to audioread (with a UserWarning and a FutureWarning)
            # when soundfile cannot decode the file; either way the result is the same.
            warnings.filterwarnings("ignore", message="PySoundFile failed")
            warnings.filterwarnings("ignore", category=FutureWarning, module="librosa")
            if sr is None:
                audio, rate = librosa.load(str(path))
            else:
                audio, rate = librosa.load(str(path), sr=sr)
    except librosa.util.exceptions.ParameterError as err:  # decoded, but e.g. NaN/inf
        raise AudioInputError(f"{role} audio file {str(path)!r} is invalid: {err}") from err
    except Exception as err:  # soundfile, audioread, EOFError, ...: all mean unreadable
        reason = str(err) or type(err).__name__
        raise AudioInputError(
            f"cannot read {role} audio file {str(path)!r} ({type(err).__name__}: {reason}); "
            "use a WAV/FLAC/OGG/MP3 file"
        ) from err
    return np.asarray(audio, dtype=np.float32), int(rate)


def _cut_and_check(audio: np.ndarray, rate: int, path: Path, role: str) -> np.ndarray:
    """Validate the loaded signal and keep its first :data:`MAX_PROMPT_SECONDS`."""
    name = str(path)
    if audio.ndim != 1:  # librosa's mono=True always gives (N,)
        raise AudioInputError(f"{role} audio file {name!r}: expected mono, got {audio.shape}")
    if audio.shape[0] == 0:
        raise AudioInputError(f"{role} audio file {name!r} is empty (no samples)")
    seconds = audio.shape[0] / rate
    if seconds < MIN_PROMPT_SECONDS:
        raise AudioInputError(
            f"{role} audio file {name!r} is too short ({seconds:.3f} s); "
            f"a prompt needs at least {MIN_PROMPT_SECONDS} s (3-15 s of speech works best)"
        )
    audio = audio[: int(MAX_PROMPT_SECONDS * rate)]
    if not np.isfinite(audio).all():
        raise AudioInputError(f"{role} audio file {name!r} contains NaN or infinite samples")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise AudioInputError(
            f"{role} audio file {name!r} is silent (peak {peak:.2e} < {SILENCE_PEAK:g}"
            f" in its first {MAX_PROMPT_SECONDS} s)"
        )
    return audio


def load_speaker_audio(path: str | os.PathLike[str]) -> SpeakerAudio:
    """Load a speaker prompt as the reference does (docs/data-flow.md step 3).

    Args:
        path: any file soundfile/librosa can decode; ``~`` is expanded; stereo is mixed
            down; any sample rate.

    Returns:
        :class:`SpeakerAudio` with ``audio_22k`` float32 ``(N,)``, ``N <= 330 750``, and
        ``audio_16k`` float32 ``(ceil(N * 320 / 441),)``.

    Raises:
        AudioInputError: missing, unreadable, empty, too short, silent or non-finite.
    """
    p = Path(path).expanduser()
    audio, rate = _librosa_load(p, None, "speaker")
    if rate != SPEAKER_SAMPLE_RATE:  # librosa.load's default; guards a librosa change
        raise AudioInputError(f"librosa loaded {str(p)!r} at {rate} Hz, expected 22050")
    audio_22k = _cut_and_check(audio, rate, p, "speaker")

    from mlx_audio_features import resample

    resampled = resample(audio_22k, orig_freq=SPEAKER_SAMPLE_RATE, new_freq=EMOTION_SAMPLE_RATE)
    audio_16k = np.array(resampled, dtype=np.float32, copy=True)
    return SpeakerAudio(audio_22k=np.ascontiguousarray(audio_22k), audio_16k=audio_16k)


def load_emotion_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Load an emotion prompt as the reference does (docs/data-flow.md step 11):
    ``librosa.load(path, sr=16000)``, first 15 s.

    Returns:
        float32 ``(M,)`` at 16 kHz, ``M <= 240 000``.

    Raises:
        AudioInputError: missing, unreadable, empty, too short, silent or non-finite.
    """
    p = Path(path).expanduser()
    audio, rate = _librosa_load(p, EMOTION_SAMPLE_RATE, "emotion")
    return np.ascontiguousarray(_cut_and_check(audio, rate, p, "emotion"))
