"""Errors raised by ``indextts_mlx``: one hierarchy under :class:`IndexTTSError`.

Each class also derives from the builtin a caller would naturally catch
(``ValueError`` for bad input, ``FileNotFoundError`` for missing files,
``NotImplementedError`` for features not ported yet), so both
``except IndexTTSError`` and ``except ValueError`` work.
"""

from __future__ import annotations

__all__ = [
    "AudioInputError",
    "EmotionInputError",
    "FeatureNotAvailableError",
    "IndexTTSError",
    "InputTextError",
    "VoiceNotFoundError",
    "WeightsNotFoundError",
]


class IndexTTSError(Exception):
    """Base class of every error ``indextts_mlx`` raises on purpose."""


class InputTextError(IndexTTSError, ValueError):
    """The text to synthesize is unusable: empty, only whitespace/punctuation, not a
    string, or it produces no tokens after normalization."""


class AudioInputError(IndexTTSError, ValueError):
    """A speaker or emotion audio file cannot serve as a prompt: it is missing or
    unreadable (no decoder understands it), empty, shorter than the minimum prompt
    length, silent, or contains non-finite samples. The message names the file and the
    reason."""


class VoiceNotFoundError(IndexTTSError, FileNotFoundError):
    """No speaker could be resolved: the named voice is not in the voices dir (the
    message lists the available voices), a voice file path does not exist, a voice name
    would resolve outside the voices dir, a case-insensitive name is ambiguous, or no
    speaker was given at all."""


class EmotionInputError(IndexTTSError, ValueError):
    """An emotion argument is malformed: an ``emo_vector`` of the wrong length, with
    non-numbers, NaN/inf or negative values; a non-finite ``emo_alpha``; or an
    ``emotion`` scale outside [0, 2]."""


class WeightsNotFoundError(IndexTTSError, FileNotFoundError):
    """A required weights file (or the BPE model) is missing; the message names every
    missing file and how to obtain it."""


class FeatureNotAvailableError(IndexTTSError, NotImplementedError):
    """A requested feature is not ported yet, e.g. ``emo_text`` (text-to-emotion needs
    the reference's Qwen emotion model). Raised instead of silently ignoring the
    request."""
