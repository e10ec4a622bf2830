"""Fetch the official IndexTTS-2 checkpoints from the Hugging Face Hub, then convert them.

Needs the optional ``huggingface_hub`` (``pip install 'indextts-weights[download]'``).
Files land in a cache folder as ``<cache>/<repo id>/<file name>`` (``hf_hub_download``'s
``local_dir`` layout, which :func:`indextts_weights.convert.convert` finds), so a second run
downloads nothing. What the client does and what is added here:

- the total size (from the hub's ``HEAD`` metadata: ``X-Linked-Size``) is reported before
  anything is fetched; then one line per file and the running total;
- ``huggingface_hub`` retries a connection cut mid-file with a ``Range`` request (up to 5
  times in the same run); it checks the size, not the content, so every fetched LFS file
  is checked here against the SHA-256 the hub gives as its ETag (a mismatch removes the
  file: nothing half-written is kept, and the next run fetches it again);
- offline (``HF_HUB_OFFLINE=1``) the cached files are used without any request;
- nothing is deleted unless asked (``delete_originals``, after a successful conversion).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from indextts_weights.config import WEIGHT_FILES
from indextts_weights.convert import CONVERTERS, convert, refuse_overwrite
from indextts_weights.errors import WeightsError
from indextts_weights.manifest import BPE_NAME, human_size, sha256_file
from indextts_weights.npz import DTYPES

# (repo id, file name): what infer_v2.py's IndexTTS2.__init__ reads (docs/checkpoints.md).
OFFICIAL_FILES: tuple[tuple[str, str], ...] = (
    ("IndexTeam/IndexTTS-2", "gpt.pth"),
    ("IndexTeam/IndexTTS-2", "s2mel.pth"),
    ("IndexTeam/IndexTTS-2", "bpe.model"),
    ("IndexTeam/IndexTTS-2", "wav2vec2bert_stats.pt"),
    ("IndexTeam/IndexTTS-2", "feat1.pt"),
    ("IndexTeam/IndexTTS-2", "feat2.pt"),
    ("IndexTeam/IndexTTS-2", "config.yaml"),
    ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
    ("funasr/campplus", "campplus_cn_common.bin"),
    ("facebook/w2v-bert-2.0", "model.safetensors"),
    ("facebook/w2v-bert-2.0", "config.json"),
    ("nvidia/bigvgan_v2_22khz_80band_256x", "bigvgan_generator.pt"),
    ("nvidia/bigvgan_v2_22khz_80band_256x", "config.json"),
)
#: The configuration files among them (read by the converter, not converted:
#: :mod:`indextts_weights.source_config`).
CONFIG_FILES = frozenset(key for key in OFFICIAL_FILES if key[1].endswith((".yaml", ".json")))

INSTALL_HINT = "pip install 'indextts-weights[download]'"

# Exception class names (anywhere in the MRO) that mean "the hub could not be reached".
_NETWORK_ERRORS = frozenset(
    {
        "LocalEntryNotFoundError",  # huggingface_hub: no connection and nothing cached
        "OfflineModeIsEnabled",
        "ConnectionError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "TimeoutException",
        "NetworkError",
        "RemoteProtocolError",  # the connection dropped mid-file (after the client's retries)
        "ProxyError",
        "SSLError",
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_OID = re.compile(r"^[0-9a-f]{40}$")
# Where hf_hub_download(local_dir=...) records each file's commit and ETag.
_METADATA_DIR = Path(".cache") / "huggingface" / "download"
# Where _fetch_resumable keeps unfinished downloads between runs.
_PARTIAL_DIR = Path(".cache") / "indextts-mlx" / "partial"


class DownloadError(WeightsError):
    """A file could not be fetched (no ``huggingface_hub``, no network, hub refusal,
    checksum mismatch)."""


@dataclass(frozen=True)
class RemoteFile:
    """One official file as the hub describes it (``HEAD /{repo}/resolve/main/{file}``).

    ``sha256`` is the hub's LFS checksum (``None`` for a regular git file, whose ETag is
    its git blob id: :attr:`git_oid`); ``cached`` says the copy in the cache is already
    this version; ``location`` is where its bytes are (the hub's redirect, e.g. to its
    CDN) and ``xet`` whether the hub offers it through Xet (then ``huggingface_hub``
    fetches it its way).
    """

    repo_id: str
    filename: str
    size: int | None
    etag: str
    commit: str
    cached: bool
    location: str = ""
    xet: bool = False

    @property
    def sha256(self) -> str | None:
        return self.etag if _SHA256.match(self.etag) else None

    @property
    def git_oid(self) -> str | None:
        """The git blob id the hub gives as a regular (non-LFS) file's ETag."""
        return self.etag if _GIT_OID.match(self.etag) else None

    @property
    def checked(self) -> str:
        """What the fetched bytes are checked against: ``"SHA-256"``, ``"git blob id"``
        or ``""`` (nothing the hub gave)."""
        return "SHA-256" if self.sha256 else "git blob id" if self.git_oid else ""

    @property
    def name(self) -> str:
        return f"{self.repo_id}/{self.filename}"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/indextts-mlx/official`` (``~/.cache/indextts-mlx/official``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "indextts-mlx" / "official"


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` read now (``huggingface_hub`` reads it once, at import)."""
    value = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
    return value or None


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` (read now, or as ``huggingface_hub`` read it at import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    if value in {"1", "ON", "YES", "TRUE"}:
        return True
    hub = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(hub, "HF_HUB_OFFLINE", False))


def _hub() -> ModuleType:
    try:
        import huggingface_hub
    except ImportError as exc:
        raise DownloadError(
            f"downloading needs huggingface_hub, which is not installed: {INSTALL_HINT}"
        ) from exc
    return huggingface_hub


def _is_network_error(exc: BaseException) -> bool:
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _hub_error(name: str, exc: Exception) -> DownloadError:
    if _is_network_error(exc):
        return DownloadError(
            f"cannot reach the Hugging Face Hub to fetch {name} ({type(exc).__name__}): "
            "check the network connection (or HF_ENDPOINT / proxy settings) and try again"
        )
    return DownloadError(f"could not download {name}: {type(exc).__name__}: {_first_line(exc)}")


def _recorded_etag(local_dir: Path, filename: str) -> str | None:
    """The ETag ``hf_hub_download`` recorded for ``local_dir / filename`` (or ``None``)."""
    try:
        lines = (local_dir / _METADATA_DIR / f"{filename}.metadata").read_text().splitlines()
    except OSError:
        return None
    return lines[1].strip() if len(lines) > 1 else None


def remote_file(repo_id: str, filename: str, cache_dir: Path) -> RemoteFile:
    """Ask the hub for ``repo_id``'s ``filename``: size, ETag, commit (one ``HEAD``).

    Raises:
        DownloadError: no ``huggingface_hub``, the hub unreachable, or it refused.
    """
    hub = _hub()
    name = f"{repo_id}/{filename}"
    endpoint = hub_endpoint()
    try:
        url = hub.hf_hub_url(repo_id, filename, endpoint=endpoint)
        meta = hub.get_hf_file_metadata(url, endpoint=endpoint)
    except Exception as exc:
        raise _hub_error(name, exc) from exc
    if not meta.etag or not meta.commit_hash:
        raise DownloadError(
            f"could not download {name}: the answer from {url} has no ETag or X-Repo-Commit "
            "(is HF_ENDPOINT a Hugging Face Hub?)"
        )
    local_dir = cache_dir / repo_id
    cached = (local_dir / filename).is_file() and _recorded_etag(local_dir, filename) == meta.etag
    return RemoteFile(
        repo_id,
        filename,
        meta.size,
        meta.etag,
        meta.commit_hash,
        cached,
        location=meta.location or url,
        xet=meta.xet_file_data is not None,
    )


class _Totals:
    """Bytes fetched so far, across files (fed by :class:`_FileBar`)."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = ""
        self._shown = 0.0

    def advance(self, n: int, file_done: int, file_total: int | None) -> None:
        self.done += n
        if not self.live or time.monotonic() - self._shown < 0.2:
            return
        self._shown = time.monotonic()
        part = f"{human_size(file_done)}/{human_size(file_total)}" if file_total else ""
        whole = f"{human_size(self.done)}/{human_size(self.total)}"
        self.stream.write(f"\r{self.label} {part}  (total {whole})\033[K")
        self.stream.flush()

    def end_line(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _bar_class(totals: _Totals) -> type:
    """A tqdm-compatible class for ``hf_hub_download(tqdm_class=...)`` feeding ``totals``."""

    class _FileBar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **_: Any):
            self.total, self.n = total, initial
            totals.advance(initial, self.n, self.total)

        def update(self, n: int | float | None = 1) -> None:
            step = int(n or 0)
            self.n += step
            totals.advance(step, self.n, self.total)

        def update_transfer(self, n: int | float | None = 1) -> None:
            """Xet's transfer bytes: already counted through :meth:`update`."""

        def set_postfix_str(self, *args: Any, **kwargs: Any) -> None: ...

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None: ...

        def set_description(self, *args: Any, **kwargs: Any) -> None: ...

        def refresh(self, *args: Any, **kwargs: Any) -> None: ...

        def close(self) -> None: ...

        def __enter__(self) -> _FileBar:
            return self

        def __exit__(self, *exc: object) -> None: ...

    return _FileBar


def fetch_file(remote: RemoteFile, cache_dir: Path, *, bar: type | None = None) -> Path:
    """Download ``remote`` to ``cache_dir / repo_id / filename`` (skipped when that copy is
    already this version), check its SHA-256 against the hub's, and return its path.

    Raises:
        DownloadError: the hub unreachable or refusing, or the bytes do not match the
            hub's checksum (the file is then removed).
    """
    hub = _hub()
    local_dir = cache_dir / remote.repo_id
    if remote.sha256 is not None and remote.location and not remote.xet and not remote.cached:
        return _fetch_resumable(hub, remote, local_dir, bar)
    try:
        path = Path(
            hub.hf_hub_download(
                remote.repo_id,
                remote.filename,
                revision=remote.commit or None,  # the version whose size was reported
                local_dir=str(local_dir),
                endpoint=hub_endpoint(),
                tqdm_class=bar,
            )
        )
    except Exception as exc:
        raise _hub_error(remote.name, exc) from exc
    if not remote.cached:
        _check_digest(remote, path)
    return path


def git_blob_id(path: Path) -> str:
    """Git's id of ``path`` as a blob: SHA-1 of ``"blob <size>\\0"`` and the bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    digest.update(path.read_bytes())  # regular hub files are small (configs, json)
    return digest.hexdigest()


def _check_digest(remote: RemoteFile, path: Path) -> None:
    """Raise (after removing ``path``) if its SHA-256 (an LFS file) or git blob id (a
    regular one) is not the hub's."""
    if remote.sha256 is not None:
        actual, expected = sha256_file(path), remote.sha256
    elif remote.git_oid is not None:
        actual, expected = git_blob_id(path), remote.git_oid
    else:
        return
    if actual != expected:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{remote.name} is corrupted: its {remote.checked} is {actual}, the hub's is "
            f"{expected} (the file was removed: run the command again)"
        )


