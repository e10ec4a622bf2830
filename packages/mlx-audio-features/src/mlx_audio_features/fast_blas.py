"""Load an optimized BLAS before MLX on Linux CPU.

The ``mlx[cpu]`` Linux wheel links against a bundled reference BLAS (netlib), which
makes fp32 matmul and convolution about 70x slower than an optimized library on the
same CPU. MLX resolves ``cblas_*`` symbols through the process's global symbol scope
first, so loading an optimized BLAS with ``RTLD_GLOBAL`` *before* the first
``import mlx.core`` makes MLX use it.

Order of preference:

1. ``MLX_FAST_BLAS=/path/to/libblas.so``: that library.
2. MKL from the ``mkl`` wheel (``libmkl_rt.so.*`` in the environment's ``lib/``), a
   dependency of this package on Linux x86_64.
3. A system OpenBLAS (``libopenblas.so.0``, e.g. Debian's ``libopenblas0``).

``MLX_FAST_BLAS=0`` (or ``off``/``false``/``no``) turns the bootstrap off. When no
library is found a one-line warning is logged. On macOS (Accelerate) and Windows
nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_VAR", "BlasStatus", "blas_status", "ensure_fast_blas"]

ENV_VAR = "MLX_FAST_BLAS"
_OFF_VALUES = {"0", "off", "false", "no", "none"}
_SYSTEM_OPENBLAS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlasStatus:
    """What the bootstrap did.

    Attributes:
        active: True when an optimized BLAS was loaded into the global symbol scope.
        name: ``"mkl"``, ``"openblas"``, ``"custom"``, or ``None``.
        path: the loaded library's path, or ``None``.
        reason: why nothing was loaded (``"not-linux"``, ``"disabled"``, ``"not-found"``,
            ``"mlx-imported-first"``), or ``"loaded"``.
    """

    active: bool
    name: str | None
    path: str | None
    reason: str


_status: BlasStatus | None = None


def _mkl_candidates() -> list[str]:
    prefixes = {sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX", "")}
    found: list[str] = []
    for prefix in filter(None, prefixes):
        found += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")), reverse=True)
    return found


def _openblas_candidates() -> list[str]:
    found = [p for p in _SYSTEM_OPENBLAS if os.path.exists(p)]
    name = ctypes.util.find_library("openblas")
    if name:
        found.append(name)
    return found


def _candidates(setting: str) -> list[tuple[str, str]]:
    if setting and setting.lower() not in {"1", "on", "true", "yes", "auto"}:
        return [("custom", setting)]
    return [("mkl", p) for p in _mkl_candidates()] + [
        ("openblas", p) for p in _openblas_candidates()
    ]


def _try_load(path: str) -> bool:
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        _log.debug("could not load %s: %s", path, exc)
        return False
    return hasattr(lib, "cblas_sgemm")


def ensure_fast_blas() -> BlasStatus:
    """Load an optimized BLAS into the global symbol scope, once per process.

    Must run before the first ``import mlx.core`` to take effect; every package of
    this project calls it from its ``__init__``. Idempotent.

    Returns:
        The :class:`BlasStatus` of this process.
    """
    global _status
    if _status is not None:
        return _status
    setting = os.environ.get(ENV_VAR, "").strip()
    if not sys.platform.startswith("linux"):
        _status = BlasStatus(False, None, None, "not-linux")
    elif setting.lower() in _OFF_VALUES:
        _status = BlasStatus(False, None, None, "disabled")
    elif "mlx.core" in sys.modules:
        _status = BlasStatus(False, None, None, "mlx-imported-first")
        _log.warning(
            "mlx.core was imported before %s; MLX keeps its slow reference BLAS. "
            "Import this package first (or set %s=0 to silence).",
            __package__,
            ENV_VAR,
        )
    else:
        for name, path in _candidates(setting):
            if _try_load(path):
                _status = BlasStatus(True, name, str(Path(path)), "loaded")
                break
        else:
            _status = BlasStatus(False, None, None, "not-found")
            _log.warning(
                "No optimized BLAS found (install the 'mkl' wheel or libopenblas0); "
                "MLX CPU matmul will be ~70x slower. Set %s=0 to silence.",
                ENV_VAR,
            )
    return _status


def blas_status() -> BlasStatus:
    """The bootstrap's result for this process (runs it if it has not run)."""
    return ensure_fast_blas()
