"""Put this checkout's packages first on ``sys.path``, with the BLAS torch uses.

The parity venv is shared by every clone on the machine (it is cached by requirements
hash), and its ``.pth`` file names the packages of whichever clone ran
``scripts/parity-venv`` last. Parity code calls :func:`use_this_checkout` before
importing our packages so it always tests the code beside it.

The reference and our code share one process here, and the library our fast-BLAS
bootstrap loads into the global symbol scope serves torch too: with OpenBLAS (which the
bootstrap may measure as the faster on a machine that has both) the reference's DiT ran
4.6x slower on a 2-core AMD EPYC (5.35 s per CFG step instead of 1.15). So unless
``MLX_FAST_BLAS`` says otherwise, :func:`use_this_checkout` asks for MKL, the library
torch's CPU wheels are built with (the bootstrap falls back to its own choice where MKL is
not installed): the benchmarks that time both sides in one process call it before
importing our packages. ``bench_synthesize.py``, whose sides run in processes of their
own, gives ours the bootstrap's choice. The pytest run imports ``mlx_audio_features``
from the root ``conftest.py`` first, so the parity tests run with the machine's choice
(the suite passes with either library).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: ``MLX_FAST_BLAS`` as the caller set it (None: unset), before :func:`use_this_checkout`.
CALLER_FAST_BLAS = os.environ.get("MLX_FAST_BLAS")


def use_this_checkout() -> None:
    os.environ.setdefault("MLX_FAST_BLAS", "mkl")
    sources = sorted(str(p) for p in (ROOT / "packages").glob("*/src"))
    sys.path[:0] = [s for s in sources if s not in sys.path[: len(sources)]]
