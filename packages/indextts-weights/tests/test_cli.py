"""The ``indextts-weights`` commands: convert's manifest, verify, info, download, errors.

Tiny fake checkpoints and weight folders; nothing here touches the network (``download``
runs the real client against :class:`~indextts_weights.testing_hub.LoopbackHub`, or with
``huggingface_hub`` replaced; more download cases in ``test_download.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import indextts_weights.download as downloading
from indextts_weights.cli import main
from indextts_weights.config import WEIGHT_FILES
from indextts_weights.convert import CONVERTERS, find_source
from indextts_weights.manifest import (
    MANIFEST_NAME,
    describe_file,
    human_size,
    npz_index,
    update_manifest,
)
from indextts_weights.npz import read_config, save_npz
from indextts_weights.readers.testing import safetensors_bytes, tensor, write_torch_zip
from indextts_weights.source_config import config_with, load_yaml
from indextts_weights.testing_hub import LoopbackHub
from mlx_indextts_models.config import from_dict
from mlx_indextts_models.semantic_codec import SemanticCodecArgs


def _test_convert():
    """``test_convert.py`` (its fake checkpoint builders), loaded by path (the tests run
    with ``--import-mode=importlib``, so sibling test modules are not importable)."""
    path = Path(__file__).with_name("test_convert.py")
    spec = importlib.util.spec_from_file_location("_indextts_weights_test_convert", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CONVERT_TESTS = _test_convert()
official = _CONVERT_TESTS.official  # fixture: tiny official stats, matrices and bpe.model
_CODEC_TESTS = _CONVERT_TESTS._sibling("test_mapping_semantic_codec.py")
#: The served codec: the codec tests' tiny one with the 8192 codes the pipeline fixes.
TINY_CODEC = dataclasses.replace(_CODEC_TESTS.TINY, codebook_size=8192)
CODEC_FILE = ("amphion/MaskGCT", "semantic_codec/model.safetensors")
REAL_CONFIG = Path(__file__).resolve().parents[3] / "docs" / "reference" / "indextts2-config.yaml"


def _tiny_codec_files() -> dict[tuple[str, str], bytes]:
    """A complete tiny ``semantic_codec/model.safetensors`` and the official ``config.yaml``
    with its sizes written in (as the hub's repos hold them)."""
    state = _CODEC_TESTS.official_state()
    rng = np.random.default_rng(1)
    state["quantizer.quantizers.0.codebook.weight"] = rng.standard_normal(
        (TINY_CODEC.codebook_size, TINY_CODEC.codebook_dim)
    ).astype(np.float32)
    config = config_with(load_yaml(REAL_CONFIG), semantic_codec=TINY_CODEC)
    return {
        CODEC_FILE: safetensors_bytes(state),
        ("IndexTeam/IndexTTS-2", "config.yaml"): yaml.safe_dump(config).encode(),
    }


PARTIAL_ARGS = _CONVERT_TESTS.PARTIAL_ARGS  # --only for each file the fixture holds

# A small array per weights file: name -> (array name, shape)
SHAPES = {
    "bigvgan": (3, 5), "campplus": (3, 4), "emotion_matrix": (73, 1280), "gpt": (10, 100),
    "s2mel": (2, 8), "semantic_codec": (4, 4), "semantic_stats": (1024,),
    "speaker_matrix": (73, 192), "w2vbert": (6, 7),
}  # fmt: skip


def make_weights(folder: Path, *, optional: bool = True, manifest: bool = True) -> Path:
    """A complete weights folder of small arrays (values 0, 1, 2, ... per file)."""
    for name, shape in SHAPES.items():
        if not optional and name in ("emotion_matrix", "speaker_matrix"):
            continue
        values = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        save_npz(folder / WEIGHT_FILES[name], {"layer.weight": values}, model=name)
    (folder / "bpe.model").write_bytes(b"sentencepiece model")
    if manifest:
        update_manifest(folder, [])
    return folder


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def lines_of(result) -> list[str]:
    return result.output.strip().splitlines()


def report(result) -> dict[str, tuple[str, str]]:
    """``verify``'s lines as name -> (status, detail)."""
    rows = {}
    for line in lines_of(result):
        if len(line) > 16 and line[15] == " " and not line.startswith(("warning", "error")):
            name, _, detail = line[16:].partition(" ")
            rows[name] = (line[:15].strip(), detail.strip())
    return rows


# --- convert: manifest -----------------------------------------------------------------


def test_convert_writes_a_manifest_of_every_output(official, tmp_path):
    src, _ = official
    out = tmp_path / "w"
    result = invoke("convert", "--src", src, "--out", out, *PARTIAL_ARGS)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["manifest_version"] == 1 and manifest["npz_format_version"] == 1
    files = manifest["files"]
    assert sorted(files) == [
        "bpe.model",
        "emotion_matrix.npz",
        "semantic_stats.npz",
        "speaker_matrix.npz",
    ]
    for name, entry in files.items():
        data = (out / name).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert files["bpe.model"]["format_version"] is None
    speaker = files["speaker_matrix.npz"]
    assert speaker["format_version"] == 1 and speaker["model"] == "speaker_matrix"
    assert speaker["arrays"] == {"weight": {"shape": [73, 192], "dtype": "float32"}}
    assert speaker["parameters"] == 73 * 192
    stats = files["semantic_stats.npz"]
    assert stats["parameters"] == 2048 and set(stats["arrays"]) == {"mean", "std"}
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_convert_progress_names_file_size_and_seconds(official, tmp_path):
    src, _ = official
    result = invoke("convert", "--src", src, "--out", tmp_path / "w", "--only", "speaker_matrix")
    assert result.exit_code == 0, result.output
    size = human_size((tmp_path / "w" / "speaker_matrix.npz").stat().st_size)
    assert "[1/1] feat1.pt (" in result.output
    assert f"[1/1] speaker_matrix.npz: {size} in " in result.output


def test_only_with_force_updates_the_manifest_and_keeps_other_entries(official, tmp_path):
    src, _ = official
    out = tmp_path / "w"
    assert invoke("convert", "--src", src, "--out", out, *PARTIAL_ARGS).exit_code == 0
    before = json.loads((out / MANIFEST_NAME).read_text())["files"]
    write_torch_zip(src / "checkpoints" / "feat1.pt", tensor(np.ones((73, 192), np.float32)))
    refused = invoke("convert", "--src", src, "--out", out, "--only", "speaker_matrix")
    assert refused.exit_code == 2
    assert lines_of(refused) == [
        f"error: refusing to overwrite 1 existing file(s) in {out}: speaker_matrix.npz "
        "(pass --force to replace them)"
    ]
    forced = invoke("convert", "--src", src, "--out", out, "--only", "speaker_matrix", "--force")
    assert forced.exit_code == 0, forced.output
    after = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert set(after) == set(before)
    assert after["speaker_matrix.npz"]["sha256"] != before["speaker_matrix.npz"]["sha256"]
    assert after["speaker_matrix.npz"] == describe_file(out / "speaker_matrix.npz")
    assert {k: v for k, v in after.items() if k != "speaker_matrix.npz"} == {
        k: v for k, v in before.items() if k != "speaker_matrix.npz"
    }


def test_npz_index_reads_shapes_dtypes_and_metadata(tmp_path):
    path = save_npz(
        tmp_path / "x.npz",
        {"a.b": np.zeros((3, 4), np.float32), "c": np.arange(5, dtype=np.int64)},
        model="gpt",
    )
    meta, index = npz_index(path)
    assert meta["format_version"] == 1 and meta["model"] == "gpt"
    assert index == {"a.b": ((3, 4), "float32"), "c": ((5,), "int64")}


# --- verify ----------------------------------------------------------------------------


def test_verify_all_ok(tmp_path):
    folder = make_weights(tmp_path / "w")
    result = invoke("verify", folder)
    assert result.exit_code == 0, result.output
    lines = lines_of(result)
    names = sorted([*WEIGHT_FILES.values(), "bpe.model"])
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", n] for n in names]
    assert lines[-1] == "all 10 file(s) ok"


def test_verify_reports_a_flipped_byte_as_a_hash_mismatch(tmp_path):
    folder = make_weights(tmp_path / "w")
    path = folder / "gpt.npz"
    data = bytearray(path.read_bytes())
    values = np.arange(1000, dtype=np.float32).tobytes()
    offset = bytes(data).find(values) + 501  # inside the array data
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    result = invoke("verify", folder)
    assert result.exit_code == 1, result.output
    bad = [line for line in lines_of(result) if not line.startswith("ok ")]
    assert bad[0].startswith("hash mismatch   gpt.npz")
    assert bad[1:] == ["1 problem(s) in " + str(folder)]
    assert invoke("verify", folder, "--no-hash").exit_code == 0  # sizes and shapes still fit


def test_verify_reports_missing_size_and_shape_mismatches(tmp_path):
    folder = make_weights(tmp_path / "w")
    (folder / "w2vbert.npz").unlink()
    with open(folder / "bpe.model", "ab") as handle:
        handle.write(b"!")
    # same byte count, other shape: only the shapes tell
    save_npz(
        folder / "campplus.npz", {"layer.weight": np.zeros((4, 3), np.float32)}, model="campplus"
    )
    result = invoke("verify", folder)
    assert result.exit_code == 1
    by_name = {name: f"{status} {detail}" for name, (status, detail) in report(result).items()}
    assert by_name["w2vbert.npz"].startswith("missing")
    assert by_name["bpe.model"].startswith("size mismatch")
    assert "20 bytes, manifest says 19" in by_name["bpe.model"]
    assert by_name["campplus.npz"].startswith("shape mismatch")
    assert by_name["campplus.npz"].endswith("arrays differ: layer.weight")
    assert by_name["gpt.npz"].startswith("ok")
    assert lines_of(result)[-1] == f"3 problem(s) in {folder}"


def test_verify_without_manifest_checks_presence_and_readability(tmp_path):
    folder = make_weights(tmp_path / "w", optional=False, manifest=False)
    result = invoke("verify", folder)
    assert result.exit_code == 0, result.output
    lines = lines_of(result)
    assert lines[0].startswith(f"warning: no manifest.json in {folder}: sizes and SHA-256 hashes")
    assert "cannot be checked" in lines[0]
    assert any(
        line.startswith("absent") and "emotion_matrix.npz" in line and "optional" in line
        for line in lines
    )
    data = (folder / "s2mel_pytorch.npz").read_bytes()
    (folder / "s2mel_pytorch.npz").write_bytes(data[: len(data) // 2])  # truncated
    (folder / "gpt.npz").unlink()
    broken = invoke("verify", folder)
    assert broken.exit_code == 1
    assert any(
        line.startswith("unreadable") and "s2mel_pytorch.npz" in line for line in lines_of(broken)
    )
    assert any(line.startswith("missing") and "gpt.npz" in line for line in lines_of(broken))


def test_verify_of_a_missing_folder_is_a_one_line_error(tmp_path):
    result = invoke("verify", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert lines_of(result) == [f"error: weights folder not found: {tmp_path / 'nowhere'}"]


# --- info ------------------------------------------------------------------------------


def test_info_lists_sizes_parameters_versions_and_totals(tmp_path):
    folder = make_weights(tmp_path / "w", optional=False)
    result = invoke("info", folder)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in lines_of(result)}
    gpt_size = human_size((folder / "gpt.npz").stat().st_size)
    assert rows["gpt.npz"] == ["gpt.npz", *gpt_size.split(), "1,000", "v1"]
    assert rows["semantic_stats.npz"][-2:] == ["1,024", "v1"]
    assert rows["bpe.model"] == ["bpe.model", "19", "B", "-", "-"]
    assert rows["emotion_matrix.npz"][-1] == "(optional)"
    total = sum(p.stat().st_size for p in folder.iterdir() if p.name != MANIFEST_NAME)
    params = sum(int(np.prod(s)) for n, s in SHAPES.items() if "matrix" not in n)
    assert rows["total"] == ["total", *human_size(total).split(), f"{params:,}", "8", "file(s)"]
    assert lines_of(result)[-1] == (
        "emotion matrices: absent (emotion_matrix.npz, speaker_matrix.npz; emo_vector unavailable)"
    )
    full = make_weights(tmp_path / "full")
    assert lines_of(invoke("info", full))[-1] == "emotion matrices: present (emo_vector available)"


# --- download --------------------------------------------------------------------------


def test_official_files_cover_every_converter_where_convert_finds_them(tmp_path):
    for repo_id, filename in downloading.OFFICIAL_FILES:
        path = tmp_path / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for name, converter in CONVERTERS.items():
        repo_id, filename = converter.origin.split(": ")
        assert (repo_id, filename) in downloading.OFFICIAL_FILES, name
        assert find_source(tmp_path, converter.patterns, name) == tmp_path / repo_id / filename
    assert ("IndexTeam/IndexTTS-2", "bpe.model") in downloading.OFFICIAL_FILES


@pytest.fixture
def fake_hub(official, monkeypatch):
    """The real client against a :class:`LoopbackHub` serving the fake checkpoints (a tiny
    codec and the config.yaml that describes it, stats, matrices, bpe.model);
    ``OFFICIAL_FILES`` limited to them."""
    src, values = official
    files = _tiny_codec_files()
    names = ("bpe.model", "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt")
    files |= {
        ("IndexTeam/IndexTTS-2", name): (src / "checkpoints" / name).read_bytes() for name in names
    }
    monkeypatch.setattr(downloading, "OFFICIAL_FILES", tuple(files))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with LoopbackHub(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        # huggingface_hub reads HF_ENDPOINT at import: if an earlier test imported it, what
        # it reads behind download.py's back (e.g. its agent registry) must stay here too
        constants = pytest.importorskip("huggingface_hub.constants")
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        template = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        yield hub, values


def _gets(hub: LoopbackHub) -> int:
    """The files' downloads (from the CDN; not the client's own ``/api`` calls)."""
    return sum(r.method == "GET" and r.server == "cdn" for r in hub.requests)


def test_download_fetches_into_the_cache_then_converts(fake_hub, tmp_path):
    hub, values = fake_hub
    cache, out = tmp_path / "cache", tmp_path / "weights"
    result = invoke("download", "--out", out, "--cache", cache)
    assert result.exit_code == 0, result.output
    assert _gets(hub) == 5  # the LFS files from the CDN; config.yaml from the hub itself
    for repo, name in downloading.OFFICIAL_FILES:  # each one checked against the hub's id
        data = (cache / repo / name).read_bytes()
        served = hub.file(repo, name)
        assert hashlib.sha256(data).hexdigest() == served.sha256
        checked = "SHA-256" if served.lfs else "git blob id"
        assert f"{repo}/{name}: {human_size(len(data))} in " in result.output
        assert f"{checked} ok" in result.output.split(f"{repo}/{name}: ")[1].splitlines()[0]
    assert "configuration of semantic_codec: " in result.output
    codec = read_config(out / "semantic_codec.npz", model="semantic_codec")
    assert from_dict(SemanticCodecArgs, codec) == TINY_CODEC  # from the served config.yaml
    converted = {"semantic_codec", "semantic_stats", "speaker_matrix", "emotion_matrix"}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(WEIGHT_FILES[n] for n in converted), "bpe.model", MANIFEST_NAME]
    )
    emotion = np.load(out / "emotion_matrix.npz")["weight"]
    np.testing.assert_array_equal(emotion, values["feat2"])
    check = invoke("verify", out)
    failing = sorted(line.split()[1] for line in lines_of(check) if line.startswith("missing"))
    assert failing == ["bigvgan.npz", "campplus.npz", "gpt.npz", "s2mel_pytorch.npz", "w2vbert.npz"]
    requests = len(hub.requests)
    again = invoke("download", "--out", out, "--cache", cache)  # refused before any request
    assert again.exit_code == 2 and len(hub.requests) == requests
    assert lines_of(again) == [
        f"error: refusing to overwrite 5 existing file(s) in {out}: semantic_codec.npz, "
        "semantic_stats.npz, speaker_matrix.npz, emotion_matrix.npz, bpe.model "
        "(pass --force to replace them)"
    ]
    forced = invoke("download", "--out", out, "--cache", cache, "--force")
    assert forced.exit_code == 0, forced.output
    assert _gets(hub) == 5  # the cached files are this version: nothing fetched again
    assert "0 B to download" in forced.output


def test_download_keeps_the_originals_unless_asked(fake_hub, tmp_path):
    hub, _ = fake_hub
    cache = tmp_path / "cache"
    kept = invoke("download", "--out", tmp_path / "a", "--cache", cache)
    assert kept.exit_code == 0, kept.output
    assert len(list((cache / "IndexTeam/IndexTTS-2").glob("*.p*"))) == 3
    freed = invoke("download", "--out", tmp_path / "b", "--cache", cache, "--delete-originals")
    assert freed.exit_code == 0, freed.output
    assert (tmp_path / "b" / "semantic_codec.npz").is_file()
    total = sum(len(hub.file(*key).data) for key in downloading.OFFICIAL_FILES)
    assert f"removed the downloaded originals ({human_size(total)}) from {cache}" in freed.output
    assert cache.is_dir() and not any(cache.iterdir())
    both = invoke("download", "--no-convert", "--delete-originals", "--cache", cache)
    assert both.exit_code == 2 and "cannot be combined with --no-convert" in both.output


def test_download_offline_converts_the_cached_files_without_the_network(
    fake_hub, tmp_path, monkeypatch
):
    hub, values = fake_hub
    cache = tmp_path / "cache"
    assert invoke("download", "--no-convert", "--cache", cache).exit_code == 0
    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("download", "--out", tmp_path / "w", "--cache", cache)
    assert result.exit_code == 0, result.output
    assert lines_of(result)[0].startswith("offline (HF_HUB_OFFLINE=1): using the 6 cached files")
    feat1 = np.load(tmp_path / "w" / "speaker_matrix.npz")["weight"]
    np.testing.assert_array_equal(feat1, values["feat1"])


def test_download_without_huggingface_hub_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    result = invoke("download", "--out", tmp_path / "w", "--cache", tmp_path / "c")
    assert result.exit_code == 2
    assert lines_of(result) == [
        "error: downloading needs huggingface_hub, which is not installed: "
        "pip install 'indextts-weights[download]'"
    ]
    assert "Traceback" not in result.output


def _hub_raising(monkeypatch, exc: Exception) -> None:
    """A ``huggingface_hub`` whose metadata request (the first one made) raises ``exc``."""
    hub = types.ModuleType("huggingface_hub")

    def hf_hub_url(repo_id, filename, endpoint=None):
        return f"https://hub.invalid/{repo_id}/resolve/main/{filename}"

    def get_hf_file_metadata(url, endpoint=None):
        raise exc

    hub.hf_hub_url = hf_hub_url
    hub.get_hf_file_metadata = get_hf_file_metadata
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


class LocalEntryNotFoundError(FileNotFoundError):
    """What huggingface_hub raises when the hub cannot be reached."""


class ConnectError(Exception):
    """httpx's connection failure (not an OSError)."""


class RepositoryNotFoundError(Exception):
    pass


@pytest.mark.parametrize(
    "exc",
    [
        LocalEntryNotFoundError("An error happened while trying to locate the file\nmore"),
        ConnectError("[Errno -2] Name or service not known"),
    ],
    ids=["no-connection", "httpx-connect"],
)
def test_download_without_network_is_one_line_and_exit_2(tmp_path, monkeypatch, exc):
    _hub_raising(monkeypatch, exc)
    result = invoke("download", "--out", tmp_path / "w", "--cache", tmp_path / "c")
    assert result.exit_code == 2
    assert lines_of(result) == [
        "error: cannot reach the Hugging Face Hub to fetch IndexTeam/IndexTTS-2/gpt.pth "
        f"({type(exc).__name__}): check the network connection (or HF_ENDPOINT / proxy "
        "settings) and try again",
    ]


def test_download_hub_refusal_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    _hub_raising(monkeypatch, RepositoryNotFoundError("404 Client Error.\n\nRepository Not Found"))
    args = ("download", "--out", tmp_path / "w", "--cache", tmp_path / "c")
    result = invoke(*args)
    assert result.exit_code == 2
    assert lines_of(result)[-1] == (
        "error: could not download IndexTeam/IndexTTS-2/gpt.pth: RepositoryNotFoundError: "
        "404 Client Error."
    )
    debug = invoke("--debug", *args)
    assert isinstance(debug.exception, downloading.DownloadError)
    assert isinstance(debug.exception.__cause__, RepositoryNotFoundError)


def test_unexpected_errors_are_one_line_too(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(downloading, "remote_file", broken)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = invoke("download", "--out", tmp_path / "w", "--cache", tmp_path / "c")
    assert result.exit_code == 2
    assert lines_of(result)[-1] == (
        "error: unexpected RuntimeError: boom; second line (this is a bug: please report it "
        "with the traceback that `indextts-weights --debug ...` prints)"
    )


# --- help and the installed entry point ------------------------------------------------


@pytest.mark.parametrize("command", ["convert", "verify", "info", "download"])
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"indextts-weights {command} " in result.output


def test_installed_entry_point_runs_as_a_subprocess(official, tmp_path):
    src, _ = official
    exe = shutil.which("indextts-weights") or str(Path(sys.executable).parent / "indextts-weights")
    command = [exe] if Path(exe).exists() else [sys.executable, "-m", "indextts_weights.cli"]

    def run(*args):
        return subprocess.run(
            [*command, *map(str, args)], capture_output=True, text=True, check=False, timeout=120
        )

    out = tmp_path / "w"
    converted = run("convert", "--src", src, "--out", out, *PARTIAL_ARGS)
    assert converted.returncode == 0, converted.stderr
    assert "semantic_stats: " in converted.stdout and "manifest.json" in converted.stderr
    checked = run("verify", out)
    assert checked.returncode == 1  # the five big files are missing
    assert "ok              speaker_matrix.npz" in checked.stdout
    assert "missing         gpt.npz" in checked.stdout
    failed = run("info", tmp_path / "nowhere")
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"error: weights folder not found: {tmp_path / 'nowhere'}"


def test_verify_names_unrecorded_files_and_rejects_a_broken_manifest(tmp_path):
    folder = make_weights(tmp_path / "w", optional=False)
    save_npz(folder / "speaker_matrix.npz", {"weight": np.zeros((73, 192), np.float32)}, model="x")
    result = invoke("verify", folder)
    assert result.exit_code == 0, result.output  # present but unrecorded is not a failure
    rows = report(result)
    assert rows["speaker_matrix.npz"][0] == "unrecorded"
    assert rows["speaker_matrix.npz"][1].endswith("not in manifest.json")
    assert rows["emotion_matrix.npz"] == ("absent", "optional; enables emo_vector")
    (folder / MANIFEST_NAME).write_text("{not json")
    broken = invoke("verify", folder)
    assert broken.exit_code == 2 and len(lines_of(broken)) == 1
    assert lines_of(broken)[0].startswith(f"error: {folder / MANIFEST_NAME} is not readable JSON")


def test_download_refuses_an_unknown_dtype_before_fetching(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("nothing may be fetched")

    monkeypatch.setattr(downloading, "remote_file", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # the API (the CLI's --dtype is a click.Choice of the same names)
    with pytest.raises(downloading.WeightsError, match="dtype must be one of float32"):
        downloading.download(tmp_path / "w", cache_dir=tmp_path / "c", dtype="float64")
    assert not (tmp_path / "c").exists()
