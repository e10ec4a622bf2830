"""Convert the official IndexTTS-2 checkpoints into our NPZ files, without torch.

Each output file has a :class:`Converter`: where its official source lies under the
source folder, how to unwrap the checkpoint, and the pure mapping that turns the
official state dict into ours. Conversion reads with the torch-free readers, maps, checks
every array against the model built at the configuration the official config files give
(:mod:`indextts_weights.source_config`), and writes atomically with the format version and
that configuration recorded (the ``load_*`` functions build the model from it).
"""

from __future__ import annotations

import importlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indextts_weights.atomic import atomic_path
from indextts_weights.config import OPTIONAL, WEIGHT_FILES
from indextts_weights.errors import WeightsError
from indextts_weights.load import expected_arrays
from indextts_weights.manifest import BPE_NAME, human_size, update_manifest
from indextts_weights.npz import DTYPES, cast_floats, check_state, save_npz
from indextts_weights.readers import read_checkpoint
from indextts_weights.readers.dtypes import recording_dtypes
from indextts_weights.source_config import ModelConfig, model_configs
from indextts_weights.sources import SourcePlan, Wanted, find_source, plan_sources
from mlx_indextts_models.config import VectorArgs
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.s2mel.model import S2MelArgs

__all__ = [
    "CONVERTERS",
    "Converter",
    "convert",
    "convert_file",
    "find_source",
    "report_configs",
    "source_plan",
    "wanted_sources",
]


#: A converter's mapping: (unwrapped checkpoint, the model's ``Args``) → arrays to save.
MapFn = Callable[[object, Any], dict[str, np.ndarray]]


def _stats(obj: object, args: VectorArgs) -> dict[str, np.ndarray]:
    """``wav2vec2bert_stats.pt`` ``{'mean', 'var'}`` → ``{'mean', 'std'}`` (std = sqrt(var) in
    float32, as the reference computes it), each ``(args.dim,)``."""
    if not isinstance(obj, dict) or set(obj) != {"mean", "var"}:
        raise WeightsError("wav2vec2bert_stats.pt must hold exactly {'mean', 'var'}")
    mean = np.asarray(obj["mean"], dtype=np.float32)
    var = np.asarray(obj["var"], dtype=np.float32)
    dim = (args.dim,)
    if mean.shape != dim or var.shape != dim or np.any(var <= 0):
        raise WeightsError(f"wav2vec2bert_stats.pt: expected mean/var of shape {dim}, var > 0")
    return {"mean": mean, "std": np.sqrt(var)}


def _matrix(obj: object, args: VectorArgs) -> dict[str, np.ndarray]:
    """``feat1.pt``/``feat2.pt``: one ``(73, args.dim)`` tensor (the emotion groups' rows)."""
    shape = (sum(EMO_NUM), args.dim)
    array = np.asarray(obj, dtype=np.float32) if isinstance(obj, np.ndarray) else None
    if array is None or array.shape != shape:
        found = getattr(obj, "shape", type(obj).__name__)
        raise WeightsError(f"expected a {shape} tensor, found {found}")
    return {"weight": array}


def sanitize_in_groups(
    sanitize: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    state: dict[str, np.ndarray],
    group_of: Callable[[str], str],
) -> dict[str, np.ndarray]:
    """``sanitize(state)``, run on one group of keys at a time, emptying ``state``.

    For a mapping that copies much of a large file (``gpt.pth``'s transposed GPT-2
    weights): each group's official arrays leave ``state`` as the group is converted, so
    they can be freed once nothing else holds them, and the copies never coexist with all
    the originals. ``group_of`` must put together the keys that ``sanitize`` needs to see
    at once. Every group is converted before the errors, all named, are raised.

    Raises:
        WeightsError: the problems of every group, in one message.
    """
    groups: dict[str, list[str]] = {}
    for key in state:
        groups.setdefault(group_of(key), []).append(key)
    out: dict[str, np.ndarray] = {}
    problems = []
    for keys in groups.values():
        try:
            out |= sanitize({k: state.pop(k) for k in keys})
        except WeightsError as exc:
            problems.append(str(exc))
    if problems:
        raise WeightsError("; ".join(problems))
    return out


def _mapping(module: str) -> MapFn:
    """The converter of a ``mapping.<module>.sanitize`` (whose key set does not depend on
    the configuration: the shapes are checked after it); when that module defines
    ``group_of``, it runs group by group (:func:`sanitize_in_groups`) on the reader's dict,
    which nothing else holds."""

    def convert(obj: object, args: Any) -> dict[str, np.ndarray]:
        if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
            raise WeightsError("expected a flat state dict of tensors")
        mapping = importlib.import_module(f"indextts_weights.mapping.{module}")
        sanitize: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = mapping.sanitize
        group_of: Callable[[str], str] | None = getattr(mapping, "group_of", None)
        if group_of is None:
            return sanitize(obj)
        return sanitize_in_groups(sanitize, obj, group_of)

    return convert


