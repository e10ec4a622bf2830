"""Put this checkout's packages first on ``sys.path``.

The parity venv is shared by every clone on the machine (it is cached by requirements
hash), and its ``.pth`` file names the packages of whichever clone ran
``scripts/parity-venv`` last. Parity code calls :func:`use_this_checkout` before
importing our packages so it always tests the code beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def use_this_checkout() -> None:
    sources = sorted(str(p) for p in (ROOT / "packages").glob("*/src"))
    sys.path[:0] = [s for s in sources if s not in sys.path[: len(sources)]]
