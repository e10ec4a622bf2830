"""The configuration each converted model is built at, read from the official config files.

Upstream builds its models from files that ship beside the checkpoints, and so does the
converter; it records the result in each NPZ (``config``), which the ``load_*`` functions
build the model from:

- ``config.yaml`` of ``IndexTeam/IndexTTS-2`` (found in the source folder or beside
  ``gpt.pth``/``s2mel.pth``): the GPT and its conditioning (``cfg.gpt``), S2Mel (``cfg.s2mel``:
  DiT, WaveNet, length regulator) and the semantic codec (``cfg.semantic_codec``);
- ``config.json`` beside ``facebook/w2v-bert-2.0``'s ``model.safetensors`` (W2V-BERT, of
  which the first 17 layers are kept) and beside ``bigvgan_generator.pt`` (BigVGAN);
- CAMPPlus has no config file: upstream builds ``CAMPPlus(feat_dim=80, embedding_size=192)``;
- the plain tables take their width from the model they feed (stats: W2V-BERT's hidden
  size; ``feat2.pt``: the GPT's width; ``feat1.pt``: CAMPPlus's embedding).

A model whose config file is absent is built at IndexTTS-2's published configuration (the
``Args`` defaults). :func:`read_yaml_config` checks ``config.yaml`` first: every key we read
must be there, and the settings the pipeline fixes rather than the models' ``Args`` (the mel
and sample-rate settings, the style width, the 8192 semantic codes and the GPT's mel-code
ids, ``emo_num``, the vocoder, ``version: 2.0``) must be IndexTTS-2's, or conversion stops
with one error listing each key (expected vs found) and naming the version (an IndexTTS-2.5
folder is never converted as IndexTTS-2). Sizes that differ from the published ones (a
smaller or deeper model) are read and reported; the conversion then checks every tensor
against the model built at them, so a config that does not describe its checkpoint stops
there.

YAML is parsed with PyYAML's ``safe_load``, imported only when a ``config.yaml`` is there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indextts_weights.errors import WeightsError
from indextts_weights.load import expected_arrays
from mlx_indextts_models.bigvgan import BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlusArgs
from mlx_indextts_models.config import VectorArgs, from_dict, own_fields
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.s2mel.regulator import RegulatorArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs
from mlx_indextts_models.semantic_codec import SemanticCodecArgs
from mlx_indextts_models.w2vbert import SEMANTIC_LAYER, W2VBertArgs

__all__ = [
    "CONFIG_NAME",
    "EXPECTED_VERSION",
    "FIXED_KEYS",
    "JSON_CONFIG_NAME",
    "ModelConfig",
    "config_mismatches",
    "config_with",
    "expected_config",
    "find_config",
    "load_yaml",
    "model_configs",
    "read_json_config",
    "read_yaml_config",
]

CONFIG_NAME = "config.yaml"
JSON_CONFIG_NAME = "config.json"
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
_SPECT = "s2mel.preprocess_params.spect_params"
#: ``config.yaml`` keys the pipeline fixes (not a model's ``Args``): they must hold
#: IndexTTS-2's values (:func:`expected_config`).
FIXED_KEYS = frozenset(
    {
        "version",
        "vocoder.type",
        "vocoder.name",
        "emo_num",
        "gpt.use_mel_codes_as_input",
        "gpt.number_mel_codes",
        "gpt.start_mel_token",
        "gpt.stop_mel_token",
        "semantic_codec.codebook_size",
        "s2mel.style_encoder.dim",
        "s2mel.DiT.in_channels",
        "s2mel.preprocess_params.sr",
        *(f"{_SPECT}.{k}" for k in ("hop_length", "n_mels", "n_fft", "win_length", "fmin", "fmax")),
    }
)
#: ``config.json`` values the pipeline fixes (its 160-wide SeamlessM4T features, 80-bin
#: 22,050 Hz mels of 256 samples).
_FIXED_JSON: dict[str, dict[str, object]] = {
    "w2vbert": {"model_type": "wav2vec2-bert", "feature_projection_input_dim": 160},
    "bigvgan": {"num_mels": 80, "sampling_rate": 22050, "hop_size": 256},
}
_MISSING = object()


@dataclass(frozen=True)
class ModelConfig:
    """The configuration one output file's model is built at.

    Attributes:
        args: the model's ``Args`` (``VectorArgs`` for a plain table).
        origin: where it comes from, for the progress line (a config file's path, or why
            the published configuration is used).
    """

    args: Any
    origin: str


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
    """Dotted ``config.yaml`` key → IndexTTS-2's published value: every key the converter
    reads (the defaults of our ``Args``) and every one it requires (:data:`FIXED_KEYS`)."""
    s2mel = S2MelArgs()
    vocoder = BigVGANArgs()
    # the GPT's and the conditioning's model_dim are one key (equal, UnifiedVoiceArgs checks)
    expected: dict[str, object] = dict(_fields("gpt", UnifiedVoiceArgs()))
    expected |= dict(_fields("s2mel.DiT", s2mel.dit))
    expected |= dict(_fields("s2mel.wavenet", s2mel.wavenet))
    expected |= dict(_fields("s2mel.length_regulator", s2mel.regulator))
    expected |= dict(_fields("semantic_codec", SemanticCodecArgs()))
    expected |= {
        "s2mel.style_encoder.dim": CAMPPlusArgs().embedding_size,  # the CFM's style_dim
        "s2mel.preprocess_params.sr": vocoder.sampling_rate,
        f"{_SPECT}.hop_length": vocoder.hop_size,
        f"{_SPECT}.n_mels": DiTArgs().in_channels,
        f"{_SPECT}.n_fft": 1024,
        f"{_SPECT}.win_length": 1024,
        f"{_SPECT}.fmin": 0,
        f"{_SPECT}.fmax": "None",
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
    """The ``config.yaml`` to read: ``src_dir/config.yaml``, else one beside a chosen
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


