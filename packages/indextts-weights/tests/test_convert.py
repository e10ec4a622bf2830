"""convert(): finds official files, converts stats and emotion matrices, refuses overwrites.

The official files are written torch-free with ``indextts_weights.readers.testing``.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from indextts_weights.cli import main
from indextts_weights.convert import CONVERTERS, convert
from indextts_weights.errors import WeightsError
from indextts_weights.npz import read_npz
from indextts_weights.readers.testing import tensor, write_torch_zip


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
    written = convert(src, out, progress=lines.append)
    assert set(written) == {"semantic_stats", "speaker_matrix", "emotion_matrix", "bpe_model"}
    stats = read_npz(out / "semantic_stats.npz", model="semantic_stats")
    np.testing.assert_array_equal(stats["mean"], values["mean"])
    np.testing.assert_array_equal(stats["std"], np.sqrt(values["var"]))
    assert read_npz(out / "speaker_matrix.npz")["weight"].shape == (73, 192)
    np.testing.assert_array_equal(read_npz(out / "emotion_matrix.npz")["weight"], values["feat2"])
    assert (out / "bpe.model").read_bytes() == b"sentencepiece"
    assert len(lines) == 3 and lines[0].startswith("[1/3]")


def test_refuses_to_overwrite_without_force(official, tmp_path):
    src, _ = official
    convert(src, tmp_path / "w")
    with pytest.raises(WeightsError, match="refusing to overwrite"):
        convert(src, tmp_path / "w")
    assert "semantic_stats" in convert(src, tmp_path / "w", force=True)


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
    with pytest.raises(WeightsError, match="several candidates for emotion_matrix"):
        convert(src, tmp_path / "w2", only=("emotion_matrix",))


def test_every_converter_names_an_official_origin():
    assert all(c.origin and c.patterns for c in CONVERTERS.values())


def test_cli_convert_reports_and_exits_2_on_errors(official, tmp_path):
    src, _ = official
    runner = CliRunner()
    ok = runner.invoke(main, ["convert", "--src", str(src), "--out", str(tmp_path / "w")])
    assert ok.exit_code == 0, ok.output
    assert "semantic_stats:" in ok.output
    again = runner.invoke(main, ["convert", "--src", str(src), "--out", str(tmp_path / "w")])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(main, ["convert", "--src", str(empty), "--out", str(tmp_path / "x")])
    assert none.exit_code == 2 and "no official checkpoint found" in none.output
