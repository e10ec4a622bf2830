"""``WeightsConfig``: where the converted weights live, and a check that they are all there."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from indextts_weights.errors import WeightsMissingError

ENV_WEIGHTS_DIR = "INDEXTTS_MLX_WEIGHTS_DIR"
ENV_BPE_MODEL = "INDEXTTS_MLX_BPE_MODEL"

# field name -> file name in the weights dir (docs/promises.md §4)
WEIGHT_FILES: dict[str, str] = {
    "bigvgan": "bigvgan.npz",
    "campplus": "campplus.npz",
    "emotion_matrix": "emotion_matrix.npz",
    "gpt": "gpt.npz",
    "s2mel": "s2mel_pytorch.npz",
    "semantic_codec": "semantic_codec.npz",
    "semantic_stats": "semantic_stats.npz",
    "speaker_matrix": "speaker_matrix.npz",
    "w2vbert": "w2vbert.npz",
}
OPTIONAL = frozenset({"emotion_matrix", "speaker_matrix"})  # together they enable emo_vector

#: The one command that puts every file in place (``{dir}``: the weights folder).
HOW_TO_GET = "get them with: indextts-weights download --out {dir}"


def default_weights_dir() -> Path:
    """``$INDEXTTS_MLX_WEIGHTS_DIR``, else ``$XDG_DATA_HOME/indextts-mlx/weights``
    (``~/.local/share/indextts-mlx/weights``)."""
    env = os.environ.get(ENV_WEIGHTS_DIR)
    if env:
        return Path(env).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "indextts-mlx" / "weights"


@dataclass
class WeightsConfig:
    """Paths of the converted weight files and the BPE model.

    Every per-file path defaults to its standard name (:data:`WEIGHT_FILES`) inside
    ``weights_dir``; give a path to override one file. ``bpe_model`` defaults to
    ``$INDEXTTS_MLX_BPE_MODEL`` or ``weights_dir / "bpe.model"``.
    """

    weights_dir: Path | str | None = None
    bpe_model: Path | str | None = None
    bigvgan: Path | str | None = None
    campplus: Path | str | None = None
    emotion_matrix: Path | str | None = None
    gpt: Path | str | None = None
    s2mel: Path | str | None = None
    semantic_codec: Path | str | None = None
    semantic_stats: Path | str | None = None
    speaker_matrix: Path | str | None = None
    w2vbert: Path | str | None = None

    def __post_init__(self) -> None:
        self.weights_dir = (
            Path(self.weights_dir).expanduser() if self.weights_dir else default_weights_dir()
        )
        bpe = self.bpe_model or os.environ.get(ENV_BPE_MODEL)
        self.bpe_model = Path(bpe).expanduser() if bpe else self.weights_dir / "bpe.model"
        for name, filename in WEIGHT_FILES.items():
            value = getattr(self, name)
            path = Path(value).expanduser() if value else self.weights_dir / filename
            setattr(self, name, path)

    def path(self, name: str) -> Path:
        """Path of the file called ``name`` (a :data:`WEIGHT_FILES` key or ``"bpe_model"``)."""
        if name != "bpe_model" and name not in WEIGHT_FILES:
            raise KeyError(f"unknown weights file {name!r}; known: {sorted(WEIGHT_FILES)}")
        return Path(getattr(self, name))

    def files(self) -> dict[str, Path]:
        """Every file this config names, including the optional ones."""
        return {
            f.name: Path(getattr(self, f.name))
            for f in fields(self)
            if f.name in WEIGHT_FILES or f.name == "bpe_model"
        }

    def missing(self, *, require: tuple[str, ...] | None = None) -> list[str]:
        """Names of required files that do not exist (all non-optional files by default)."""
        names = (
            require if require is not None else tuple(n for n in self.files() if n not in OPTIONAL)
        )
        return [n for n in names if not self.path(n).is_file()]

    def validate(self, *, require: tuple[str, ...] | None = None, emotion: bool = False) -> None:
        """Raise one :class:`WeightsMissingError` naming what is missing and the command
        that gets it.

        Args:
            require: the files needed (default: every non-optional file).
            emotion: also require ``emotion_matrix`` and ``speaker_matrix`` (``emo_vector``).
        """
        names = (
            list(require) if require is not None else [n for n in self.files() if n not in OPTIONAL]
        )
        if emotion:
            names += [n for n in sorted(OPTIONAL) if n not in names]
        missing = self.missing(require=tuple(names))
        if missing:
            raise WeightsMissingError(
                self._describe_missing(missing) + "\n" + HOW_TO_GET.format(dir=self.weights_dir)
            )

    def _describe_missing(self, missing: list[str]) -> str:
        """One phrase: "no weights in DIR", or which files DIR lacks."""
        if set(missing) >= {n for n in self.files() if n not in OPTIONAL}:
            return f"no IndexTTS-2 weights in {self.weights_dir}"
        root = Path(str(self.weights_dir))
        names = [p.name if p.parent == root else str(p) for p in (self.path(n) for n in missing)]
        return f"weights in {self.weights_dir} are incomplete: missing {', '.join(names)}"
