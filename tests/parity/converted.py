"""Seeded official checkpoints converted by the user's path: ``indextts-weights convert``.

The conversion runs in the torch-free uv environment (``.venv``) as a subprocess, exactly
as a user runs it, and the subprocess asserts torch was never imported. Outputs are cached
keyed by the source checkpoints and the conversion code, so they are rebuilt when either
changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from indextts_weights.config import WEIGHT_FILES
from parity import checkpoints
from parity.harness import cache_key, parity_cache
from parity.workspace import ROOT

UV_PYTHON = ROOT / ".venv" / "bin" / "python"

# Where each official file sits in a source folder (as downloaded from the hubs).
SOURCE_LAYOUT = {
    "campplus": "campplus_cn_common.bin",
    "semantic_codec": "semantic_codec/model.safetensors",
    "w2vbert": "w2v-bert-2.0/model.safetensors",
    "semantic_stats": "wav2vec2bert_stats.pt",
    "speaker_matrix": "feat1.pt",
    "emotion_matrix": "feat2.pt",
    "gpt": "gpt.pth",
    "bigvgan": "bigvgan_generator.pt",
    "s2mel": "s2mel.pth",
}

CONVERTIBLE = tuple(SOURCE_LAYOUT)

_RUN_CONVERT = """
import sys
from indextts_weights.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    assert "torch" not in sys.modules, "conversion imported torch"
"""


def _source(name: str, seed: int) -> Path:
    if name in ("speaker_matrix", "emotion_matrix"):
        feat1, feat2 = checkpoints.emotion_matrix_checkpoints(seed)
        return feat1 if name == "speaker_matrix" else feat2
    return getattr(checkpoints, f"{name}_checkpoint")(seed)


def _code_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "packages" / "indextts-weights" / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: Seconds a converted folder of other code or seed must have been unused before it is removed.
STALE_AFTER = 3600
#: How many folders per name are kept however old (the most recently used first)...
KEEP_RECENT = 2
#: ...and how long a folder beyond those must have been unused (a concurrent run that is
#: reading it touched its marker when it started, at most a test session ago).
BUSY_FOR = 30 * 60


def _prune(folders) -> None:
    """Remove the folders whose last use (``.complete``'s mtime, else the folder's) is older
    than :data:`STALE_AFTER`, and those beyond the :data:`KEEP_RECENT` most recently used
    that are unused for :data:`BUSY_FOR`: each change of the conversion code makes a new
    folder of several GB, so a day of commits must not pile them up."""
    now = time.time()

    def used(folder: Path) -> float:
        marker = folder / ".complete"
        try:
            return (marker if marker.exists() else folder).stat().st_mtime
        except FileNotFoundError:  # another run removed it meanwhile
            return now

    by_use = sorted(((used(f), f) for f in folders), reverse=True)
    for rank, (last, folder) in enumerate(by_use):
        idle = now - last
        if idle > STALE_AFTER or (rank >= KEEP_RECENT and idle > BUSY_FOR):
            shutil.rmtree(folder, ignore_errors=True)


def _converted_file(name: str, seed: int) -> Path:
    """``<name>.npz`` converted by the real CLI from the seeded checkpoint (cached).

    One folder per name, keyed by the source checkpoint and the conversion code. Other
    folders of the same name (stale code or another seed) are removed when a new one is
    made (:func:`_prune`), but never while recently used: a run with other code (another
    checkout, a CI clone) may be reading them right now.
    """
    source = _source(name, seed)
    key = cache_key(source=source.parent.name, code=_code_digest())
    root = parity_cache() / "converted"
    out = root / f"{name}-{key}"
    target = out / WEIGHT_FILES[name]
    if (out / ".complete").exists():
        (out / ".complete").touch()  # in use: keeps it from being pruned by other runs
        return target
    if not UV_PYTHON.exists():
        raise RuntimeError(f"{UV_PYTHON} is missing: run `uv sync` (scripts/test does)")
    _prune(root.glob(f"{name}-*"))
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "official" / SOURCE_LAYOUT[name]
        link.parent.mkdir(parents=True)
        os.symlink(source, link)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        command = ["convert", "--src", str(Path(tmp) / "official"), "--out", str(out)]
        result = subprocess.run(
            [str(UV_PYTHON), "-c", _RUN_CONVERT, *command, "--only", name],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"indextts-weights convert failed:\n{result.stdout}\n{result.stderr}")
    (out / ".complete").touch()
    return target


def converted_weights(names: tuple[str, ...], seed: int = 0) -> Path:
    """Folder with the NPZ file of each of ``names`` (links to :func:`_converted_file`'s)."""
    files = [_converted_file(name, seed) for name in names]
    root = parity_cache() / "converted" / "sets"
    out = root / cache_key(files=[str(f) for f in files])
    if (out / ".complete").exists():
        return out
    for stale in root.glob("*"):  # sets pointing at removed conversions
        if any(not link.exists() for link in stale.glob("*.npz")):
            shutil.rmtree(stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for file in files:
        link = out / file.name
        if not link.is_symlink():
            os.symlink(file, link)
    (out / ".complete").touch()
    return out
