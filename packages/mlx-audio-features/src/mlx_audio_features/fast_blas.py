"""Load an optimized BLAS before MLX on Linux CPU.

The ``mlx[cpu]`` Linux wheel links against a bundled reference BLAS (netlib), which
makes fp32 matmul and convolution about 70x slower than an optimized library on the
same CPU. MLX resolves ``cblas_*`` symbols through the process's global symbol scope
first, so loading an optimized BLAS with ``RTLD_GLOBAL`` *before* the first
``import mlx.core`` makes MLX use it.

Which library:

1. ``MLX_FAST_BLAS=/path/to/libblas.so``: that library; ``MLX_FAST_BLAS=mkl`` or
   ``openblas``: that family's.
2. Otherwise the candidates are MKL from the ``mkl`` wheel (``libmkl_rt.so.*`` in the
   environment's ``lib/``, a dependency of this package on Linux x86_64) and a system
   OpenBLAS (``libopenblas.so.0``, e.g. Debian's ``libopenblas0-pthread``). When both are
   there, the faster on this machine is loaded: the first time a machine meets a set of
   candidates, each one times the products of IndexTTS-2's heavy stages
   (:mod:`mlx_audio_features.blas_probe`, in a subprocess of its own, ~1 s in all) and
   the result is kept in ``$XDG_CACHE_HOME/indextts-mlx/fast-blas.json`` (keyed by the
   CPU model, the core count and each library's path, size and mtime), so later starts
   only read it. Neither library is faster everywhere: on a 2-core AMD EPYC, OpenBLAS
   made a whole synthesis 1.16x faster than MKL (docs/performance.md), while MKL is
   the natural choice on Intel.

``MLX_FAST_BLAS=0`` (or ``off``/``false``/``no``) turns the bootstrap off. When no
library is found a one-line warning is logged. On macOS (Accelerate) and Windows
nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "BlasStatus",
    "blas_status",
    "cache_path",
    "ensure_fast_blas",
    "probe_library",
    "rank_candidates",
]

ENV_VAR = "MLX_FAST_BLAS"
_OFF_VALUES = {"0", "off", "false", "no", "none"}
_AUTO_VALUES = {"", "1", "on", "true", "yes", "auto"}
_FAMILIES = ("mkl", "openblas")
_PROBE = Path(__file__).with_name("blas_probe.py")
_PROBE_TIMEOUT_S = 120
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
        chosen_by: how the library was chosen: ``"MLX_FAST_BLAS"``, ``"only candidate"``,
            or ``"measured: <name> <ms> ms, ..."`` (the probe's milliseconds per candidate,
            fastest first; ``"(cached)"`` when read from the machine's cache).
    """

    active: bool
    name: str | None
    path: str | None
    reason: str
    chosen_by: str = ""


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


def _installed() -> list[tuple[str, str]]:
    """Every optimized library found: ``(family, path)``, MKL's first."""
    return [("mkl", p) for p in _mkl_candidates()] + [
        ("openblas", p) for p in _openblas_candidates()
    ]


def _candidates(setting: str) -> tuple[list[tuple[str, str]], bool]:
    """The libraries to try for ``MLX_FAST_BLAS=setting``, and whether the setting named
    them (a path, or a family that is installed) rather than leaving the choice to us."""
    if setting.lower() in _FAMILIES:
        named = [c for c in _installed() if c[0] == setting.lower()]
        if named:
            return named, True
        _log.warning("%s=%s: not installed here; choosing among the others", ENV_VAR, setting)
        return _installed(), False
    if setting.lower() not in _AUTO_VALUES:
        return [("custom", setting)], True
    return _installed(), False


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/indextts-mlx/fast-blas.json`` (``~/.cache/...``): the probe's
    results, per machine and set of candidates."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "indextts-mlx" / "fast-blas.json"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _machine_key(paths: list[str]) -> str:
    """The CPU model, core count and each library's path, size and mtime, hashed: a
    new CPU (the cache travels with a home folder) or an updated library measures again."""
    parts: list[object] = [_cpu_model(), os.cpu_count()]
    for path in paths:
        real = os.path.realpath(path)
        stat = os.stat(real)
        parts.append([real, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def probe_library(path: str) -> float:
    """Milliseconds of :mod:`~mlx_audio_features.blas_probe`'s products with the library
    at ``path``, measured in a subprocess (inf when the probe fails)."""
    env = {**os.environ, ENV_VAR: "0"}
    try:
        done = subprocess.run(
            [sys.executable, str(_PROBE), path],
            capture_output=True,
            text=True,
            env=env,
            timeout=_PROBE_TIMEOUT_S,
            check=True,
        )
        return float(sum(json.loads(done.stdout.strip().splitlines()[-1]).values()))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        _log.debug("BLAS probe of %s failed: %s", path, exc)
        return float("inf")


def rank_candidates(
    candidates: list[tuple[str, str]],
    *,
    measure: Callable[[str], float] = probe_library,
    cache: Path | None = None,
) -> tuple[list[tuple[str, str]], str]:
    """``candidates`` fastest first, and how that was decided (:attr:`BlasStatus.chosen_by`).

    One candidate per family is measured (the first found); with fewer than two families
    the order is kept. Measurements are read from, or written to, ``cache`` (default
    :func:`cache_path`) under this machine's key; a cache that cannot be read or written
    is ignored (measured again, next time too).
    """
    firsts: dict[str, str] = {}
    for name, path in candidates:
        firsts.setdefault(name, path)
    if len(firsts) < 2:
        return candidates, "only candidate"
    cache = cache or cache_path()
    key = _machine_key(list(firsts.values()))
    try:
        stored = json.loads(cache.read_text())
    except (OSError, ValueError):
        stored = {}
    stored = stored if isinstance(stored, dict) else {}
    entry = stored.get(key)
    kept = entry.get("ms") if isinstance(entry, dict) else None
    cached = isinstance(kept, dict) and set(kept) == set(firsts.values())
    if isinstance(kept, dict) and cached:
        timings = {path: float(ms) for path, ms in kept.items()}
    else:
        timings = {path: measure(path) for path in firsts.values()}
        stored[key] = {"cpu": _cpu_model(), "ms": timings}
        _write_json(cache, stored)
    order = sorted(firsts, key=lambda name: timings[firsts[name]])
    ranked = sorted(candidates, key=lambda c: order.index(c[0]))
    shown = ", ".join(f"{name} {timings[firsts[name]]:.1f} ms" for name in order)
    return ranked, f"measured: {shown}" + (" (cached)" if cached else "")


def _write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically; a failure is logged, not raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
            json.dump(data, tmp, indent=1)
        os.replace(tmp.name, path)
    except OSError as exc:
        _log.debug("could not write %s: %s", path, exc)


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
        candidates, named = _candidates(setting)
        if named:
            chosen_by = ENV_VAR
        else:
            candidates, chosen_by = rank_candidates(candidates)
        for name, path in candidates:
            if _try_load(path):
                _status = BlasStatus(True, name, str(Path(path)), "loaded", chosen_by)
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
