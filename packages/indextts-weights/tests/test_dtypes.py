"""Precision: half sources become float32 by default, ``--dtype`` keeps half precision,
the manifest records each source's dtypes, and half files load as half."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from click.testing import CliRunner

from indextts_weights.cli import main
from indextts_weights.convert import convert
from indextts_weights.errors import WeightsError
from indextts_weights.load import load_emotion_matrices, load_semantic_stats
from indextts_weights.manifest import read_manifest, verify
from indextts_weights.npz import (
    META_KEY,
    from_bfloat16_bits,
    read_arrays,
    read_dtype,
    read_npz,
    save_npz,
    to_bfloat16_bits,
)
from indextts_weights.readers import read_checkpoint
from indextts_weights.readers.dtypes import recording_dtypes
from indextts_weights.readers.testing import tensor, write_safetensors, write_torch_zip

RNG = np.random.default_rng(0)
FEAT1 = RNG.standard_normal((73, 192)).astype(np.float32)
FEAT2 = RNG.standard_normal((73, 1280)).astype(np.float32)
MEAN = RNG.standard_normal(1024).astype(np.float32)
VAR = (0.5 + RNG.random(1024)).astype(np.float32)
ONLY = ("semantic_stats", "speaker_matrix", "emotion_matrix")


def bf16(array: np.ndarray) -> np.ndarray:
    """float32 rounded to bfloat16 (as MLX rounds), as float32."""
    return np.array(mx.array(array).astype(mx.bfloat16).astype(mx.float32))


def raw(path):
    """The arrays and metadata exactly as stored (no widening)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(arrays.pop(META_KEY).tobytes().decode())


@pytest.fixture
def half_sources(tmp_path):
    """feat1 as float16, feat2 as bfloat16 bits, the stats as float32."""
    src = tmp_path / "src"
    src.mkdir()
    write_torch_zip(src / "feat1.pt", tensor(FEAT1.astype(np.float16)))
    write_torch_zip(
        src / "feat2.pt", tensor(to_bfloat16_bits(FEAT2), storage_type="BFloat16Storage")
    )
    write_torch_zip(src / "wav2vec2bert_stats.pt", {"mean": tensor(MEAN), "var": tensor(VAR)})
    return src


def test_bfloat16_bits_round_to_nearest_even_like_mlx():
    x = np.concatenate(
        [RNG.standard_normal(10000).astype(np.float32) * 1e3, [np.inf, -np.inf, 0, -0.0, 1e-40]]
    ).astype(np.float32)
    bits = to_bfloat16_bits(x)
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal(bits, np.array(mx.array(x).astype(mx.bfloat16).view(mx.uint16)))
    np.testing.assert_array_equal(from_bfloat16_bits(bits), bf16(x))
    assert np.isnan(from_bfloat16_bits(to_bfloat16_bits(np.array([np.nan], np.float32))))[0]


def test_readers_report_the_stored_dtypes(half_sources, tmp_path):
    with recording_dtypes() as seen:
        assert read_checkpoint(half_sources / "feat1.pt").dtype == np.float16
        assert read_checkpoint(half_sources / "feat2.pt").dtype == np.float32  # widened
    assert seen == {"float16": 1, "bfloat16": 1}
    path = write_safetensors(
        tmp_path / "m.safetensors",
        {"a": to_bfloat16_bits(FEAT1), "b": FEAT1.astype(np.float16), "c": np.arange(3)},
        dtypes={"a": "BF16"},
    )
    with recording_dtypes() as seen:
        read_checkpoint(path)
    assert seen == {"bfloat16": 1, "float16": 1, "int64": 1}


def test_half_sources_become_float32_and_the_manifest_records_their_dtypes(half_sources, tmp_path):
    out = tmp_path / "w"
    convert(half_sources, out, only=ONLY)
    for name in ("speaker_matrix", "emotion_matrix", "semantic_stats"):
        arrays, meta = raw(out / f"{name}.npz")
        assert all(a.dtype == np.float32 for a in arrays.values()), name
        assert meta["dtype"] == "float32"
    np.testing.assert_array_equal(
        read_npz(out / "speaker_matrix.npz")["weight"], FEAT1.astype(np.float16)
    )
    np.testing.assert_array_equal(read_npz(out / "emotion_matrix.npz")["weight"], bf16(FEAT2))
    files = read_manifest(out)["files"]  # type: ignore[index]
    assert files["speaker_matrix.npz"]["source"] == {"file": "feat1.pt", "dtypes": {"float16": 1}}
    assert files["emotion_matrix.npz"]["source"] == {"file": "feat2.pt", "dtypes": {"bfloat16": 1}}
    assert files["semantic_stats.npz"]["source"]["dtypes"] == {"float32": 2}
    assert files["semantic_stats.npz"]["dtype"] == "float32"
    assert files["semantic_stats.npz"]["arrays"]["mean"]["dtype"] == "float32"
    assert all(c.status == "ok" for c in verify(out)[0] if c.name.endswith("matrix.npz"))


