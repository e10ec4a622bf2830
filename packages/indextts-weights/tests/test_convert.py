"""convert(): finds official files, converts stats and emotion matrices, refuses overwrites.

The official files are written torch-free with ``indextts_weights.readers.testing``.
"""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indextts_weights.cli import main
from indextts_weights.convert import CONVERTERS, convert
from indextts_weights.errors import WeightsError
from indextts_weights.mapping import gpt as gpt_mapping
from indextts_weights.npz import read_config, read_npz
from indextts_weights.readers.testing import tensor, write_torch_zip
from mlx_indextts_models.config import from_dict
from mlx_indextts_models.gpt import UnifiedVoiceArgs

#: What the ``official`` fixture holds (a partial folder: without ``only`` conversion
#: stops, the big models being required).
PARTIAL = ("semantic_stats", "speaker_matrix", "emotion_matrix", "bpe_model")
PARTIAL_ARGS = tuple(arg for name in PARTIAL for arg in ("--only", name))


@pytest.fixture
def official(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "official"
    (src / "checkpoints").mkdir(parents=True)
    mean = rng.standard_normal(1024).astype(np.float32)
    var = (0.5 + rng.random(1024)).astype(np.float32)
    write_torch_zip(
        src / "checkpoints" / "wav2vec2bert_stats.pt", {"mean": tensor(mean), "var": tensor(var)}
    )
    feat1 = rng.standard_normal((73, 192)).astype(np.float32)
    feat2 = rng.standard_normal((73, 1280)).astype(np.float32)
    write_torch_zip(src / "checkpoints" / "feat1.pt", tensor(feat1))
    write_torch_zip(src / "checkpoints" / "feat2.pt", tensor(feat2))
    (src / "checkpoints" / "bpe.model").write_bytes(b"sentencepiece")
    return src, {"mean": mean, "var": var, "feat1": feat1, "feat2": feat2}


def test_converts_stats_and_matrices_found_anywhere_under_src(official, tmp_path):
    src, values = official
    out = tmp_path / "weights"
    lines = []
    written = convert(src, out, progress=lines.append, only=PARTIAL)
    assert set(written) == {"semantic_stats", "speaker_matrix", "emotion_matrix", "bpe_model"}
    stats = read_npz(out / "semantic_stats.npz", model="semantic_stats")
    np.testing.assert_array_equal(stats["mean"], values["mean"])
    np.testing.assert_array_equal(stats["std"], np.sqrt(values["var"]))
    assert read_npz(out / "speaker_matrix.npz")["weight"].shape == (73, 192)
    np.testing.assert_array_equal(read_npz(out / "emotion_matrix.npz")["weight"], values["feat2"])
    assert (out / "bpe.model").read_bytes() == b"sentencepiece"
    # per file: a line before (source name and size) and one after (output, size, seconds)
    assert len(lines) == 8, lines
    assert lines[0] == "[1/4] wav2vec2bert_stats.pt (8.8 KiB) -> semantic_stats.npz ..."
    assert re.fullmatch(r"\[1/4\] semantic_stats\.npz: 8\.9 KiB in \d+\.\d\d s", lines[1])
    assert re.fullmatch(r"\[4/4\] bpe\.model: 13 B copied in \d+\.\d\d s", lines[6])
    assert lines[7].startswith("manifest.json: sizes and SHA-256 in ")


def test_refuses_to_overwrite_without_force(official, tmp_path):
    src, _ = official
    convert(src, tmp_path / "w", only=PARTIAL)
    with pytest.raises(WeightsError, match="refusing to overwrite"):
        convert(src, tmp_path / "w", only=PARTIAL)
    assert "semantic_stats" in convert(src, tmp_path / "w", force=True, only=PARTIAL)


def test_only_requires_the_named_sources(official, tmp_path):
    src, _ = official
    assert set(convert(src, tmp_path / "a", only=("speaker_matrix",))) == {"speaker_matrix"}
    with pytest.raises(WeightsError, match="campplus"):
        convert(src, tmp_path / "b", only=("campplus",))
    with pytest.raises(WeightsError, match="no converter"):
        convert(src, tmp_path / "c", only=("nonsense",))


def test_wrong_shapes_and_ambiguous_sources_are_errors(official, tmp_path):
    src, _ = official
    write_torch_zip(src / "checkpoints" / "feat1.pt", tensor(np.zeros((72, 192), np.float32)))
    with pytest.raises(WeightsError, match=r"feat1.pt: expected a \(73, 192\) tensor"):
        convert(src, tmp_path / "w", only=("speaker_matrix",))
    (src / "copy").mkdir()
    write_torch_zip(src / "copy" / "feat2.pt", tensor(np.zeros((73, 1280), np.float32)))
    with pytest.raises(WeightsError, match=r"different files could be feat2.pt \(emotion_matrix\)"):
        convert(src, tmp_path / "w2", only=("emotion_matrix",))


def test_every_converter_names_an_official_origin():
    assert all(c.origin and c.patterns for c in CONVERTERS.values())


def test_cli_convert_reports_and_exits_2_on_errors(official, tmp_path):
    src, _ = official
    runner = CliRunner()
    args = ["convert", "--src", str(src), "--out", str(tmp_path / "w"), *PARTIAL_ARGS]
    ok = runner.invoke(main, args)
    assert ok.exit_code == 0, ok.output
    assert "semantic_stats:" in ok.output
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    # one line naming every existing output, no traceback
    assert again.output.strip().splitlines() == [
        f"error: refusing to overwrite 4 existing file(s) in {tmp_path / 'w'}: "
        "semantic_stats.npz, speaker_matrix.npz, emotion_matrix.npz, bpe.model "
        "(pass --force to replace them)"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(main, ["convert", "--src", str(empty), "--out", str(tmp_path / "x")])
    assert none.exit_code == 2 and "no official checkpoint found" in none.output


def _sibling(name: str) -> types.ModuleType:
    """A sibling test module, loaded by path (the tests run with ``--import-mode=importlib``,
    so sibling test modules are not importable)."""
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"_indextts_weights_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: ``test_mapping_gpt.py``: its tiny GPT and the complete official state dict of it.
_GPT_TESTS = _sibling("test_mapping_gpt.py")
TINY_GPT = _GPT_TESTS.TINY


def _gpt_state() -> dict[str, np.ndarray]:
    """A complete ``gpt.pth`` state dict of :data:`TINY_GPT` (official names and layouts)."""
    return _GPT_TESTS.official_state(TINY_GPT)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "model-wrapped"])
