"""Check the official ``config.yaml`` beside the checkpoints against what we build.

Our models are built at IndexTTS-2's configuration from the defaults of their ``Args``
dataclasses (``UnifiedVoiceArgs()``, ``S2MelArgs()``, ...), not from a yaml file. When
the source folder holds ``config.yaml`` (``IndexTeam/IndexTTS-2`` ships it next to
``gpt.pth``), :func:`check_source_config` compares every value of it we hard-code —
the GPT and its conditioning (``cfg.gpt``), S2Mel (``cfg.s2mel``: DiT, WaveNet, length
regulator, style width, mel settings), the semantic codec, ``emo_num``, the vocoder, and
``version`` — and stops with one error listing each differing key (expected vs found), so
that another model's folder (an IndexTTS-2.5 one) is never converted as IndexTTS-2.

The yaml is parsed with PyYAML's ``safe_load``, imported only when a ``config.yaml`` is
there (the runtime packages import no yaml at module import).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from indextts_weights.errors import WeightsError
from mlx_indextts_models.bigvgan import BigVGANArgs
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.semantic_codec import SemanticCodecArgs

__all__ = [
    "CONFIG_NAME",
    "EXPECTED_VERSION",
    "check_source_config",
    "config_mismatches",
    "expected_config",
    "find_config",
    "load_yaml",
]

CONFIG_NAME = "config.yaml"
#: The ``version`` of the IndexTTS-2 config this converter is for.
EXPECTED_VERSION = 2.0
#: Fields of our dataclasses that the official config does not hold (our own settings or
#: constructor constants upstream hard-codes).
_NOT_IN_CONFIG = {
    "gpt": {"max_conditioning_inputs", "feature_size", "emo_dim", "condition_num_latent"},
    "s2mel.length_regulator": {"groups", "out_channels"},
    "semantic_codec": {"num_quantizers", "downsample_scale"},
}
_VOCODER = "nvidia/bigvgan_v2_22khz_80band_256x"
_MISSING = object()


def _fields(prefix: str, args: Any) -> Iterator[tuple[str, object]]:
    """``(dotted key, value)`` of a dataclass's fields under ``prefix``, nested dataclasses
    flattened into the same section (``cfg.gpt`` mixes the GPT's and the conditioning's),
    except those named like an upstream sub-section (``condition_module``), tuples as
    lists; the fields of :data:`_NOT_IN_CONFIG` left out."""
    skipped = _NOT_IN_CONFIG.get(prefix, set())
    for field in dataclasses.fields(args):
        value = getattr(args, field.name)
        if field.name in skipped:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if field.name == "conditioning":  # cfg.gpt is flat: conditioning keys beside
                yield from _fields(prefix, value)
            else:
                yield from _fields(f"{prefix}.{field.name}", value)
        else:
            yield f"{prefix}.{field.name}", _plain(value)


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def expected_config() -> dict[str, object]:
    """Dotted ``config.yaml`` key → the value our models are built with by default."""
    s2mel = S2MelArgs()
    vocoder = BigVGANArgs()
    # the GPT's and the conditioning's model_dim are one key (equal, UnifiedVoiceArgs checks)
    expected: dict[str, object] = dict(_fields("gpt", UnifiedVoiceArgs()))
    expected |= dict(_fields("s2mel.DiT", s2mel.dit))
    expected |= dict(_fields("s2mel.wavenet", s2mel.wavenet))
    expected |= dict(_fields("s2mel.length_regulator", s2mel.regulator))
    expected |= dict(_fields("semantic_codec", SemanticCodecArgs()))
    spect = "s2mel.preprocess_params.spect_params"
    expected |= {
        "s2mel.style_encoder.dim": 192,  # DiT/CFM style_dim, CAMPPlus's embedding
        "s2mel.preprocess_params.sr": vocoder.sampling_rate,
        f"{spect}.hop_length": vocoder.hop_size,
        f"{spect}.n_mels": DiTArgs().in_channels,
        f"{spect}.n_fft": 1024,
        f"{spect}.win_length": 1024,
        f"{spect}.fmin": 0,
        f"{spect}.fmax": "None",
        "gpt.use_mel_codes_as_input": True,  # UnifiedVoice embeds mel codes
        "emo_num": list(EMO_NUM),
        "vocoder.type": "bigvgan",
        "vocoder.name": _VOCODER,
        "version": EXPECTED_VERSION,
    }
    return expected


def _lookup(config: Mapping[str, Any], key: str) -> object:
    node: object = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _same(expected: object, found: object) -> bool:
    if isinstance(expected, bool) or isinstance(found, bool):
        return type(expected) is type(found) and expected == found
    if isinstance(expected, (int, float)) and isinstance(found, (int, float)):
        return float(expected) == float(found)
    if isinstance(expected, list) and isinstance(found, (list, tuple)):
        return len(expected) == len(found) and all(map(_same, expected, found))
    return type(expected) is type(found) and expected == found


def config_mismatches(
    config: Mapping[str, Any], expected: Mapping[str, object] | None = None
) -> list[tuple[str, object, object]]:
    """``(key, expected, found)`` for every key of ``expected`` (default
    :func:`expected_config`) whose value in ``config`` differs (found ``<absent>`` when the
    key is not there), in key order."""
    expected = expected_config() if expected is None else expected
    out: list[tuple[str, object, object]] = []
    for key in sorted(expected):
        found = _lookup(config, key)
        if found is _MISSING:
            out.append((key, expected[key], "<absent>"))
        elif not _same(expected[key], found):
            out.append((key, expected[key], found))
    return out


def find_config(src_dir: Path, candidates: Iterable[Path] = ()) -> Path | None:
    """The ``config.yaml`` to check: ``src_dir/config.yaml``, else one beside a chosen
    source (``candidates``: e.g. the path of ``gpt.pth`` in a hub snapshot); None when
    there is none."""
    for folder in (src_dir, *(Path(p).parent for p in candidates)):
        path = folder / CONFIG_NAME
        if path.is_file():
            return path
    return None


def load_yaml(path: Path) -> Mapping[str, Any]:
    """``path`` parsed with PyYAML's ``safe_load`` (imported here, not at module import).

    Raises:
        WeightsError: PyYAML is missing, the file is not YAML, or not a mapping.
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - a dependency of indextts-weights
        raise WeightsError(
            f"{path}: reading it needs PyYAML (pip install pyyaml), or move it aside"
        ) from exc
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WeightsError(f"{path} is not readable YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise WeightsError(f"{path} is not a YAML mapping (found {type(data).__name__})")
    return data


def check_source_config(path: Path) -> None:
    """Stop when the official ``config.yaml`` at ``path`` differs from what we build.

    Raises:
        WeightsError: one message listing each differing key (``key: expected X, found
            Y``), naming the version when the file says one other than 2.0.
    """
    config = load_yaml(path)
    mismatches = config_mismatches(config)
    if not mismatches:
        return
    version = config.get("version")
    if version is not None and not _same(EXPECTED_VERSION, version):
        head = (
            f"{path} is the config of IndexTTS version {version}; this converter is for "
            f"IndexTTS-2 (version {EXPECTED_VERSION})"
        )
    else:
        head = f"{path} does not describe the IndexTTS-2 models this converter builds"
    listed = "; ".join(f"{key}: expected {exp!r}, found {got!r}" for key, exp, got in mismatches)
    raise WeightsError(
        f"{head}: {len(mismatches)} key(s) differ: {listed}. Convert the folder of the "
        "official IndexTeam/IndexTTS-2 files, or move config.yaml aside to convert anyway"
    )
