"""The first run: fetch and convert the official weights when a folder has none.

The command line does this unless told not to (``--no-download``, ``INDEXTTS_MLX_OFFLINE=1``
or ``HF_HUB_OFFLINE=1``); the Python API only when asked
(:meth:`IndexTTS2.from_pretrained <indextts_mlx.IndexTTS2.from_pretrained>` or
``IndexTTS2(download=True)``): a library must not surprise its caller with gigabytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from indextts_mlx.errors import WeightsNotFoundError, translate_errors
from indextts_weights import WeightsConfig, WeightsMissingError

__all__ = ["OFFLINE_ENV", "ensure_weights", "offline_requested"]

#: Environment variables that forbid fetching anything (either one set to 1/true/yes/on).
OFFLINE_ENV = ("INDEXTTS_MLX_OFFLINE", "HF_HUB_OFFLINE")


def offline_requested() -> bool:
    """Whether one of :data:`OFFLINE_ENV` is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in OFFLINE_ENV
    )


def _refusal(weights: WeightsConfig, missing: WeightsMissingError, why: str) -> str:
    phrase = str(missing).splitlines()[0]
    folder = weights.weights_dir
    return (
        f"{phrase} ({why})\n"
        f"get them with: indextts-weights download --out {folder}\n"
        f"or, from the official files you have: indextts-weights convert --src DIR --out {folder}"
    )


def ensure_weights(
    weights: WeightsConfig,
    *,
    download: bool = True,
    say: Callable[[str], None] | None = None,
) -> None:
    """Make sure every required file of ``weights`` exists: download and convert the
    official files into its folder when some are missing and ``download`` is allowed.

    Args:
        weights: where the converted weights are (or go).
        download: False refuses instead of fetching (as :func:`offline_requested` does).
        say: told one line at a time what happens (sizes, each file, the conversion).

    Raises:
        WeightsNotFoundError: files are missing and fetching is not allowed (the message
            gives the two commands that fix it), or still missing afterwards.
        WeightsLoadError: the download or the conversion failed (one line).
    """
    try:
        weights.validate()
        return
    except WeightsMissingError as missing:
        if not download or offline_requested():
            why = "downloading is off" if not download else "offline: " + "/".join(OFFLINE_ENV)
            raise WeightsNotFoundError(_refusal(weights, missing, why)) from missing
        present = [p.name for p in weights.files().values() if p.is_file()]
        if present:  # a folder someone filled by hand: replace nothing behind their back
            raise WeightsNotFoundError(
                f"{str(missing).splitlines()[0]}; it holds {', '.join(sorted(present))}\n"
                f"replace them all with: indextts-weights download --out {weights.weights_dir} "
                "--force"
            ) from missing
    from indextts_weights.download import download as fetch_and_convert

    tell = say or (lambda line: None)
    tell(f"first run: fetching the official IndexTTS-2 files and converting them into "
         f"{weights.weights_dir}")  # fmt: skip
    with translate_errors("first-run download"):
        fetch_and_convert(weights.weights_dir or "", progress=tell)
    with translate_errors("weights"):
        weights.validate()
