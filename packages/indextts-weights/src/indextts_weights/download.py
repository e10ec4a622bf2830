"""Fetch the official IndexTTS-2 checkpoints from the Hugging Face Hub, then convert them.

Needs the optional ``huggingface_hub`` (``pip install 'indextts-weights[download]'``).
Files land in a cache folder as ``<cache>/<repo id>/<file name>`` (a layout that
:func:`indextts_weights.convert.convert` finds), so a second run downloads nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from indextts_weights.config import WEIGHT_FILES
from indextts_weights.convert import CONVERTERS, convert
from indextts_weights.errors import WeightsError
from indextts_weights.manifest import BPE_NAME, human_size

# (repo id, file name): what infer_v2.py's IndexTTS2.__init__ reads (docs/checkpoints.md).
OFFICIAL_FILES: tuple[tuple[str, str], ...] = (
    ("IndexTeam/IndexTTS-2", "gpt.pth"),
    ("IndexTeam/IndexTTS-2", "s2mel.pth"),
    ("IndexTeam/IndexTTS-2", "bpe.model"),
    ("IndexTeam/IndexTTS-2", "wav2vec2bert_stats.pt"),
    ("IndexTeam/IndexTTS-2", "feat1.pt"),
    ("IndexTeam/IndexTTS-2", "feat2.pt"),
    ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
    ("funasr/campplus", "campplus_cn_common.bin"),
    ("facebook/w2v-bert-2.0", "model.safetensors"),
    ("nvidia/bigvgan_v2_22khz_80band_256x", "bigvgan_generator.pt"),
)

INSTALL_HINT = "pip install 'indextts-weights[download]'"

# Exception class names (anywhere in the MRO) that mean "the hub could not be reached".
_NETWORK_ERRORS = frozenset(
    {
        "LocalEntryNotFoundError",  # huggingface_hub: no connection and nothing cached
        "OfflineModeIsEnabled",
        "ConnectionError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "TimeoutException",
        "NetworkError",
        "ProxyError",
        "SSLError",
    }
)


class DownloadError(WeightsError):
    """A file could not be fetched (no ``huggingface_hub``, no network, hub refusal)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/indextts-mlx/official`` (``~/.cache/indextts-mlx/official``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "indextts-mlx" / "official"


def _is_network_error(exc: BaseException) -> bool:
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def fetch_file(repo_id: str, filename: str, cache_dir: Path) -> Path:
    """Download ``repo_id``'s ``filename`` to ``cache_dir / repo_id / filename`` (skipped
    when already there and up to date) and return its path.

    Raises:
        DownloadError: ``huggingface_hub`` is not installed, the hub is unreachable, or it
            refused the file.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise DownloadError(
            f"downloading needs huggingface_hub, which is not installed: {INSTALL_HINT}"
        ) from exc
    try:
        path = hf_hub_download(repo_id, filename, local_dir=str(cache_dir / repo_id))
    except Exception as exc:
        if _is_network_error(exc):
            raise DownloadError(
                f"cannot reach the Hugging Face Hub to fetch {repo_id}/{filename} "
                f"({type(exc).__name__}): check the network connection (or HF_ENDPOINT / "
                "proxy settings) and try again"
            ) from exc
        raise DownloadError(
            f"could not download {repo_id}/{filename}: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return Path(path)


def download(
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fetch every file of :data:`OFFICIAL_FILES` into ``cache_dir``, then convert them
    into ``out_dir`` (with its ``manifest.json``).

    The outputs are checked before anything is fetched: existing ones are an error
    unless ``force``.

    Returns:
        :func:`~indextts_weights.convert.convert`'s name → written path.

    Raises:
        DownloadError: a file could not be fetched.
        WeightsError: outputs exist (without ``force``) or conversion failed.
    """
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    outputs = [WEIGHT_FILES[n] for n in CONVERTERS] + [BPE_NAME]
    existing = [name for name in outputs if (out_dir / name).exists()]
    if existing and not force:
        raise WeightsError(
            f"refusing to overwrite {len(existing)} existing file(s) in {out_dir}: "
            f"{', '.join(existing)} (pass --force to replace them)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    total = len(OFFICIAL_FILES)
    for index, (repo_id, filename) in enumerate(OFFICIAL_FILES, 1):
        start = time.perf_counter()
        path = fetch_file(repo_id, filename, cache_dir)
        if progress:
            progress(
                f"[{index}/{total}] {repo_id}/{filename}: {human_size(path.stat().st_size)} "
                f"in {time.perf_counter() - start:.2f} s (in {path.parent})"
            )
    return convert(cache_dir, out_dir, force=force, progress=progress)