def partial_path(local_dir: Path, sha256: str) -> Path:
    """Where the bytes of an unfinished download are kept between runs."""
    return local_dir / _PARTIAL_DIR / f"{sha256}.part"


def _fetch_resumable(hub: ModuleType, remote: RemoteFile, local_dir: Path, bar: Any) -> Path:
    """Fetch an LFS file over plain HTTP into a partial file kept between runs, resumed
    with a ``Range`` request from what an earlier run left (``huggingface_hub``'s own
    ``http_get``, which also retries a cut connection within the run), check its SHA-256,
    move it into place and record it as ``hf_hub_download`` does (commit, ETag).

    ``huggingface_hub`` 1.x/2.x keeps no partial file between runs; this does, for the
    files it fetches without Xet (a mirror's, the loopback hub's).
    """
    from urllib.parse import urlsplit

    from huggingface_hub.file_download import http_get

    assert remote.sha256 is not None
    part = partial_path(local_dir, remote.sha256)
    part.parent.mkdir(parents=True, exist_ok=True)
    if remote.size is not None and part.is_file() and part.stat().st_size > remote.size:
        part.unlink()  # not a prefix of this file
    headers: dict[str, str] = hub.utils.build_hf_headers()
    endpoint = hub_endpoint() or hub.constants.ENDPOINT
    if urlsplit(remote.location).netloc != urlsplit(endpoint).netloc:
        headers.pop("authorization", None)  # a CDN's signed URL: the token stays on the hub
    try:
        with part.open("ab") as handle:
            http_get(
                remote.location,
                handle,
                resume_size=handle.tell(),
                headers=headers,
                expected_size=remote.size,
                displayed_filename=remote.filename,
                tqdm_class=bar,
            )
    except Exception as exc:
        raise _hub_error(remote.name, exc) from exc
    _check_digest(remote, part)
    path = local_dir / remote.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, path)
    record = local_dir / _METADATA_DIR / f"{remote.filename}.metadata"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{remote.commit}\n{remote.etag}\n{time.time()}\n")
    return path


