"""Finding the official files as users have them (``indextts_weights.sources``).

Each layout is built in ``tmp_path`` with small fake files (real symlinks into ``blobs/``
for the hub's snapshot folders); the plan says which path is chosen for each file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import indextts_weights.sources as sources
from indextts_weights.cli import main
from indextts_weights.convert import convert, source_plan
from indextts_weights.errors import WeightsError
from indextts_weights.npz import read_npz
from indextts_weights.readers.testing import tensor, write_torch_zip
from indextts_weights.sources import format_plan

REV = "0123456789abcdef0123456789abcdef01234567"

#: The files of ``IndexTeam/IndexTTS-2`` that conversion reads (name -> file).
REAL_CONFIG = Path(__file__).resolve().parents[3] / "docs" / "reference" / "indextts2-config.yaml"

MAIN = {
    "gpt": "gpt.pth",
    "s2mel": "s2mel.pth",
    "semantic_stats": "wav2vec2bert_stats.pt",
    "speaker_matrix": "feat1.pt",
    "emotion_matrix": "feat2.pt",
    "bpe_model": "bpe.model",
}
#: The auxiliary repos: name -> (repo id, file in the repo).
AUX = {
    "semantic_codec": ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
    "campplus": ("funasr/campplus", "campplus_cn_common.bin"),
    "w2vbert": ("facebook/w2v-bert-2.0", "model.safetensors"),
    "bigvgan": ("nvidia/bigvgan_v2_22khz_80band_256x", "bigvgan_generator.pt"),
}
#: upstream index-tts's current ``hf_cache`` copies (utils/model_download.py).
CURRENT = {
    "semantic_codec": "hf_cache/semantic_codec_model.safetensors",
    "campplus": "hf_cache/campplus_cn_common.bin",
    "w2vbert": "hf_cache/w2v-bert-2.0/model.safetensors",
    "bigvgan": "hf_cache/bigvgan/bigvgan_generator.pt",
}


def content(name: str) -> bytes:
    """The fake bytes of one official file (the same for every copy of it)."""
    return f"official {name}\n".encode()


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def hub_repo(cache: Path, repo_id: str, files: dict[str, bytes], rev: str = REV) -> Path:
    """A repo in a ``huggingface_hub`` cache: blobs named by SHA-256, the snapshot's files
    relative symlinks to them (as the client writes them), ``refs/main``. Returns the
    snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / rev
    for filename, data in files.items():
        blob = put(repo / "blobs" / hashlib.sha256(data).hexdigest(), data)
        link = snapshot / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    put(repo / "refs" / "main", rev.encode())
    return snapshot


def main_files(folder: Path) -> None:
    for name, filename in MAIN.items():
        put(folder / filename, content(name))
    put(folder / "config.yaml", REAL_CONFIG.read_bytes())


def old_hf_cache(cache: Path) -> None:
    """``HF_HUB_CACHE=./checkpoints/hf_cache``: a snapshot folder per auxiliary repo."""
    for name, (repo_id, filename) in AUX.items():
        extra = {"config.json": b"{}"} if name == "bigvgan" else {}
        hub_repo(cache, repo_id, {filename: content(name), **extra})


def current_hf_cache(checkpoints: Path) -> None:
    for name, relative in CURRENT.items():
        put(checkpoints / relative, content(name))
    put(checkpoints / "hf_cache/bigvgan/config.json", b"{}")
    put(checkpoints / "hf_cache/w2v-bert-2.0/config.json", b"{}")


def chosen(src: Path, **kwargs: object) -> dict[str, str]:
    """name -> chosen path relative to ``src`` (after checking the plan is complete)."""
    plan = source_plan(src, **kwargs)  # type: ignore[arg-type]
    plan.check()
    return {name: str(path.relative_to(src)) for name, path in plan.sources().items()}


SNAPSHOT_PATHS = {
    name: f"hf_cache/models--{repo.replace('/', '--')}/snapshots/{REV}/{filename}"
    for name, (repo, filename) in AUX.items()
}


# --- the layouts -----------------------------------------------------------------------


