"""Errors raised by ``indextts_mlx``: one hierarchy under :class:`IndexTTSError`.

Each class also derives from the builtin a caller would naturally catch
(``ValueError`` for bad input, ``FileNotFoundError`` for missing files,
``NotImplementedError`` for features not ported yet), so both
``except IndexTTSError`` and ``except ValueError`` work.

What the lower packages raise (``indextts_weights.WeightsError``, a model's
``ValueError``, a corrupt file's ``BadZipFile``) becomes one of these in one place,
:func:`translate_errors`, which the model set and the synthesis stages run inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from indextts_weights import WeightsError, WeightsMissingError

__all__ = [
    "AudioInputError",
    "EmotionInputError",
    "FeatureNotAvailableError",
    "IndexTTSError",
    "InputTextError",
    "ModelInputError",
    "VoiceNotFoundError",
    "WeightsLoadError",
    "WeightsNotFoundError",
    "translate_errors",
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


class WeightsLoadError(IndexTTSError, OSError):
    """A weights file exists but cannot be loaded: it is unreadable, truncated or corrupt,
    was written for another model, or its shapes or configuration do not fit the model.
    The message names the file; converting it again with ``indextts-weights convert``
    (or ``indextts-weights verify``) is the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)  # one argument: not an (errno, strerror) pair


class ModelInputError(IndexTTSError, ValueError):
    """A model stage rejected its input (a shape, length or id outside what the loaded
    model supports, e.g. more codes than the GPT's position table holds). The message
    names the stage."""


@contextmanager
def translate_errors(where: str, *, loading: bool = False) -> Iterator[None]:
    """Run a block whose failures must reach the caller as :class:`IndexTTSError`.

    ``where`` names the work in the message (``"loading bigvgan.npz"``, ``"gpt"``). With
    ``loading``, every failure is the file's fault (:class:`WeightsLoadError`): reading
    and building a model touch nothing else. Otherwise a missing weights file becomes
    :class:`WeightsNotFoundError`, any other weights problem :class:`WeightsLoadError` and
    a model's ``ValueError`` :class:`ModelInputError`; errors of ours pass unchanged and
    anything else (a bug) propagates as it is.
    """
    try:
        yield
    except IndexTTSError:
        raise
    except WeightsMissingError as e:
        raise WeightsNotFoundError(str(e)) from e
    except WeightsError as e:
        raise WeightsLoadError(f"{where}: {e}") from e
    except ValueError as e:
        if loading:
            raise WeightsLoadError(f"{where}: {e}") from e
        raise ModelInputError(f"{where}: {e}") from e
    except Exception as e:
        if not loading:
            raise
        raise WeightsLoadError(f"{where}: {type(e).__name__}: {e}") from e