def _cached_file(repo_id: str, filename: str, cache_dir: Path) -> RemoteFile:
    """Offline: the cached copy of a file, or a :class:`DownloadError` saying it is not there."""
    local_dir = cache_dir / repo_id
    path = local_dir / filename
    if not path.is_file():
        raise DownloadError(
            f"offline (HF_HUB_OFFLINE=1) and {repo_id}/{filename} is not in the cache "
            f"({path}): unset HF_HUB_OFFLINE to download it"
        )
    etag = _recorded_etag(local_dir, filename) or ""
    return RemoteFile(repo_id, filename, path.stat().st_size, etag, "", cached=True)


def converter_sources(fetched: dict[tuple[str, str], Path]) -> dict[str, Path]:
    """``convert``'s name (a converter's, or ``"bpe_model"``) → the fetched file it reads,
    from each converter's ``origin`` (``"repo: filename"``)."""
    by_origin = {
        (repo, filename): name
        for name, converter in CONVERTERS.items()
        for repo, _, filename in [converter.origin.partition(": ")]
    }
    by_origin["IndexTeam/IndexTTS-2", BPE_NAME] = "bpe_model"
    return {by_origin[key]: path for key, path in fetched.items() if key in by_origin}


def _delete_originals(paths: list[Path], cache_dir: Path) -> int:
    """Remove the downloaded files, ``hf_hub_download``'s records of them and the folders
    left empty; return the bytes freed."""
    freed = 0
    for path in paths:
        if path.is_file():
            freed += path.stat().st_size
            path.unlink()
    for repo_id in {repo for repo, _ in OFFICIAL_FILES}:
        shutil.rmtree(cache_dir / repo_id / ".cache", ignore_errors=True)
        folder = cache_dir / repo_id
        for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        for sub in (folder, folder.parent):
            if sub != cache_dir and sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
    return freed