def test_flat_folder(tmp_path):
    main_files(tmp_path)
    put(tmp_path / "campplus_cn_common.bin", content("campplus"))
    put(tmp_path / "semantic_codec/model.safetensors", content("semantic_codec"))
    put(tmp_path / "w2v-bert-2.0/model.safetensors", content("w2vbert"))
    put(tmp_path / "bigvgan_generator.pt", content("bigvgan"))
    assert chosen(tmp_path) == {
        **MAIN,
        "campplus": "campplus_cn_common.bin",
        "semantic_codec": "semantic_codec/model.safetensors",
        "w2vbert": "w2v-bert-2.0/model.safetensors",
        "bigvgan": "bigvgan_generator.pt",
    }


def test_one_snapshot_folder_of_symlinks(tmp_path):
    snapshot = hub_repo(
        tmp_path / "hub", "IndexTeam/IndexTTS-2", {f: content(n) for n, f in MAIN.items()}
    )
    assert (snapshot / "gpt.pth").is_symlink()
    assert chosen(snapshot, only=tuple(MAIN)) == MAIN


def test_a_whole_hub_cache_of_several_repos(tmp_path):
    cache = tmp_path / "hub"
    hub_repo(cache, "IndexTeam/IndexTTS-2", {f: content(n) for n, f in MAIN.items()})
    old_hf_cache(cache)
    hub_repo(cache, "openai/some-other-model", {"model.safetensors": b"other"})
    main_rev = f"models--IndexTeam--IndexTTS-2/snapshots/{REV}"
    assert chosen(cache) == {
        **{name: f"{main_rev}/{filename}" for name, filename in MAIN.items()},
        **{name: path.removeprefix("hf_cache/") for name, path in SNAPSHOT_PATHS.items()},
    }


def test_upstream_checkpoints_older_layout(tmp_path):
    main_files(tmp_path)
    old_hf_cache(tmp_path / "hf_cache")
    assert chosen(tmp_path) == {**MAIN, **SNAPSHOT_PATHS}


def test_upstream_checkpoints_current_layout(tmp_path):
    main_files(tmp_path)
    current_hf_cache(tmp_path)
    assert chosen(tmp_path) == {**MAIN, **CURRENT}


def test_current_layout_with_the_codec_also_where_hf_hub_download_put_it(tmp_path):
    """``hf_hub_download(local_dir=hf_cache)`` leaves ``hf_cache/semantic_codec/...``
    beside the copy ``ensure_models_available`` makes: the same bytes, one candidate."""
    main_files(tmp_path)
    current_hf_cache(tmp_path)
    put(tmp_path / "hf_cache/semantic_codec/model.safetensors", content("semantic_codec"))
    plan = source_plan(tmp_path)
    plan.check()
    codec = next(c for c in plan.choices if c.wanted.name == "semantic_codec")
    assert codec.path == tmp_path / "hf_cache/semantic_codec/model.safetensors"
    assert codec.copies == (tmp_path / CURRENT["semantic_codec"],)


def test_migrated_folder_identical_copies_are_one_candidate(tmp_path):
    """The current copies beside the old snapshots they were copied from."""
    main_files(tmp_path)
    old_hf_cache(tmp_path / "hf_cache")
    current_hf_cache(tmp_path)
    plan = source_plan(tmp_path)
    assert plan.problem() is None
    for choice in plan.choices:
        name = choice.wanted.name
        if name in AUX:
            found = {choice.path, *choice.copies}
            assert found == {tmp_path / CURRENT[name], tmp_path / SNAPSHOT_PATHS[name]}, name
        else:
            assert choice.copies == (), name
    lines = format_plan(plan)
    assert any("campplus" in line and "(+1 identical copy)" in line for line in lines)


def test_the_download_cache_layout(tmp_path):
    for name, filename in MAIN.items():
        put(tmp_path / "IndexTeam/IndexTTS-2" / filename, content(name))
    for name, (repo_id, filename) in AUX.items():
        put(tmp_path / repo_id / filename, content(name))
    assert chosen(tmp_path) == {
        **{name: f"IndexTeam/IndexTTS-2/{filename}" for name, filename in MAIN.items()},
        **{name: f"{repo_id}/{filename}" for name, (repo_id, filename) in AUX.items()},
    }


# --- duplicates and conflicts ----------------------------------------------------------


