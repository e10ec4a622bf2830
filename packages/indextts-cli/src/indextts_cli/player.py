"""Playing a rendered file through whatever audio player the system has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

#: Players tried in order: (program, arguments before the file).
PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("afplay", ()),  # macOS
    ("paplay", ()),  # PulseAudio / PipeWire
    ("pw-play", ()),
    ("aplay", ("-q",)),  # ALSA
    ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "error")),
    ("play", ("-q",)),  # sox
)


class NoPlayerError(RuntimeError):
    """No known audio player is installed."""


def find_player() -> list[str]:
    """The command (without the file) of the first installed player."""
    for program, args in PLAYERS:
        path = shutil.which(program)
        if path:
            return [path, *args]
    names = ", ".join(p for p, _ in PLAYERS)
    hint = "install sox or ffmpeg" if sys.platform != "darwin" else "afplay should exist"
    raise NoPlayerError(f"no audio player found (tried {names}); {hint}, or use --out FILE")


def play(path: Path) -> None:
    """Play ``path`` and wait until it ends."""
    subprocess.run([*find_player(), str(path)], check=True)