def download(
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    convert_files: bool = True,
    delete_originals: bool = False,
    progress: Callable[[str], None] | None = None,
    dtype: str = "float32",
) -> dict[str, Path]:
    """Fetch every file of :data:`OFFICIAL_FILES` into ``cache_dir``, then convert them
    into ``out_dir`` (with its ``manifest.json``; ``dtype``: as ``convert``'s).

    The outputs are checked before anything is fetched: existing ones are an error
    unless ``force``. The hub is asked for every file's size first (one ``HEAD`` each)
    and the total is reported before the first byte is fetched.

    Args:
        convert_files: ``False`` stops after fetching (nothing is written to ``out_dir``).
        delete_originals: after a successful conversion, remove the fetched files from
            ``cache_dir`` (by default nothing is removed).

    Returns:
        :func:`~indextts_weights.convert.convert`'s name → written path, or (with
        ``convert_files=False``) ``repo_id/filename`` → the fetched file.

    Raises:
        DownloadError: a file could not be fetched or does not match the hub's checksum.
        WeightsError: outputs exist (without ``force``) or conversion failed.
    """
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    say = progress or (lambda line: None)
    _check_outputs(out_dir, force=force, convert_files=convert_files, delete=delete_originals)
    if dtype not in DTYPES:  # before fetching gigabytes that convert would then refuse
        raise WeightsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    offline = is_offline()
    remotes, total = _plan(cache_dir, offline, say)
    cache_dir.mkdir(parents=True, exist_ok=True)
    totals = _Totals(total)
    fetched: dict[tuple[str, str], Path] = {}
    for index, remote in enumerate(remotes, 1):
        start = time.perf_counter()
        totals.label = f"[{index}/{len(remotes)}] {remote.name}"
        if offline:
            path = cache_dir / remote.repo_id / remote.filename
            totals.done += remote.size or 0
        else:
            path = _fetch_reporting(remote, cache_dir, totals, say)
            totals.done = max(totals.done, sum(r.size or 0 for r in remotes[:index]))
        totals.end_line()
        how = "cached" if remote.cached else f"in {time.perf_counter() - start:.2f} s"
        checked = f", {remote.checked} ok" if remote.checked and not remote.cached else ""
        say(
            f"[{index}/{len(remotes)}] {remote.name}: {human_size(path.stat().st_size)} "
            f"{how}{checked} (total {human_size(totals.done)} of {human_size(total)}; "
            f"in {path.parent})"
        )
        fetched[remote.repo_id, remote.filename] = path
    if not convert_files:
        return {f"{repo}/{name}": path for (repo, name), path in fetched.items()}
    sources = converter_sources(fetched)
    written = convert(
        cache_dir,
        out_dir,
        only=tuple(sources),
        files=sources,
        force=force,
        progress=progress,
        dtype=dtype,
    )
    if delete_originals:
        freed = _delete_originals(list(fetched.values()), cache_dir)
        say(f"removed the downloaded originals ({human_size(freed)}) from {cache_dir}")
    return written


