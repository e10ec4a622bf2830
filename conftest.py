"""Loaded by pytest before any test module.

1. This checkout's packages come first on ``sys.path`` (the parity venv is shared by all
   clones on a machine; see ``tests/parity/workspace.py``).
2. ``mlx_audio_features`` is imported before anything imports ``mlx.core``, so MLX binds
   to the fast BLAS on Linux (an ``import mlx.core`` sorted first in a test module would
   otherwise leave the reference BLAS in place for the whole session).
"""

import sys
from pathlib import Path

_SOURCES = sorted(str(p) for p in (Path(__file__).parent / "packages").glob("*/src"))
sys.path[:0] = [s for s in _SOURCES if s not in sys.path]

import mlx_audio_features  # noqa: E402, F401