def test_gpt_is_found_unwrapped_and_mapped(tmp_path, wrapped):
    src = tmp_path / "official" / "IndexTTS-2"
    src.mkdir(parents=True)
    official = _gpt_state()
    state = {k: tensor(v) for k, v in official.items()}
    obj = {"model": state, "epoch": 3} if wrapped else state
    write_torch_zip(src / "gpt.pth", obj)
    written = convert(tmp_path / "official", tmp_path / "w", only=("gpt",), args={"gpt": TINY_GPT})
    assert written["gpt"] == tmp_path / "w" / "gpt.npz"
    arrays = read_npz(written["gpt"], model="gpt")
    expected = gpt_mapping.sanitize(official)  # the mapping's own tests check its values
    assert set(arrays) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value)
    assert from_dict(UnifiedVoiceArgs, read_config(written["gpt"])) == TINY_GPT  # recorded


def test_a_gpt_that_does_not_fit_its_configuration_is_refused(tmp_path):
    src = tmp_path / "official"
    src.mkdir()
    write_torch_zip(src / "gpt.pth", {k: tensor(v) for k, v in _gpt_state().items()})
    with pytest.raises(WeightsError) as info:  # the published 24-layer GPT: nothing fits
        convert(src, tmp_path / "w", only=("gpt",))
    message = str(info.value)
    assert message.startswith(
        f"{src / 'gpt.pth'}: gpt at IndexTTS-2's published configuration (no config.yaml "
        "found) does not fit the model: missing: "
    )
    assert "wrong shape: " in message and "(expected (512,))" in message
    assert not (tmp_path / "w" / "gpt.npz").exists()


def test_gpt_unknown_keys_are_named_with_the_file(tmp_path):
    src = tmp_path / "official"
    src.mkdir()
    state = _gpt_state() | {"unknown.weight": np.zeros(2, np.float32)}
    state["gpt.h.3.attn.extra"] = np.zeros(2, np.float32)
    write_torch_zip(src / "gpt.pth", {k: tensor(v) for k, v in state.items()})
    with pytest.raises(WeightsError) as info:
        convert(src, tmp_path / "w", only=("gpt",), args={"gpt": TINY_GPT})
    message = str(info.value)
    assert "gpt.pth" in message and "unknown.weight" in message
    assert "gpt.h.3.attn.extra" in message
    assert not (tmp_path / "w" / "gpt.npz").exists()
    write_torch_zip(src / "gpt.pth", {"state_dict": {k: tensor(v) for k, v in state.items()}})
    with pytest.raises(WeightsError, match="expected a flat state dict"):
        convert(src, tmp_path / "w", only=("gpt",), args={"gpt": TINY_GPT})


def test_gpt_converter():
    gpt = CONVERTERS["gpt"]
    assert gpt.output == "gpt.npz" and gpt.unwrap == ("model",)
    assert gpt.patterns == ("gpt.pth", "**/gpt.pth")
    assert gpt.origin == "IndexTeam/IndexTTS-2: gpt.pth"
