"""``indextts-weights convert`` on the real-size seeded checkpoints, run torch-free.

The ``converted`` fixture runs the CLI in the uv environment (no torch there) and fails if
the conversion imports torch; here we check what it wrote against the sources.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from indextts_weights.config import WEIGHT_FILES
from indextts_weights.load import (
    load_campplus,
    load_emotion_matrices,
    load_semantic_codec,
    load_semantic_stats,
    load_w2vbert,
)
from indextts_weights.npz import read_npz
from parity.checkpoints import (
    BIGVGAN_CONFIG_PATH,
    CONFIG_PATH,
    emotion_matrix_checkpoints,
    semantic_stats_checkpoint,
)
from parity.converted import CONVERTIBLE
from parity.workspace import ROOT

W2VBERT_JSON = ROOT / "docs" / "reference" / "w2v-bert-2.0-config.json"


def test_convert_writes_every_file(converted):
    names = sorted(p.name for p in converted.glob("*.npz"))
    assert names == sorted(WEIGHT_FILES[name] for name in CONVERTIBLE)
    assert {
        "campplus.npz",
        "emotion_matrix.npz",
        "gpt.npz",
        "semantic_codec.npz",
        "semantic_stats.npz",
        "speaker_matrix.npz",
        "w2vbert.npz",
    } <= set(names)


def test_w2vbert_keeps_exactly_17_layers_and_drops_unused_keys(converted):
    arrays = read_npz(converted / "w2vbert.npz", model="w2vbert")
    layers = {k.split(".")[2] for k in arrays if k.startswith("encoder.layers.")}
    assert layers == {str(i) for i in range(17)}
    assert "masked_spec_embed" not in arrays
    assert len(load_w2vbert(converted / "w2vbert.npz").encoder.layers) == 17


def test_stats_and_matrices_equal_their_sources(converted):
    stats = torch.load(semantic_stats_checkpoint(0), weights_only=True)
    mean, std = load_semantic_stats(converted / "semantic_stats.npz")
    np.testing.assert_array_equal(np.array(mean), stats["mean"].numpy())
    # numpy's sqrt is correctly rounded; torch's vectorized CPU sqrt is off by 1 ulp on ~20%
    # of these values, so the reference's std and ours agree to float32 rounding.
    np.testing.assert_allclose(np.array(std), torch.sqrt(stats["var"]).numpy(), rtol=2.5e-7)
    np.testing.assert_array_equal(np.array(std), np.sqrt(stats["var"].numpy()))
    feat1, feat2 = (torch.load(p, weights_only=True) for p in emotion_matrix_checkpoints(0))
    emo, spk = load_emotion_matrices(
        converted / "emotion_matrix.npz", converted / "speaker_matrix.npz"
    )
    assert [g.shape[0] for g in emo] == [3, 17, 2, 8, 4, 5, 10, 24]
    np.testing.assert_array_equal(np.concatenate([np.array(g) for g in emo]), feat2.numpy())
    np.testing.assert_array_equal(np.concatenate([np.array(g) for g in spk]), feat1.numpy())


def test_campplus_and_codec_load_strictly(converted):
    assert load_campplus(converted / "campplus.npz") is not None
    codec = load_semantic_codec(converted / "semantic_codec.npz")
    assert not any(k.startswith("decoder.") for k in read_npz(converted / "semantic_codec.npz"))
    assert codec is not None


# --- the seeded real-size files laid out as an upstream index-tts checkpoints/ folder ---

_MAIN_FILES = {
    "gpt": "gpt.pth",
    "s2mel": "s2mel.pth",
    "semantic_stats": "wav2vec2bert_stats.pt",
    "speaker_matrix": "feat1.pt",
    "emotion_matrix": "feat2.pt",
}
_OLD_SNAPSHOTS = {  # HF_HUB_CACHE=./checkpoints/hf_cache: name -> (repo, file in the repo)
    "semantic_codec": ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
    "campplus": ("funasr/campplus", "campplus_cn_common.bin"),
    "w2vbert": ("facebook/w2v-bert-2.0", "model.safetensors"),
    "bigvgan": ("nvidia/bigvgan_v2_22khz_80band_256x", "bigvgan_generator.pt"),
}
_CURRENT_COPIES = {  # indextts/utils/model_download.py: ensure_models_available
    "semantic_codec": "hf_cache/semantic_codec_model.safetensors",
    "campplus": "hf_cache/campplus_cn_common.bin",
    "w2vbert": "hf_cache/w2v-bert-2.0/model.safetensors",
    "bigvgan": "hf_cache/bigvgan/bigvgan_generator.pt",
}
_REV = "0123456789abcdef0123456789abcdef01234567"
#: The config files beside the auxiliary checkpoints (``from_pretrained`` reads them).
_JSON_CONFIGS = {"w2vbert": W2VBERT_JSON, "bigvgan": BIGVGAN_CONFIG_PATH}


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def _upstream_checkpoints(root: Path, layout: str) -> dict[str, set[str]]:
    """The seeded checkpoints (symlinks, no copies) as ``checkpoints/`` in ``layout``;
    returns name -> the paths (relative to ``root``) that may be chosen."""
    from parity.converted import _source

    expected: dict[str, set[str]] = {"bpe_model": {"bpe.model"}}
    (root / "bpe.model").parent.mkdir(parents=True, exist_ok=True)
    (root / "bpe.model").write_bytes(b"sentencepiece")
    _link(root / "config.yaml", CONFIG_PATH)
    for name, filename in _MAIN_FILES.items():
        _link(root / filename, _source(name, 0))
        expected[name] = {filename}
    for name, (repo_id, filename) in _OLD_SNAPSHOTS.items():
        expected[name] = set()
        if layout in ("older", "migrated"):
            repo = root / "hf_cache" / f"models--{repo_id.replace('/', '--')}"
            _link(repo / "blobs" / f"seeded-{name}", _source(name, 0))
            snapshot_file = repo / "snapshots" / _REV / filename
            _link(snapshot_file, Path(os.path.relpath(repo / "blobs" / f"seeded-{name}",
                                                      snapshot_file.parent)))  # fmt: skip
            (repo / "refs").mkdir()
            (repo / "refs" / "main").write_text(_REV)
            expected[name].add(str(snapshot_file.relative_to(root)))
            if name in _JSON_CONFIGS:
                _link(snapshot_file.with_name("config.json"), _JSON_CONFIGS[name])
        if layout in ("current", "migrated"):
            _link(root / _CURRENT_COPIES[name], _source(name, 0))
            expected[name].add(_CURRENT_COPIES[name])
            if name in _JSON_CONFIGS:
                _link((root / _CURRENT_COPIES[name]).with_name("config.json"), _JSON_CONFIGS[name])
    return expected


@pytest.mark.parametrize("layout", ["older", "current", "migrated"])
def test_upstream_checkpoints_folder_finds_every_seeded_file(tmp_path, layout):
    """``convert --dry-run`` (the torch-free CLI, as a user runs it) on the real-size seeded
    files laid out as upstream's ``checkpoints/``: every file is found, each once.
    (Converting them all again here would take minutes; each file's conversion from the
    same bytes is what the ``converted`` fixture checks.)"""
    from parity.converted import _RUN_CONVERT, UV_PYTHON

    root = tmp_path / "checkpoints"
    expected = _upstream_checkpoints(root, layout)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(UV_PYTHON), "-c", _RUN_CONVERT, "convert", "--src", str(root), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "dry run: 10 file(s) found, nothing converted"
    # each model's configuration from the config file beside it (the published values)
    origins = {
        name: origin
        for line in lines
        if line.startswith("configuration of ")
        for names, origin in [line.removeprefix("configuration of ").split(": ", 1)]
        for name in names.split(", ")
    }
    for name in ("gpt", "s2mel", "semantic_codec"):
        assert origins.pop(name) == str(root / "config.yaml")
    for name in _JSON_CONFIGS:
        assert origins.pop(name).endswith("config.json"), name
    assert list(origins) == ["campplus"]
    assert not any("differ from the published" in line for line in lines)
    lines = [line for line in lines if not line.startswith("configuration of ")]
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert set(rows) == set(expected)
    for name, paths in expected.items():
        assert any(path in rows[name] for path in paths), (name, rows[name])
        copies = "(+1 identical copy)" in " ".join(rows[name])
        assert copies == (len(paths) == 2), (name, rows[name])
