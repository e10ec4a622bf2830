"""Speaker resolution: voice names in a voices dir, direct file paths, and the priority
between ``spk_audio_prompt``, its alias ``reference_audio`` and ``voice`` (docs/promises.md §1).

A voices dir holds ``.wav`` files (suffix matched case-insensitively); a voice's name is
the file stem. Hidden files (``.name.wav``, macOS ``._name.wav``) are not voices. A name
never resolves outside the voices dir: names with path separators or ``..``, absolute
paths and symlinks pointing outside are refused (a path that does point at a voice file
inside the dir is accepted).
"""

from __future__ import annotations

import difflib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from indextts_mlx.errors import VoiceNotFoundError

__all__ = [
    "MAX_LISTED_VOICES",
    "SpeakerRequest",
    "list_voices",
    "resolve_speaker",
    "resolve_voice",
]

#: How many voice names an error message lists.
MAX_LISTED_VOICES = 20

_SEPARATORS = ("/", "\\")


def _voices_dir(voices_dir: str | os.PathLike[str]) -> Path:
    d = Path(voices_dir).expanduser()
    if not d.is_dir():
        what = "does not exist" if not d.exists() else "is not a directory"
        raise VoiceNotFoundError(f"voices dir {str(d)!r} {what}")
    return d


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolved (symlinks followed) lies inside resolved ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # broken or looping symlink
        return False


def _voice_files(d: Path) -> dict[str, Path]:
    """``{stem: path}`` of the voice files directly in ``d`` (not hidden, ``.wav`` suffix
    in any case, a regular file after following symlinks that stay inside ``d``)."""
    voices: dict[str, Path] = {}
    for entry in sorted(d.iterdir()):
        if entry.name.startswith(".") or entry.suffix.lower() != ".wav":
            continue
        if entry.is_file() and _inside(entry, d):
            voices[entry.stem] = entry
    return voices