def _check_outputs(out_dir: Path, *, force: bool, convert_files: bool, delete: bool) -> None:
    """Refuse before anything is fetched: outputs that exist (without ``force``), or
    deleting originals that are not converted."""
    if delete and not convert_files:
        raise WeightsError(
            "--delete-originals removes the originals after converting them: "
            "it cannot be combined with --no-convert"
        )
    if convert_files and not force:
        refuse_overwrite(out_dir, [WEIGHT_FILES[n] for n in CONVERTERS] + [BPE_NAME])


def _plan(
    cache_dir: Path, offline: bool, say: Callable[[str], None]
) -> tuple[list[RemoteFile], int]:
    """Every official file with its size (from the hub, or the cache when offline), and
    the total, said before the first byte is fetched."""
    if offline:
        remotes = [_cached_file(repo, name, cache_dir) for repo, name in OFFICIAL_FILES]
        total = sum(r.size or 0 for r in remotes)
        say(
            f"offline (HF_HUB_OFFLINE=1): using the {len(remotes)} cached files "
            f"({human_size(total)}) in {cache_dir}"
        )
        return remotes, total
    remotes = [remote_file(repo, name, cache_dir) for repo, name in OFFICIAL_FILES]
    total = sum(r.size or 0 for r in remotes)
    missing = sum(r.size or 0 for r in remotes if not r.cached)
    say(
        f"{len(remotes)} files from the Hugging Face Hub, {human_size(total)} in total, "
        f"{human_size(missing)} to download into {cache_dir}"
    )
    return remotes, total


def _fetch_reporting(
    remote: RemoteFile, cache_dir: Path, totals: _Totals, say: Callable[[str], None]
) -> Path:
    """:func:`fetch_file` with the live bar; on Ctrl-C, say how much is kept to resume."""
    try:
        return fetch_file(remote, cache_dir, bar=_bar_class(totals))
    except KeyboardInterrupt:
        totals.end_line()
        part = partial_path(cache_dir / remote.repo_id, remote.sha256 or "")
        kept = part.stat().st_size if remote.sha256 and part.is_file() else 0
        say(
            f"interrupted: {human_size(kept)} of {remote.name} kept "
            "(run the command again to resume)"
        )
        raise