def _refusal(
    path: Path, config: Mapping[str, Any], problems: list[tuple[str, object, object]]
) -> WeightsError:
    version = config.get("version")
    if version is not None and not _same(EXPECTED_VERSION, version):
        head = (
            f"{path} is the config of IndexTTS version {version}; this converter is for "
            f"IndexTTS-2 (version {EXPECTED_VERSION})"
        )
    else:
        head = f"{path} does not describe the IndexTTS-2 models this converter builds"
    listed = "; ".join(f"{key}: expected {exp!r}, found {got!r}" for key, exp, got in problems)
    return WeightsError(
        f"{head}: {len(problems)} key(s) differ: {listed}. Convert the folder of the "
        "official IndexTeam/IndexTTS-2 files, or move config.yaml aside to convert at the "
        "published configuration"
    )


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _lookup(config, key)
    return value if isinstance(value, Mapping) else {}


def _built(path: Path, name: str, build: Callable[[], Any]) -> Any:
    """``build()``, checked by building the model ``name`` at it (lazily: nothing is
    computed), with a rejection of a value (an unsupported variant, heads that do not
    divide the width) as one error naming ``path``."""
    try:
        args = build()
        expected_arrays(name, args)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: {name}: {exc}") from exc
    return args


def read_yaml_config(path: Path) -> tuple[dict[str, ModelConfig], list[str]]:
    """The GPT's, S2Mel's and the semantic codec's configurations from ``config.yaml``.

    Returns:
        ``({"gpt", "s2mel", "semantic_codec"} → ModelConfig, notes)``; ``notes``: one line
        per size that differs from IndexTTS-2's published one (``key: published → found``).

    Raises:
        WeightsError: a key we read is absent, a key of :data:`FIXED_KEYS` differs (naming
            the version when the file says one other than 2.0), or a value is one the
            models do not implement.
    """
    config = load_yaml(path)
    mismatches = config_mismatches(config)
    fatal = [m for m in mismatches if m[0] in FIXED_KEYS or m[2] == "<absent>"]
    if fatal:
        raise _refusal(path, config, fatal)

    def s2mel() -> S2MelArgs:
        def part(cls: type, key: str) -> Any:
            return from_dict(cls, own_fields(cls, _section(config, f"s2mel.{key}")))

        return S2MelArgs(
            dit=part(DiTArgs, "DiT"),
            wavenet=part(WaveNetArgs, "wavenet"),
            regulator=part(RegulatorArgs, "length_regulator"),
        )

    codec = _section(config, "semantic_codec")
    args = {
        "gpt": _built(path, "gpt", lambda: UnifiedVoiceArgs.from_config(_section(config, "gpt"))),
        "s2mel": _built(path, "s2mel", s2mel),
        "semantic_codec": _built(
            path,
            "semantic_codec",
            lambda: from_dict(SemanticCodecArgs, own_fields(SemanticCodecArgs, codec)),
        ),
    }
    notes = [f"{key}: published {exp!r}, this file {got!r}" for key, exp, got in mismatches]
    return {name: ModelConfig(a, str(path)) for name, a in args.items()}, notes