def test_dtype_float16_keeps_half_precision_and_loads_as_float16(half_sources, tmp_path):
    out = tmp_path / "f16"
    convert(half_sources, out, only=ONLY, dtype="float16")
    arrays, meta = raw(out / "speaker_matrix.npz")
    assert arrays["weight"].dtype == np.float16 and meta["dtype"] == "float16"
    np.testing.assert_array_equal(arrays["weight"], FEAT1.astype(np.float16))  # exact
    assert read_dtype(out / "emotion_matrix.npz") == "float16"
    mean, std = load_semantic_stats(out / "semantic_stats.npz")
    assert mean.dtype == std.dtype == mx.float16
    np.testing.assert_allclose(np.array(std, np.float32), np.sqrt(VAR), rtol=1e-3)
    emo, spk = load_emotion_matrices(out / "emotion_matrix.npz", out / "speaker_matrix.npz")
    assert {g.dtype for g in emo + spk} == {mx.float16}
    manifest = read_manifest(out)["files"]  # type: ignore[index]
    assert manifest["speaker_matrix.npz"]["arrays"]["weight"]["dtype"] == "float16"
    assert manifest["speaker_matrix.npz"]["dtype"] == "float16"


def test_dtype_bfloat16_is_stored_as_uint16_bits_and_read_back_exactly(half_sources, tmp_path):
    out = tmp_path / "bf16"
    convert(half_sources, out, only=ONLY, dtype="bfloat16")
    arrays, meta = raw(out / "emotion_matrix.npz")
    assert arrays["weight"].dtype == np.uint16 and meta["dtype"] == "bfloat16"
    np.testing.assert_array_equal(arrays["weight"], to_bfloat16_bits(FEAT2))
    widened, dtype = read_arrays(out / "emotion_matrix.npz")
    assert dtype == "bfloat16" and widened["weight"].dtype == np.float32
    np.testing.assert_array_equal(widened["weight"], bf16(FEAT2))  # bf16 source: lossless
    emo, _ = load_emotion_matrices(out / "emotion_matrix.npz", out / "speaker_matrix.npz")
    assert emo[0].dtype == mx.bfloat16
    np.testing.assert_array_equal(
        np.concatenate([np.array(g.astype(mx.float32)) for g in emo]), bf16(FEAT2)
    )


def test_save_npz_dtype_rules(tmp_path):
    ints = np.arange(4, dtype=np.int64)
    save_npz(tmp_path / "a.npz", {"w": FEAT1, "i": ints}, model="m", dtype="float16")
    arrays, _ = raw(tmp_path / "a.npz")
    assert arrays["w"].dtype == np.float16 and arrays["i"].dtype == np.int64
    with pytest.raises(ValueError, match="cannot be told from bfloat16"):
        save_npz(tmp_path / "b.npz", {"u": np.zeros(2, np.uint16)}, model="m", dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        save_npz(tmp_path / "c.npz", {"w": FEAT1}, model="m", dtype="float64")
    save_npz(tmp_path / "d.npz", {"w": FEAT1}, model="m")
    assert read_dtype(tmp_path / "d.npz") is None  # no record: the arrays' own dtypes
    with pytest.raises(WeightsError, match="dtype must be one of"):
        convert(tmp_path, tmp_path / "out", only=("speaker_matrix",), dtype="int8")


def test_an_unknown_recorded_dtype_is_refused(tmp_path):
    path = tmp_path / "a.npz"
    meta = json.dumps({"format_version": 1, "model": "m", "dtype": "float8"}).encode()
    np.savez(path, **{META_KEY: np.frombuffer(meta, np.uint8), "w": FEAT1})
    with pytest.raises(WeightsError, match="records dtype 'float8'"):
        read_npz(path)


def test_cli_dtype_option(half_sources, tmp_path):
    out = tmp_path / "cli"
    args = ["convert", "--src", str(half_sources), "--out", str(out), "--dtype", "float16"]
    args += [a for n in ONLY for a in ("--only", n)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert read_dtype(out / "speaker_matrix.npz") == "float16"
    bad = CliRunner().invoke(main, ["convert", "--src", "x", "--out", "y", "--dtype", "int8"])
    assert bad.exit_code == 2 and "int8" in bad.output


def test_info_shows_the_precision(half_sources, tmp_path):
    out = tmp_path / "info"
    convert(half_sources, out, only=ONLY, dtype="bfloat16")
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert rows["speaker_matrix.npz"][-2:] == ["v1", "bfloat16"]