def list_voices(voices_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted voice names (file stems) of the ``.wav`` files in ``voices_dir``.

    Raises:
        VoiceNotFoundError: ``voices_dir`` does not exist or is not a directory.
    """
    return sorted(_voice_files(_voices_dir(voices_dir)))


def _format_available(names: list[str]) -> str:
    if not names:
        return "the voices dir has no .wav files"
    shown = ", ".join(names[:MAX_LISTED_VOICES])
    more = len(names) - MAX_LISTED_VOICES
    return f"available voices: {shown}" + (f" ... and {more} more" if more > 0 else "")


def _looks_like_path(voice: str | os.PathLike[str]) -> bool:
    text = os.fspath(voice)
    return (
        any(sep in text for sep in _SEPARATORS)
        or text.startswith("~")
        or Path(text).is_absolute()
        or text in (".", "..")
    )


def resolve_voice(
    voice: str | os.PathLike[str], voices_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The speaker file for ``voice``.

    Without ``voices_dir``, ``voice`` is a file path (``~`` expanded) that must exist.
    With ``voices_dir``, ``voice`` is a name: the exact (case-sensitive) stem first,
    else a unique case-insensitive match (with a warning); ``"Emma.wav"`` also finds
    ``Emma``. A path is accepted only if it names a voice file inside ``voices_dir``.

    Returns:
        The voice file's path (for a name: ``voices_dir / "<stem>.wav"``, ``~``
        expanded).

    Raises:
        VoiceNotFoundError: unknown name (lists the available voices), missing file,
            ambiguous case-insensitive name, or a name/path/symlink resolving outside
            ``voices_dir``.
    """
    text = os.fspath(voice)
    if not text.strip():
        raise VoiceNotFoundError("voice is empty: pass a voice name or a speaker file path")
    if voices_dir is None:
        return _voice_file(text)
    d = _voices_dir(voices_dir)
    voices = _voice_files(d)
    if "\x00" in text:
        raise VoiceNotFoundError(f"invalid voice name {text!r}")
    if _looks_like_path(voice):
        return _voice_at_path(text, d, voices)
    return _voice_named(text, d, voices)


def _voice_file(text: str) -> Path:
    """``voice`` without a voices dir: a file path that must exist."""
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise VoiceNotFoundError(
            f"voice file {str(path)!r} {what} "
            "(without voices_dir, voice is a file path; pass voices_dir to select by name)"
        )
    return path


def _voice_at_path(text: str, d: Path, voices: dict[str, Path]) -> Path:
    """A path given with a voices dir: accepted only if it is one of its voice files."""
    path = Path(text).expanduser()
    if path.is_file() and path.parent.resolve() == d.resolve():
        for file in voices.values():
            if path.resolve() == file.resolve():
                return file
    raise VoiceNotFoundError(
        f"voice {text!r} is a path, not a voice in voices dir {str(d)!r}; a voice name "
        f"never resolves outside the voices dir (omit voices_dir to use a file path). "
        f"{_format_available(sorted(voices))}"
    )


def _voice_named(text: str, d: Path, voices: dict[str, Path]) -> Path:
    """A name in the voices dir: exact stem, then a unique case-insensitive match."""
    names = sorted(voices)
    candidates = [text]
    if text.lower().endswith(".wav"):
        candidates.append(text[: -len(".wav")])
    for name in candidates:
        if name in voices:
            return voices[name]
    # A file with that exact stem exists but was excluded (symlink leaving the dir).
    for name in candidates:
        escaped = d / f"{name}.wav"
        if escaped.is_symlink() and not _inside(escaped, d):
            raise VoiceNotFoundError(
                f"voice {name!r} in {str(d)!r} is a symlink to {str(escaped.resolve())!r}, "
                "outside the voices dir; refusing to follow it"
            )
    for name in candidates:
        folded = name.casefold()
        matches = [n for n in names if n.casefold() == folded]
        if len(matches) == 1:
            warnings.warn(
                f"voice {text!r} not found with that exact case; using {matches[0]!r}",
                UserWarning,
                stacklevel=2,
            )
            return voices[matches[0]]
        if len(matches) > 1:
            raise VoiceNotFoundError(
                f"voice {text!r} is ambiguous in {str(d)!r}: it matches "
                f"{', '.join(matches)} case-insensitively; use the exact name"
            )
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise VoiceNotFoundError(
        f"voice {text!r} not found in {str(d)!r}.{hint} {_format_available(names)}"
    )


def _given(value: str | os.PathLike[str] | None) -> bool:
    return value is not None and os.fspath(value).strip() != ""


def resolve_speaker(
    spk_audio_prompt: str | os.PathLike[str] | None = None,
    reference_audio: str | os.PathLike[str] | None = None,
    voice: str | os.PathLike[str] | None = None,
    voices_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The speaker prompt file, by docs/promises.md §1's priority.

    ``spk_audio_prompt`` (or its alias ``reference_audio``; if both are given,
    ``spk_audio_prompt`` wins with a warning) > ``voice`` (+ ``voices_dir``, see
    :func:`resolve_voice`) > error. ``None`` and empty strings count as not given.

    Returns:
        The speaker file's path (``~`` expanded); the file exists.

    Raises:
        VoiceNotFoundError: the chosen file does not exist, the voice is unknown, or no
            speaker was given.
    """
    prompt = spk_audio_prompt if _given(spk_audio_prompt) else None
    if _given(reference_audio):
        if prompt is None:
            prompt = reference_audio
        else:
            warnings.warn(
                "both spk_audio_prompt and reference_audio (its old name) were given; "
                f"using spk_audio_prompt={os.fspath(prompt)!r}",
                UserWarning,
                stacklevel=2,
            )
    if prompt is not None:
        path = Path(os.fspath(prompt)).expanduser()
        if not path.is_file():
            what = "is not a file" if path.exists() else "not found"
            raise VoiceNotFoundError(f"speaker audio prompt {str(path)!r} {what}")
        return path
    if _given(voice):
        return resolve_voice(voice, voices_dir)  # type: ignore[arg-type]
    if _given(voices_dir):
        names = list_voices(voices_dir)  # type: ignore[arg-type]
        raise VoiceNotFoundError(
            f"voices_dir given but no voice chosen: pass voice=<name>. {_format_available(names)}"
        )
    raise VoiceNotFoundError(
        "no speaker given: pass spk_audio_prompt=<file> (or reference_audio=<file>), "
        "or voice=<name> with voices_dir=<folder>, or voice=<file path>"
    )


@dataclass(frozen=True)
class SpeakerRequest:
    """Which voice a synthesis asks for, under the reference's names (see
    :func:`resolve_speaker` for the priority)."""

    spk_audio_prompt: str | os.PathLike[str] | None = None
    reference_audio: str | os.PathLike[str] | None = None
    voice: str | os.PathLike[str] | None = None
    voices_dir: str | os.PathLike[str] | None = None

    def resolve(self) -> Path:
        """The speaker file (it exists); raises :class:`VoiceNotFoundError` otherwise."""
        return resolve_speaker(
            self.spk_audio_prompt, self.reference_audio, self.voice, self.voices_dir
        )
