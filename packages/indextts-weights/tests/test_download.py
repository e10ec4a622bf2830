"""``indextts-weights download`` with the real ``huggingface_hub`` client against a hub on
loopback (:mod:`indextts_weights.testing_hub`): the installed entry point in a subprocess
with ``HF_ENDPOINT`` pointing there, ``HF_HOME`` in a temporary folder. Nothing here
reaches the internet.

The ten official files are served as seeded random bytes in the official repositories'
layouts, so these runs use ``--no-convert``; download + convert is tested in-process in
``test_cli.py`` on the convertible tiny checkpoints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from indextts_weights.download import CONFIG_FILES, OFFICIAL_FILES
from indextts_weights.testing_hub import OFFICIAL_REPOS, LoopbackHub, closed_port_endpoint

GPT = ("IndexTeam/IndexTTS-2", "gpt.pth")
CODEC = ("amphion/MaskGCT", "semantic_codec/model.safetensors")
CONFIG = ("IndexTeam/IndexTTS-2", "config.yaml")
N = len(OFFICIAL_FILES)  # 13: ten checkpoints and three config files


def _command() -> list[str]:
    exe = shutil.which("indextts-weights") or str(Path(sys.executable).parent / "indextts-weights")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "indextts_weights.cli"]


def seeded_files(seed: int = 13) -> dict[tuple[str, str], bytes]:
    """The official files as random bytes (a few KiB to ~250 KiB each)."""
    rng = np.random.default_rng(seed)
    return {
        key: rng.integers(0, 256, 2048 + 20_000 * i, dtype=np.uint8).tobytes()
        for i, key in enumerate(OFFICIAL_FILES)
    }


@pytest.fixture
def hub():
    with LoopbackHub(seeded_files()) as served:
        yield served


@pytest.fixture
def run(tmp_path):
    """``run(endpoint, *args, offline=False)``: the entry point with a clean hub env."""

    def invoke(endpoint: str, *args: object, offline: bool = False):
        return subprocess.run(
            [*_command(), *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=_env(tmp_path, endpoint, offline=offline),
        )

    return invoke


def _env(tmp_path: Path, endpoint: str, *, offline: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_CACHE=str(tmp_path / "hf-home" / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="5",
        HF_HUB_DOWNLOAD_TIMEOUT="5",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _fetch_args(tmp_path: Path) -> tuple[object, ...]:
    return ("download", "--no-convert", "--out", tmp_path / "w", "--cache", tmp_path / "cache")


def _cached(tmp_path: Path, key: tuple[str, str]) -> Path:
    return tmp_path / "cache" / key[0] / key[1]


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_full_download_reports_the_total_first_and_checks_every_file(hub, run, tmp_path):
    assert {repo for repo, _ in OFFICIAL_FILES} == set(OFFICIAL_REPOS)
    result = run(hub.endpoint, *_fetch_args(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    total = sum(len(hub.file(*key).data) for key in OFFICIAL_FILES)
    assert lines[0].startswith(f"{N} files from the Hugging Face Hub, {_size(total)} in total, ")
    assert lines[0].endswith(f"{_size(total)} to download into {tmp_path / 'cache'}")
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == N
    assert progress[0].startswith(f"[1/{N}] IndexTeam/IndexTTS-2/gpt.pth: ")
    for line, key in zip(progress, OFFICIAL_FILES, strict=True):  # each against the hub's id
        assert line.startswith(f"[{OFFICIAL_FILES.index(key) + 1}/{N}] {'/'.join(key)}: ")
        assert ("git blob id ok" if key in CONFIG_FILES else "SHA-256 ok") in line
    assert progress[-1].split("(total ")[1].startswith(f"{_size(total)} of {_size(total)};")
    for key in OFFICIAL_FILES:
        path = _cached(tmp_path, key)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hub.file(*key).sha256
    assert f"{'/'.join(CODEC)}: {_cached(tmp_path, CODEC)}" in result.stdout
    # every HEAD asked the hub; the LFS bytes came from the CDN (another origin), the
    # config files' from the hub itself (regular git files), one GET each
    gets = [r for r in hub.requests if r.method == "GET" and not r.path.startswith("/api/")]
    assert sum(r.server == "cdn" for r in gets) == N - len(CONFIG_FILES) == 10
    assert sum(r.server == "hub" for r in gets) == len(CONFIG_FILES) == 3
    assert not (tmp_path / "w").exists()  # --no-convert writes nothing there

    before = len(hub.requests)
    again = run(hub.endpoint, *_fetch_args(tmp_path))
    assert again.returncode == 0, again.stderr
    assert f"in total, 0 B to download into {tmp_path / 'cache'}" in again.stderr
    assert again.stderr.count(" cached (total ") == N
    assert not [r for r in hub.requests[before:] if r.server == "cdn"]  # nothing re-fetched


def test_a_connection_cut_mid_file_is_resumed_with_a_range_request(hub, run, tmp_path):
    # The client writes in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB) and resumes from the last
    # whole chunk: serve a file of 1.5 chunks and cut it after 1.2.
    from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE as CHUNK

    rng = np.random.default_rng(1)
    blob = hub.add(*GPT, rng.integers(0, 256, CHUNK * 3 // 2, dtype=np.uint8).tobytes())
    hub.cut(*GPT, after=CHUNK * 6 // 5)
    result = run(hub.endpoint, *_fetch_args(tmp_path))
    assert result.returncode == 0, result.stderr
    first, second = hub.downloads(GPT[1])
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={CHUNK}-"  # resumed after the written chunk
    assert "Trying to resume download..." in result.stderr
    data = _cached(tmp_path, GPT).read_bytes()
    assert len(data) == len(blob.data)
    assert hashlib.sha256(data).hexdigest() == blob.sha256
    assert f"[1/{N}] IndexTeam/IndexTTS-2/gpt.pth: " in result.stderr
    assert not [p for p in _files_under(tmp_path / "cache") if p.name.endswith(".incomplete")]


def test_a_run_interrupted_mid_file_is_resumed_by_the_next_with_a_range_request(hub, run, tmp_path):
    from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE as CHUNK

    from indextts_weights.download import partial_path

    rng = np.random.default_rng(2)
    blob = hub.add(*GPT, rng.integers(0, 256, CHUNK * 3 // 2, dtype=np.uint8).tobytes())
    hub.stall(*GPT, after=CHUNK * 6 // 5)  # then silence: the user presses Ctrl-C
    env = {**_env(tmp_path, hub.endpoint), "HF_HUB_DOWNLOAD_TIMEOUT": "60"}
    first = subprocess.Popen(
        [*_command(), *map(str, _fetch_args(tmp_path))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    part = partial_path(tmp_path / "cache" / GPT[0], blob.sha256)
    deadline = time.monotonic() + 60
    while not (part.is_file() and part.stat().st_size >= CHUNK) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode != 0, stderr
    assert "interrupted: 10.0 MiB of IndexTeam/IndexTTS-2/gpt.pth kept (run the command" in stderr
    assert part.stat().st_size == CHUNK  # the whole chunk written before the stall
    assert not _cached(tmp_path, GPT).exists()

    second = run(hub.endpoint, *_fetch_args(tmp_path))
    assert second.returncode == 0, second.stderr
    assert hub.downloads(GPT[1])[-1].headers["range"] == f"bytes={CHUNK}-"
    data = _cached(tmp_path, GPT).read_bytes()
    assert hashlib.sha256(data).hexdigest() == blob.sha256
    assert not part.exists()
    assert f"[1/{N}] IndexTeam/IndexTTS-2/gpt.pth: 15.0 MiB in " in second.stderr


def test_a_corrupted_byte_is_one_clear_error_and_nothing_is_kept(hub, run, tmp_path):
    hub.corrupt(*CODEC)
    result = run(hub.endpoint, "download", "--out", tmp_path / "w", "--cache", tmp_path / "cache")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    sha = hub.file(*CODEC).sha256
    assert lines[-1].startswith(f"error: {'/'.join(CODEC)} is corrupted: its SHA-256 is ")
    assert lines[-1].endswith(f"the hub's is {sha} (the file was removed: run the command again)")
    assert [line for line in lines if line.startswith("error")] == [lines[-1]]
    assert not _cached(tmp_path, CODEC).exists()
    assert not (tmp_path / "w").exists()  # conversion never started
    assert f"[7/{N}] IndexTeam/IndexTTS-2/config.yaml" in result.stderr  # earlier files kept

    hub.corrupt(*CODEC, corrupt=False)
    fixed = run(hub.endpoint, *_fetch_args(tmp_path))
    assert fixed.returncode == 0, fixed.stderr
    assert hashlib.sha256(_cached(tmp_path, CODEC).read_bytes()).hexdigest() == sha
    assert fixed.stderr.count(" cached (total ") == 7  # only the rest is fetched


def test_a_corrupted_config_file_is_caught_by_its_git_blob_id(hub, run, tmp_path):
    hub.corrupt(*CONFIG)
    result = run(hub.endpoint, *_fetch_args(tmp_path))
    assert result.returncode == 2
    oid = hub.file(*CONFIG).git_oid
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {'/'.join(CONFIG)} is corrupted: its git blob id is "
        f"{_git_blob_id(_flipped(hub.file(*CONFIG).data))}, the hub's is {oid} (the file "
        "was removed: run the command again)"
    )
    assert not _cached(tmp_path, CONFIG).exists()


def test_an_unreachable_hub_is_one_line_exit_2_and_nothing_written(run, tmp_path):
    result = run(
        closed_port_endpoint(),
        "download",
        "--out",
        tmp_path / "w",
        "--cache",
        tmp_path / "cache",
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot reach the Hugging Face Hub to fetch IndexTeam/IndexTTS-2/gpt.pth "
        "(ConnectError): check the network connection (or HF_ENDPOINT / proxy settings) "
        "and try again"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "w").exists()
    assert _files_under(tmp_path / "cache") == []


def test_offline_with_everything_cached_needs_no_network(hub, run, tmp_path):
    assert run(hub.endpoint, *_fetch_args(tmp_path)).returncode == 0
    hub.close()  # from here on, any request would be refused
    result = run(closed_port_endpoint(), *_fetch_args(tmp_path), offline=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"offline (HF_HUB_OFFLINE=1): using the {N} cached files (")
    assert sum(" cached (total " in line for line in lines) == N

    _cached(tmp_path, GPT).unlink()
    missing = run(closed_port_endpoint(), *_fetch_args(tmp_path), offline=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: offline (HF_HUB_OFFLINE=1) and IndexTeam/IndexTTS-2/gpt.pth is not in the "
        f"cache ({_cached(tmp_path, GPT)}): unset HF_HUB_OFFLINE to download it"
    ]


def test_an_unknown_repository_is_the_hubs_refusal_in_one_line(run, tmp_path):
    with LoopbackHub({("someone/else", "x.bin"): b"x"}) as other:
        result = run(other.endpoint, *_fetch_args(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: could not download IndexTeam/IndexTTS-2/gpt.pth: RepositoryNotFoundError: "
        + result.stderr.split("RepositoryNotFoundError: ", 1)[1].strip()
    ]
    assert "404" in result.stderr


def _flipped(data: bytes) -> bytes:
    """``data`` as :meth:`LoopbackHub.corrupt` serves it."""
    from indextts_weights.testing_hub import flipped

    return flipped(data)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def _size(n: int) -> str:
    from indextts_weights.manifest import human_size

    return human_size(n)


def test_the_progress_bar_fits_the_xet_reporter_too():
    """The real hub serves these repositories through Xet (``hf_xet``), which the loopback
    hub does not speak: drive the bar class through the client's Xet progress reporter."""
    xet = pytest.importorskip("huggingface_hub.utils._xet_progress_reporting")
    from types import SimpleNamespace

    from indextts_weights.download import _bar_class, _Totals

    totals = _Totals(1000)
    reporter = xet.XetDownloadProgressReporter(
        reconstruction_desc="gpt.pth: reconstructing file",
        total=1000,
        log_level=30,
        tqdm_class=_bar_class(totals),
    )
    with reporter:
        for done, sent in ((400, 300), (1000, 700)):
            report = SimpleNamespace(
                total_bytes_completed=done,
                total_transfer_bytes_completed=sent,
                total_bytes_completion_rate=1.0,
                total_transfer_bytes_completion_rate=1.0,
                total_bytes=1000,
            )
            reporter.update_progress(report)
    assert totals.done == 1000  # the file's bytes once, not the transfer bytes on top