def test_snapshots_sharing_a_blob_are_one_file_without_hashing(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    hub_repo(cache, "funasr/campplus", {"campplus_cn_common.bin": content("campplus")})
    hub_repo(cache, "funasr/campplus", {"campplus_cn_common.bin": content("campplus")}, "f" * 40)

    def no_hashing(path):
        raise AssertionError(f"hashed {path}")

    monkeypatch.setattr(sources, "sha256_of", no_hashing)
    assert set(chosen(cache, only=("campplus",))) == {"campplus"}


def test_large_copies_are_announced_before_hashing(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ANNOUNCE_HASH_BYTES", 10)
    put(tmp_path / "a/gpt.pth", b"0123456789")
    put(tmp_path / "b/gpt.pth", b"0123456789")
    put(tmp_path / "c/feat1.pt", b"012345678")  # smaller: not announced
    put(tmp_path / "d/feat1.pt", b"012345678")
    lines: list[str] = []
    plan = source_plan(tmp_path, only=("gpt", "speaker_matrix"), progress=lines.append)
    assert plan.problem() is None
    assert lines == [
        f"comparing copies: SHA-256 of {tmp_path / 'a/gpt.pth'} (10 B) ...",
        f"comparing copies: SHA-256 of {tmp_path / 'b/gpt.pth'} (10 B) ...",
    ]


def test_different_sizes_conflict_without_hashing(tmp_path, monkeypatch):
    main_files(tmp_path)
    put(tmp_path / "copy/feat2.pt", b"another emotion matrix, longer")
    monkeypatch.setattr(sources, "sha256_of", lambda path: pytest.fail(f"hashed {path}"))
    plan = source_plan(tmp_path, only=("emotion_matrix",))
    (choice,) = plan.conflicts()
    assert choice.conflicts == (tmp_path / "feat2.pt", tmp_path / "copy/feat2.pt")


def test_a_real_conflict_names_both_paths_and_the_way_out(tmp_path):
    main_files(tmp_path)
    old_hf_cache(tmp_path / "hf_cache")
    current_hf_cache(tmp_path)
    same_size = content("campplus").replace(b"o", b"0")  # other bytes, same size
    put(tmp_path / CURRENT["campplus"], same_size)
    plan = source_plan(tmp_path)
    assert [c.wanted.name for c in plan.conflicts()] == ["campplus"]
    with pytest.raises(WeightsError) as info:
        plan.check()
    message = str(info.value)
    assert "\n" not in message
    assert CURRENT["campplus"] in message and SNAPSHOT_PATHS["campplus"] in message
    assert "--file campplus=PATH" in message and "--only" in message
    conflict = next(line for line in format_plan(plan) if line.split()[0] == "campplus")
    assert "CONFLICT: " in conflict and CURRENT["campplus"] in conflict
    # the way out: name the file, or leave it out
    picked = tmp_path / SNAPSHOT_PATHS["campplus"]
    assert chosen(tmp_path, files={"campplus": picked})["campplus"] == SNAPSHOT_PATHS["campplus"]
    assert "campplus" not in chosen(tmp_path, only=("gpt", "bigvgan"))


def test_revisions_of_one_hub_repo_choose_refs_main(tmp_path):
    cache = tmp_path / "hub"
    old, new = "a" * 40, "b" * 40
    hub_repo(cache, "funasr/campplus", {"campplus_cn_common.bin": b"old campplus"}, old)
    hub_repo(cache, "funasr/campplus", {"campplus_cn_common.bin": b"new campplus"}, new)
    snapshots = cache / "models--funasr--campplus" / "snapshots"
    plan = source_plan(cache, only=("campplus",))
    (choice,) = plan.choices
    assert choice.path == snapshots / new / "campplus_cn_common.bin"  # refs/main: the last
    assert choice.superseded == (snapshots / old / "campplus_cn_common.bin",)
    assert "(refs/main; 1 other revision not used)" in format_plan(plan)[-1]
    (cache / "models--funasr--campplus" / "refs" / "main").unlink()
    assert source_plan(cache, only=("campplus",)).conflicts()  # no refs/main: a conflict
    # a copy outside the snapshots is another candidate: a conflict again
    (cache / "models--funasr--campplus" / "refs" / "main").write_text(new)
    put(tmp_path / "hub" / "campplus_cn_common.bin", b"a third campplus")
    assert source_plan(cache, only=("campplus",)).conflicts()


def test_file_must_name_a_known_file_that_exists(tmp_path):
    main_files(tmp_path)
    with pytest.raises(WeightsError, match=r"no file to convert is called \['nonsense'\]"):
        source_plan(tmp_path, files={"nonsense": tmp_path / "gpt.pth"})
    with pytest.raises(WeightsError, match=r"no such file: .*nowhere.pth \(--file gpt=PATH\)"):
        source_plan(tmp_path, files={"gpt": tmp_path / "nowhere.pth"})


# --- missing files ---------------------------------------------------------------------


def test_a_missing_required_file_stops_with_one_error_saying_where_it_looked(tmp_path):
    main_files(tmp_path)
    current_hf_cache(tmp_path)
    (tmp_path / "s2mel.pth").unlink()
    (tmp_path / CURRENT["semantic_codec"]).unlink()
    with pytest.raises(WeightsError) as info:
        convert(tmp_path, tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message and message.startswith("required file(s) not found under")
    assert "s2mel.pth (s2mel: looked for s2mel.pth, **/s2mel.pth;" in message
    assert "**/semantic_codec_model.safetensors" in message
    assert "from amphion/MaskGCT: semantic_codec/model.safetensors" in message
    assert "--file NAME=PATH" in message and "--only NAME" in message
    assert not (tmp_path / "out").exists()  # nothing converted


def test_the_emotion_matrices_are_optional(tmp_path):
    main_files(tmp_path)
    current_hf_cache(tmp_path)
    (tmp_path / "feat1.pt").unlink()
    (tmp_path / "feat2.pt").unlink()
    plan = source_plan(tmp_path)
    assert plan.problem() is None and "speaker_matrix" not in plan.sources()
    row = next(line for line in format_plan(plan) if line.split()[0] == "speaker_matrix")
    assert "not found (optional; looked for feat1.pt, **/feat1.pt)" in row
    # named with --only, they are required
    with pytest.raises(WeightsError, match=r"feat1\.pt \(speaker_matrix"):
        source_plan(tmp_path, only=("speaker_matrix",)).check()


def test_an_empty_folder_says_no_checkpoint_was_found(tmp_path):
    with pytest.raises(WeightsError, match="no official checkpoint found under"):
        source_plan(tmp_path).check()
    with pytest.raises(WeightsError, match="source folder not found"):
        source_plan(tmp_path / "nowhere")


# --- the table the CLI prints ----------------------------------------------------------


def _real_matrices(snapshot_files: dict[str, bytes], tmp_path: Path) -> dict[str, bytes]:
    """Real (tiny) ``feat1.pt``/``feat2.pt``/``wav2vec2bert_stats.pt`` bytes."""
    rng = np.random.default_rng(0)
    made = {}
    (tmp_path / "made").mkdir(exist_ok=True)
    for filename, obj in (
        ("feat1.pt", tensor(rng.standard_normal((73, 192)).astype(np.float32))),
        ("feat2.pt", tensor(rng.standard_normal((73, 1280)).astype(np.float32))),
        (
            "wav2vec2bert_stats.pt",
            {
                "mean": tensor(np.zeros(1024, np.float32)),
                "var": tensor(np.ones(1024, np.float32)),
            },
        ),
    ):
        path = write_torch_zip(tmp_path / "made" / filename, obj)
        made[filename] = Path(path).read_bytes()
    return snapshot_files | made


def test_cli_prints_the_table_then_converts_from_symlinks(tmp_path):
    files = _real_matrices({"bpe.model": b"sentencepiece"}, tmp_path)
    cache = tmp_path / "hub"
    snapshot = hub_repo(cache, "IndexTeam/IndexTTS-2", files)
    only = ("semantic_stats", "speaker_matrix", "emotion_matrix", "bpe_model")
    args = ["convert", "--src", str(cache), "--out", str(tmp_path / "w")]
    result = CliRunner().invoke(main, [*args, *(a for n in only for a in ("--only", n))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"official files under {cache}:"
    assert lines[1].split()[0] == "name" and "official file (hub repo: file)" in lines[1]
    rows = {line.split()[0]: line for line in lines[2:6]}
    rel = snapshot.relative_to(cache)
    assert rows["speaker_matrix"].split() == [
        "speaker_matrix", "IndexTeam/IndexTTS-2:", "feat1.pt", f"{rel}/feat1.pt"
    ]  # fmt: skip
    assert rows["bpe_model"].endswith(f"{rel}/bpe.model")
    assert lines[6].startswith("[1/4] wav2vec2bert_stats.pt (")  # the table comes first
    weights = read_npz(tmp_path / "w" / "speaker_matrix.npz")["weight"]
    assert weights.shape == (73, 192)
    assert (tmp_path / "w" / "bpe.model").read_bytes() == b"sentencepiece"


def test_cli_prints_the_table_before_the_one_line_error(tmp_path):
    main_files(tmp_path / "src")
    result = CliRunner().invoke(
        main, ["convert", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "w")]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert len(rows) == 10 and lines[0] == f"official files under {tmp_path / 'src'}:"
    assert rows["gpt"].split()[-1] == "gpt.pth"
    assert "not found (required; looked for campplus_cn_common.bin," in rows["campplus"]
    assert lines[-1].startswith("error: required file(s) not found under ")
    assert "campplus_cn_common.bin (campplus: looked for" in lines[-1]
    assert not (tmp_path / "w").exists()


def test_cli_file_option_resolves_a_conflict(tmp_path):
    files = _real_matrices({}, tmp_path)
    src = tmp_path / "src"
    put(src / "feat1.pt", files["feat1.pt"])
    put(src / "old/feat1.pt", files["feat2.pt"])  # a different file of the same name
    args = ["convert", "--src", str(src), "--out", str(tmp_path / "w"), "--only", "speaker_matrix"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "CONFLICT: feat1.pt, old/feat1.pt" in refused.output
    assert "--file speaker_matrix=PATH" in refused.output.splitlines()[-1]
    picked = CliRunner().invoke(main, [*args, "--file", f"speaker_matrix={src / 'feat1.pt'}"])
    assert picked.exit_code == 0, picked.output
    assert "feat1.pt  (given with --file)" in picked.output
    bad = CliRunner().invoke(main, [*args, "--file", "speaker_matrix"])
    assert bad.exit_code == 2 and "expected --file NAME=PATH" in bad.output


def test_cli_dry_run_prints_the_table_and_converts_nothing(tmp_path):
    main_files(tmp_path / "src")
    old_hf_cache(tmp_path / "src" / "hf_cache")
    current_hf_cache(tmp_path / "src")
    result = CliRunner().invoke(main, ["convert", "--src", str(tmp_path / "src"), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"official files under {tmp_path / 'src'}:"
    # then where each model's configuration would come from (bigvgan's config.json here is
    # "{}", no generator's: the published configuration)
    configs = [line for line in lines if line.startswith("configuration of ")]
    assert configs[0] == (
        "configuration of campplus: upstream's fixed CAMPPlus(feat_dim=80, embedding_size=192)"
    )
    config_yaml = tmp_path / "src" / "config.yaml"
    assert f"configuration of semantic_codec, gpt, s2mel: {config_yaml}" in configs
    assert len(lines) == 13 + len(configs) == 13 + 4
    assert "(+1 identical copy)" in next(line for line in lines if " campplus " in f" {line}")
    assert lines[-1] == "dry run: 10 file(s) found, nothing converted"
    (tmp_path / "src" / "gpt.pth").unlink()
    missing = CliRunner().invoke(main, ["convert", "--src", str(tmp_path / "src"), "--dry-run"])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines()[-1].startswith("error: required file(s) not found")
    no_out = CliRunner().invoke(main, ["convert", "--src", str(tmp_path / "src")])
    assert no_out.exit_code == 2 and "Missing option '--out'" in no_out.output


def test_a_conflict_of_many_files_names_four_in_the_error(tmp_path):
    for i in range(6):
        put(tmp_path / f"copy{i}" / "gpt.pth", b"x" * (i + 1))
    plan = source_plan(tmp_path, only=("gpt",))
    assert "copy3/gpt.pth (4 B) and 2 more;" in str(plan.problem())
    assert format_plan(plan)[-1].count("gpt.pth") == 7  # the table names them all