def _s2mel(obj: object, args: S2MelArgs) -> dict[str, np.ndarray]:
    """``s2mel.pth``'s ``net`` (sub-model → state dict) → ``s2mel_pytorch.npz`` arrays, for
    the DiT depth, WaveNet layers and regulator blocks of ``args``."""
    from indextts_weights.mapping.s2mel import sanitize

    if not isinstance(obj, dict) or not all(isinstance(v, dict) for v in obj.values()):
        raise WeightsError("expected {'net': {'cfm': ..., 'length_regulator': ..., ...}}")
    return sanitize(obj, args)


@dataclass(frozen=True)
class Converter:
    """How one output file is made.

    Attributes:
        name: the :data:`~indextts_weights.config.WEIGHT_FILES` key.
        patterns: globs, relative to the source folder, that find the official file
            (first pattern with exactly one match wins).
        convert: (unwrapped checkpoint object, the model's ``Args``) → arrays to save.
        unwrap: keys to descend into when present (e.g. ``("model",)``).
        origin: where users get the official file.
    """

    name: str
    patterns: tuple[str, ...]
    convert: MapFn
    unwrap: tuple[str, ...] = ()
    origin: str = ""

    @property
    def output(self) -> str:
        return WEIGHT_FILES[self.name]


CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (
        Converter(
            "campplus",
            ("campplus_cn_common.bin", "**/campplus_cn_common.bin"),
            _mapping("campplus"),
            origin="funasr/campplus: campplus_cn_common.bin",
        ),
        Converter(
            "semantic_codec",
            (
                "semantic_codec/model.safetensors",
                "**/semantic_codec/model.safetensors",
                # upstream index-tts's current hf_cache copy (utils/model_download.py)
                "semantic_codec_model.safetensors",
                "**/semantic_codec_model.safetensors",
            ),
            _mapping("semantic_codec"),
            origin="amphion/MaskGCT: semantic_codec/model.safetensors",
        ),
        Converter(
            "w2vbert",
            (
                "w2v-bert-2.0/model.safetensors",
                "**/w2v-bert-2.0/model.safetensors",
                "**/models--facebook--w2v-bert-2.0/snapshots/*/model.safetensors",
            ),
            _mapping("w2vbert"),
            origin="facebook/w2v-bert-2.0: model.safetensors",
        ),
        Converter(
            "gpt",
            ("gpt.pth", "**/gpt.pth"),
            _mapping("gpt"),
            unwrap=("model",),  # utils/checkpoint.py: load_checkpoint unwraps 'model' if present
            origin="IndexTeam/IndexTTS-2: gpt.pth",
        ),
        Converter(
            "bigvgan",
            ("bigvgan_generator.pt", "**/bigvgan_generator.pt"),
            _mapping("bigvgan"),
            unwrap=("generator",),  # BigVGAN._from_pretrained loads checkpoint["generator"]
            origin="nvidia/bigvgan_v2_22khz_80band_256x: bigvgan_generator.pt",
        ),
        Converter(
            "s2mel",
            ("s2mel.pth", "**/s2mel.pth"),
            _s2mel,
            unwrap=("net",),  # s2mel/modules/commons.py: load_checkpoint2 reads state['net']
            origin="IndexTeam/IndexTTS-2: s2mel.pth",
        ),
        Converter(
            "semantic_stats",
            ("wav2vec2bert_stats.pt", "**/wav2vec2bert_stats.pt"),
            _stats,
            origin="IndexTeam/IndexTTS-2: wav2vec2bert_stats.pt",
        ),
        Converter(
            "speaker_matrix",
            ("feat1.pt", "**/feat1.pt"),
            _matrix,
            origin="IndexTeam/IndexTTS-2: feat1.pt",
        ),
        Converter(
            "emotion_matrix",
            ("feat2.pt", "**/feat2.pt"),
            _matrix,
            origin="IndexTeam/IndexTTS-2: feat2.pt",
        ),
    )
}


BPE_PATTERNS = ("bpe.model", "**/bpe.model")
BPE_ORIGIN = "IndexTeam/IndexTTS-2: bpe.model"
#: ``only``/``--only`` name of ``bpe.model`` (copied, not converted).
BPE_MODEL = "bpe_model"