def test_snapshot_download_from_the_hub_is_a_layout_convert_finds(hub, tmp_path):
    """The real client's own cache layout (``models--ORG--NAME/snapshots/REV/…``, symlinks
    into ``blobs/``), written by ``snapshot_download`` with ``allow_patterns`` (the
    ``/api/models/…/revision`` and ``/tree`` listings), is found file by file."""
    from indextts_weights.convert import source_plan

    script = (
        "import sys; from huggingface_hub import snapshot_download\n"
        "for repo, *patterns in (a.split(',') for a in sys.argv[2:]):\n"
        "    snapshot_download(repo, allow_patterns=patterns, cache_dir=sys.argv[1])\n"
    )
    repos = [
        ",".join([repo, *(f for r, f in OFFICIAL_FILES if r == repo)]) for repo in OFFICIAL_REPOS
    ]
    cache = tmp_path / "hf-cache"
    fetched = subprocess.run(
        [sys.executable, "-c", script, str(cache), *repos],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=_env(tmp_path, hub.endpoint),
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "/api/models/amphion/MaskGCT/revision/main" in {r.path for r in hub.requests}
    plan = source_plan(cache)
    plan.check()
    chosen = plan.sources()
    assert len(chosen) == len(OFFICIAL_FILES) - len(CONFIG_FILES)  # the config files are read
    for path in chosen.values():
        snapshot = path.relative_to(cache).parts
        repo = snapshot[0].removeprefix("models--").replace("--", "/")
        filename = "/".join(snapshot[3:])
        assert path.is_symlink() and snapshot[1] == "snapshots"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hub.file(repo, filename).sha256
