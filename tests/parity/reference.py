"""Import the reference implementation's pieces inside the parity venv.

The reference (PyPI ``indextts2-inference``, import name ``indextts``) runs heavy imports
in ``indextts/__init__.py`` (the whole inference class, hub code). We register bare
package modules whose ``__path__`` points at the installed folders and import only the
submodules a test needs. ``torchaudio`` 2.11 is installed ``--no-deps`` beside torch 2.13:
its C extension cannot load, but the pure-Python ``compliance.kaldi`` and
``functional``/``transforms`` resampling work once the package, ``torchaudio.functional``
and ``torchaudio.transforms`` are bare packages and ``torchaudio._extension`` is a stub.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _bare_package(name: str) -> types.ModuleType:
    """Register ``name`` as a package module without running its ``__init__``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not installed in this environment (use the parity venv)")
    module = types.ModuleType(name)
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    module.__package__ = name
    module.__spec__ = spec
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _torchaudio_extension_stub() -> None:
    if "torchaudio._extension" in sys.modules:
        return
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_RIR_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False

    def _passthrough(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda func: func

    for name in ("fail_if_no_rir", "fail_if_no_align", "fail_if_no_sox", "fail_if_no_ffmpeg"):
        setattr(stub, name, _passthrough)
    sys.modules["torchaudio._extension"] = stub


def install_torchaudio_shim() -> None:
    """Make ``torchaudio`` importable beside torch 2.13 (pure-Python parts only).

    Must run before anything imports ``torchaudio`` (transformers does, lazily); the
    parity conftest calls it first thing.
    """
    _bare_package("torchaudio")
    _torchaudio_extension_stub()
    for pkg in ("torchaudio.functional", "torchaudio.transforms", "torchaudio.compliance"):
        _bare_package(pkg)


def torchaudio_module(submodule: str) -> types.ModuleType:
    """Import ``torchaudio.<submodule>`` (e.g. ``compliance.kaldi``, ``transforms._transforms``)."""
    install_torchaudio_shim()
    return importlib.import_module(f"torchaudio.{submodule}")


def reference_module(submodule: str) -> types.ModuleType:
    """Import ``indextts.<submodule>`` without running ``indextts/__init__.py``."""
    _bare_package("indextts")
    parts = submodule.split(".")
    for i in range(1, len(parts)):
        _bare_package("indextts." + ".".join(parts[:i]))
    return importlib.import_module(f"indextts.{submodule}")


def reference_version() -> str:
    """Version string of the reference stack, part of every cache key."""
    from importlib.metadata import version

    return "-".join(
        f"{dist}{version(dist)}" for dist in ("indextts2-inference", "torch", "transformers")
    )


def reference_root() -> Path:
    """Folder of the installed reference package."""
    return Path(_bare_package("indextts").__path__[0])