def wanted_sources(only: tuple[str, ...] | None = None) -> list[Wanted]:
    """The official files to look for: every converter's and ``bpe.model``, each required
    except the emotion matrices (:data:`~indextts_weights.config.OPTIONAL`); with ``only``
    just those names (converter names or ``"bpe_model"``), each required.

    Raises:
        WeightsError: ``only`` names something that is neither.
    """
    known = [*CONVERTERS, BPE_MODEL]
    names = tuple(only) if only else tuple(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WeightsError(f"no converter for {unknown}; known: {known}")
    wanted = []
    for name in names:
        if name == BPE_MODEL:
            wanted.append(Wanted(BPE_MODEL, BPE_PATTERNS, BPE_ORIGIN, required=True))
        else:
            c = CONVERTERS[name]
            wanted.append(Wanted(name, c.patterns, c.origin, bool(only) or name not in OPTIONAL))
    return wanted


def source_plan(
    src_dir: str | Path,
    *,
    only: tuple[str, ...] | None = None,
    files: Mapping[str, str | Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SourcePlan:
    """Where each official file of :func:`wanted_sources` is under ``src_dir``
    (:func:`~indextts_weights.sources.plan_sources`; ``files``: name → explicit path)."""
    return plan_sources(src_dir, wanted_sources(only), files=files, progress=progress)


def _widen(obj: object) -> object:
    """``obj`` with every float16 array (anywhere in its dicts, lists, tuples) made float32,
    so that the mappings (weight-norm folding, transposes) work in float32 whatever the
    source stores; bfloat16 arrives widened already (the readers)."""
    if isinstance(obj, np.ndarray):
        return obj.astype(np.float32) if obj.dtype == np.float16 else obj
    if isinstance(obj, dict):
        return {k: _widen(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_widen(v) for v in obj)
    return obj


def convert_file(
    name: str,
    source: Path,
    out_path: Path,
    *,
    dtype: str = "float32",
    config: ModelConfig | None = None,
) -> Path:
    """Convert one official file into ``out_path`` (atomic), for the model at ``config``
    (default: the one :func:`~indextts_weights.source_config.model_configs` finds beside
    ``source``, else the published configuration), which the file records.

    Only the part of the checkpoint the converter unwraps is read (``s2mel.pth``: ``net``,
    not the optimizer and scheduler state beside it). Half-precision sources are widened
    to float32 before mapping; the output's floating arrays are stored as ``dtype`` (one of
    :data:`~indextts_weights.npz.DTYPES`; float32 by default, the CPU fast path), and the
    file records it and the source's stored dtypes (``source``: ``{"file", "dtypes":
    {dtype: tensors}}``, which the manifest repeats).

    Raises:
        WeightsError: naming ``source``: it cannot be read or mapped, or an array does not
            fit the model at ``config`` (each key missing, unexpected or mis-shaped).
    """
    converter = CONVERTERS[name]
    if config is None:
        config = model_configs(source.parent, {name: source})[0][name]
    try:
        with recording_dtypes() as seen:
            obj = read_checkpoint(source, unwrap=converter.unwrap)
        arrays = converter.convert(_widen(obj), config.args)
        del obj
        check_state(arrays, expected_arrays(name, config.args), source=f"{name} at {config.origin}")
        arrays = cast_floats(arrays, dtype)
    except WeightsError as exc:
        message = str(exc)  # the readers' messages mostly name the file already
        raise WeightsError(message if str(source) in message else f"{source}: {message}") from exc
    record = {"file": source.name, "dtypes": dict(sorted(seen.items()))}
    return save_npz(out_path, arrays, model=name, dtype=dtype, source=record, config=config.args)


def convert(
    src_dir: str | Path,
    out_dir: str | Path,
    *,
    only: tuple[str, ...] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    files: Mapping[str, str | Path] | None = None,
    on_plan: Callable[[SourcePlan], None] | None = None,
    dtype: str = "float32",
    args: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Convert the official checkpoints under ``src_dir`` into ``out_dir``.

    Args:
        src_dir: folder holding the official files, in any layout of
            :mod:`indextts_weights.sources` (flat, hub snapshots or cache, upstream
            ``checkpoints/`` old or new).
        out_dir: destination of the NPZ files and ``bpe.model`` (copied).
        only: convert just these names (converter names or ``"bpe_model"``), each
            required. Without it every file is required except the emotion matrices
            (``feat1.pt``, ``feat2.pt``), converted when found.
        force: overwrite existing outputs.
        progress: called with one-line messages: before each file (source name and
            size), after it (output name, size, seconds), and for the manifest.
        files: name → path of a source chosen explicitly (not searched for).
        on_plan: called with the sources chosen (:class:`SourcePlan`, e.g. to print
            :func:`~indextts_weights.sources.format_plan`) before anything is converted,
            also when the plan then stops conversion.
        dtype: the precision of the outputs' floating arrays (:data:`DTYPES`): float32
            (default, whatever the sources store), float16 or bfloat16 (half files, for
            GPUs; the loaders build models of that dtype). See :func:`convert_file`.
        args: name → a model's ``Args``, replacing what the config files give (a model
            of sizes no official config file can express, such as the widths upstream
            hard-codes); recorded like them.

    Each model is converted at the configuration of the official config files found
    (:func:`~indextts_weights.source_config.model_configs`: ``config.yaml`` in the source
    folder or beside ``gpt.pth``/``s2mel.pth``, ``config.json`` beside W2V-BERT's and
    BigVGAN's checkpoints; the published configuration where there is none), which is
    read and checked before anything is converted, and recorded in each file.

    Also writes (atomically) ``manifest.json`` in ``out_dir``: the size, SHA-256, format
    version and array shapes of every output file (:mod:`indextts_weights.manifest`).

    Returns:
        name → written path.

    Raises:
        WeightsError: an output exists and ``force`` is False, a required source is
            missing, different files could be one source, a config file does not
            describe IndexTTS-2 (:func:`~indextts_weights.source_config.read_yaml_config`),
            or a source does not fit its model.
    """
    if dtype not in DTYPES:
        raise WeightsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    plan = source_plan(src_dir, only=only, files=files, progress=progress)
    found = plan.sources()
    bpe = found.pop(BPE_MODEL, None)
    planned = {n: out_dir / CONVERTERS[n].output for n in found}
    targets = [*planned.values(), *([out_dir / BPE_NAME] if bpe is not None else [])]
    if not force:
        refuse_overwrite(out_dir, [p.name for p in targets])
    if on_plan:
        on_plan(plan)
    plan.check()
    configs = report_configs(src_dir, {**found, **({BPE_MODEL: bpe} if bpe else {})}, progress)
    for name, given in (args or {}).items():
        configs[name] = ModelConfig(given, "given by the caller")
    written = _write_outputs(planned, found, configs, bpe, out_dir, dtype, progress)
    if written:
        start = time.perf_counter()
        path = update_manifest(out_dir, written.values())
        if progress:
            progress(f"{path.name}: sizes and SHA-256 in {time.perf_counter() - start:.2f} s")
    return written


def refuse_overwrite(out_dir: Path, names: list[str]) -> None:
    """Raise :class:`WeightsError` if any of ``names`` exists in ``out_dir``."""
    existing = [name for name in names if (out_dir / name).exists()]
    if existing:
        raise WeightsError(
            f"refusing to overwrite {len(existing)} existing file(s) in {out_dir}: "
            f"{', '.join(existing)} (pass --force to replace them)"
        )


def report_configs(
    src_dir: Path, found: Mapping[str, Path], progress: Callable[[str], None] | None
) -> dict[str, ModelConfig]:
    """The models' configurations (:func:`~indextts_weights.source_config.model_configs`),
    told to ``progress``: where each converted model's comes from, and each size of
    ``config.yaml`` that is not the published one."""
    configs, notes = model_configs(src_dir, found)
    if progress:
        origins: dict[str, list[str]] = {}
        for name in found:
            if name in configs and not isinstance(configs[name].args, VectorArgs):
                origins.setdefault(configs[name].origin, []).append(name)
        for origin, names in origins.items():
            progress(f"configuration of {', '.join(names)}: {origin}")
        if notes:
            progress(
                f"{len(notes)} size(s) differ from the published IndexTTS-2 configuration "
                f"and are converted as the file says: {'; '.join(notes)}"
            )
    return configs


def _write_outputs(
    planned: dict[str, Path],
    found: dict[str, Path],
    configs: dict[str, ModelConfig],
    bpe: Path | None,
    out_dir: Path,
    dtype: str,
    progress: Callable[[str], None] | None,
) -> dict[str, Path]:
    """Convert each planned source and copy ``bpe.model``, reporting each file."""
    written: dict[str, Path] = {}
    total = len(planned) + (bpe is not None)
    for index, (name, target) in enumerate(planned.items(), 1):
        source = found[name]
        if progress:
            progress(
                f"[{index}/{total}] {source.name} ({human_size(source.stat().st_size)}) "
                f"-> {target.name} ..."
            )
        start = time.perf_counter()
        written[name] = convert_file(name, source, target, dtype=dtype, config=configs[name])
        if progress:
            progress(
                f"[{index}/{total}] {target.name}: {human_size(target.stat().st_size)} "
                f"in {time.perf_counter() - start:.2f} s"
            )
    if bpe is not None:
        start = time.perf_counter()
        written["bpe_model"] = _copy_atomic(bpe, out_dir / BPE_NAME)
        if progress:
            progress(
                f"[{total}/{total}] {BPE_NAME}: {human_size(bpe.stat().st_size)} copied "
                f"in {time.perf_counter() - start:.2f} s"
            )
    return written


def _copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically (:func:`~indextts_weights.atomic.atomic_path`)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target