def config_with(
    config: Mapping[str, Any],
    *,
    gpt: UnifiedVoiceArgs | None = None,
    s2mel: S2MelArgs | None = None,
    semantic_codec: SemanticCodecArgs | None = None,
) -> dict[str, Any]:
    """A copy of ``config.yaml``'s ``config`` with the sizes of the given models written
    in: the inverse of :func:`read_yaml_config` (``read_yaml_config`` of the result gives
    these ``Args`` back), for describing a model of other sizes, e.g. a test's."""
    out: dict[str, Any] = json.loads(json.dumps(config))  # a deep copy of plain values
    values: dict[str, object] = {}
    if gpt is not None:
        values |= dict(_fields("gpt", gpt))
    if s2mel is not None:
        values |= dict(_fields("s2mel.DiT", s2mel.dit))
        values |= dict(_fields("s2mel.wavenet", s2mel.wavenet))
        values |= dict(_fields("s2mel.length_regulator", s2mel.regulator))
    if semantic_codec is not None:
        values |= dict(_fields("semantic_codec", semantic_codec))
    for key, value in values.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def read_json_config(path: Path, model: str) -> ModelConfig | None:
    """W2V-BERT's or BigVGAN's configuration from the ``config.json`` at ``path``; None
    when that file is another model's (a flat folder holds one ``config.json`` for two).

    W2V-BERT is built with the 17 layers the converter keeps (``hidden_states[17]``).

    Raises:
        WeightsError: the file is not JSON, the config has fewer than 17 layers, a value
            the pipeline fixes differs (:data:`_FIXED_JSON`), or one the model does not
            implement.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        return None
    if model == "w2vbert" and data.get("model_type") != "wav2vec2-bert":
        return None
    if model == "bigvgan" and "upsample_rates" not in data:
        return None
    fixed = _FIXED_JSON[model]
    wrong = [(k, v, data.get(k, "<absent>")) for k, v in fixed.items() if not _same(v, data.get(k))]
    if wrong:
        listed = "; ".join(f"{key}: expected {exp!r}, found {got!r}" for key, exp, got in wrong)
        raise WeightsError(f"{path} does not describe the {model} IndexTTS-2 uses: {listed}")
    if model == "w2vbert":
        layers = data.get("num_hidden_layers", W2VBertArgs().num_hidden_layers)
        if not isinstance(layers, int) or layers < SEMANTIC_LAYER:
            raise WeightsError(
                f"{path}: num_hidden_layers is {layers!r}; IndexTTS-2 needs {SEMANTIC_LAYER}"
            )
        record = {**own_fields(W2VBertArgs, data), "num_hidden_layers": SEMANTIC_LAYER}
        return ModelConfig(_built(path, model, lambda: from_dict(W2VBertArgs, record)), str(path))
    args = _built(path, model, lambda: from_dict(BigVGANArgs, own_fields(BigVGANArgs, data)))
    if args.upsample_factor != args.hop_size:
        raise WeightsError(
            f"{path}: upsample_rates multiply to {args.upsample_factor}, not hop_size "
            f"{args.hop_size}"
        )
    return ModelConfig(args, str(path))


_PUBLISHED = "IndexTTS-2's published configuration"
#: The sources that lie beside ``config.yaml`` in ``IndexTeam/IndexTTS-2``.
_BESIDE_YAML = frozenset(
    {"gpt", "s2mel", "semantic_stats", "speaker_matrix", "emotion_matrix", "bpe_model"}
)


def model_configs(
    src_dir: Path, sources: Mapping[str, Path]
) -> tuple[dict[str, ModelConfig], list[str]]:
    """The configuration of every output file, from the config files of this module's
    docstring (``sources``: converter name, or ``"bpe_model"``, → the official file chosen).

    Returns:
        ``(name → ModelConfig, notes)`` for every converter name; ``notes``: the sizes of
        ``config.yaml`` that differ from the published ones (:func:`read_yaml_config`).
    """
    yaml_path = find_config(src_dir, [p for n, p in sources.items() if n in _BESIDE_YAML])
    notes: list[str] = []
    if yaml_path is not None:
        configs, notes = read_yaml_config(yaml_path)
    else:
        why = f"{_PUBLISHED} (no {CONFIG_NAME} found)"
        configs = {
            "gpt": ModelConfig(UnifiedVoiceArgs(), why),
            "s2mel": ModelConfig(S2MelArgs(), why),
            "semantic_codec": ModelConfig(SemanticCodecArgs(), why),
        }
    defaults = {"w2vbert": W2VBertArgs(num_hidden_layers=SEMANTIC_LAYER), "bigvgan": BigVGANArgs()}
    for model, default in defaults.items():
        source = sources.get(model)
        beside = source.parent / JSON_CONFIG_NAME if source is not None else None
        found = read_json_config(beside, model) if beside and beside.is_file() else None
        configs[model] = found or ModelConfig(
            default, f"{_PUBLISHED} (no {model} {JSON_CONFIG_NAME} beside its checkpoint)"
        )
    configs["campplus"] = ModelConfig(
        CAMPPlusArgs(), "upstream's fixed CAMPPlus(feat_dim=80, embedding_size=192)"
    )
    widths = {
        "semantic_stats": ("w2vbert", configs["w2vbert"].args.hidden_size),
        "emotion_matrix": ("gpt", configs["gpt"].args.model_dim),
        "speaker_matrix": ("campplus", configs["campplus"].args.embedding_size),
    }
    for name, (feeds, dim) in widths.items():
        configs[name] = ModelConfig(VectorArgs(dim), f"the width of {feeds} ({dim})")
    return configs, notes
