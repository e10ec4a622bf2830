"""A Hugging Face Hub on loopback, for tests that run the real ``huggingface_hub`` client.

:class:`LoopbackHub` serves files in the layout of the hub (``{repo}/resolve/{revision}/
{filename}``) from two :class:`~http.server.ThreadingHTTPServer` threads on 127.0.0.1: the
hub itself and a "CDN" on another port (another origin, as the real hub's LFS storage is),
speaking the parts of the protocol the client uses:

- ``HEAD``/``GET /{org}/{name}/resolve/{revision}/{filename}`` with ``X-Repo-Commit`` and
  ``ETag``; an LFS file (any file not ``.json``/``.yaml``/``.txt``/``.md``, or as told)
  answers ``302`` to the CDN with ``X-Linked-Etag`` (its SHA-256) and ``X-Linked-Size``,
  as the real hub does; a regular file answers ``200`` with its git blob id as ``ETag``;
- ``GET /cdn/{sha256}`` with ``Range: bytes=N-`` (``206``, ``Content-Range``);
- ``GET /api/models/{org}/{name}`` and ``.../revision/{revision}`` (``sha``, ``siblings``),
  ``.../tree/{revision}[/{folder}]`` (files with their ``oid``, ``size``, ``lfs``) for
  ``snapshot_download``;
- unknown repositories and files: ``404`` with ``X-Error-Code`` (``RepoNotFound``,
  ``EntryNotFound``), which the client turns into its own errors.

Faults to test against: :meth:`LoopbackHub.cut` drops the connection after some bytes of a
file's next download, :meth:`LoopbackHub.stall` sends some bytes then nothing (until the
hub closes: for interrupting the client), :meth:`LoopbackHub.corrupt` serves a file with
one byte flipped (its ``ETag`` still the true SHA-256). Every request is recorded
(:attr:`LoopbackHub.requests`).

Point the client at it with ``HF_ENDPOINT=hub.endpoint`` (in a subprocess, or in-process
where the caller passes ``endpoint=``: ``huggingface_hub`` reads ``HF_ENDPOINT`` when it is
imported). :func:`closed_port_endpoint` gives an endpoint where nothing listens.

Example::

    with LoopbackHub() as hub:
        hub.add("IndexTeam/IndexTTS-2", "gpt.pth", data)
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp / "hf")}
        subprocess.run(["indextts-weights", "download", ...], env=env)
        assert any("range" in r.headers for r in hub.requests)
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# The official repositories the converter reads (see indextts_weights.download.OFFICIAL_FILES).
OFFICIAL_REPOS: tuple[str, ...] = (
    "IndexTeam/IndexTTS-2",
    "facebook/w2v-bert-2.0",
    "amphion/MaskGCT",
    "funasr/campplus",
    "nvidia/bigvgan_v2_22khz_80band_256x",
)

_TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".txt", ".md", ".gitattributes")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha256>[0-9a-f]{64})$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<revision>[^/]+))?$")
_TREE = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?$"
)
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


@dataclass(frozen=True)
class HubFile:
    """One served file: its bytes, whether it is stored as LFS, and its hashes."""

    repo_id: str
    filename: str
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        """SHA-256 of the bytes (the ``ETag`` of an LFS file)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        """The git blob id (the ``ETag`` of a regular file)."""
        header = f"blob {len(self.data)}\0".encode()
        return hashlib.sha1(header + self.data).hexdigest()  # git's id, not security


@dataclass(frozen=True)
class HubRequest:
    """A request the hub (or its CDN) received (header names in lower case, as
    ``httpx`` sends them)."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _State:
    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    cuts: dict[tuple[str, str], int] = field(default_factory=dict)
    stalls: dict[tuple[str, str], int] = field(default_factory=dict)
    closing: threading.Event = field(default_factory=threading.Event)
    corrupt: set[tuple[str, str]] = field(default_factory=set)
    requests: list[HubRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cdn_endpoint: str = ""


def commit_of(repo_id: str) -> str:
    """The (fake, stable) 40-hex commit a repository is served at."""
    return hashlib.sha1(repo_id.encode()).hexdigest()  # an id, not security


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "hub"
    state: _State

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are recorded in :attr:`LoopbackHub.requests` instead."""

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    # --- responses --------------------------------------------------------------------

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        if commit:
            headers["X-Repo-Commit"] = commit
        body = json.dumps({"error": message}).encode()
        self._send(status, {**headers, "Content-Type": "application/json"}, body)

    def _serve(self, *, body: bool) -> None:
        path = urlsplit(self.path).path
        with self.state.lock:
            self.state.requests.append(
                HubRequest(
                    self.server_name_tag,
                    self.command,
                    path,
                    {name.lower(): value for name, value in self.headers.items()},
                )
            )
        if self.server_name_tag == "cdn":
            match = _CDN.match(path)
            if match is None:
                self._error(404, "EntryNotFound", f"no blob at {path}")
            else:
                self._serve_blob(match["sha256"], body=body)
            return
        if (tree := _TREE.match(path)) is not None:
            self._serve_tree(tree["repo"], unquote(tree["revision"]), unquote(tree["path"] or ""))
            return
        if (api := _API.match(path)) is not None:
            self._serve_api(api["repo"], api["revision"] or "main")
            return
        match = _RESOLVE.match(path)
        if match is None:
            self._error(404, "EntryNotFound", f"unknown path {path}")
            return
        self._serve_resolve(match["repo"], unquote(match["revision"]), unquote(match["filename"]))

    def _serve_api(self, repo_id: str, revision: str) -> None:
        files = self._repo_files(repo_id, revision)
        if files is None:
            return
        commit = commit_of(repo_id)
        info = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "siblings": [{"rfilename": f.filename, "size": len(f.data)} for f in files],
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode())

    def _serve_tree(self, repo_id: str, revision: str, folder: str) -> None:
        """``GET /api/models/{repo}/tree/{rev}[/{folder}]`` (one page, as ``recursive``)."""
        files = self._repo_files(repo_id, revision)
        if files is None:
            return
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: list[dict[str, object]] = []
        folders = sorted(
            {
                "/".join(f.filename.split("/")[:i])
                for f in files
                for i in range(1, f.filename.count("/") + 1)
            }
        )
        for name in folders:
            if name.startswith(prefix):
                oid = hashlib.sha1(name.encode()).hexdigest()
                entries.append({"type": "directory", "oid": oid, "path": name})
        for f in files:
            if not f.filename.startswith(prefix):
                continue
            entry: dict[str, object] = {
                "type": "file",
                "oid": f.git_oid,
                "size": len(f.data),
                "path": f.filename,
            }
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
            entries.append(entry)
        self._send(200, {"Content-Type": "application/json"}, json.dumps(entries).encode())

    def _repo_files(self, repo_id: str, revision: str) -> list[HubFile] | None:
        """The files of ``repo_id`` at ``revision`` (``main`` or its commit), or ``None``
        after answering 404 (``RepoNotFound``, ``RevisionNotFound``)."""
        files = [f for (repo, _), f in sorted(self.state.files.items()) if repo == repo_id]
        commit = commit_of(repo_id)
        if not files:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
            return None
        if revision not in ("main", commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", commit)
            return None
        return files

    def _serve_resolve(self, repo_id: str, revision: str, filename: str) -> None:
        if self._repo_files(repo_id, revision) is None:
            return
        commit = commit_of(repo_id)
        file = self.state.files.get((repo_id, filename))
        if file is None:
            self._error(404, "EntryNotFound", f"Entry not found: {filename}", commit)
            return
        if file.lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{file.sha256}\n"
            self._send(
                302,
                {
                    "Location": f"{self.state.cdn_endpoint}/cdn/{file.sha256}",
                    "X-Repo-Commit": commit,
                    "ETag": f'"{hashlib.sha1(pointer.encode()).hexdigest()}"',
                    "X-Linked-Etag": f'"{file.sha256}"',
                    "X-Linked-Size": str(len(file.data)),
                },
            )
            return
        headers = {"X-Repo-Commit": commit, "ETag": f'"{file.git_oid}"'}
        if self.command == "HEAD":
            self._send(200, {**headers, "Content-Length": str(len(file.data))})
        else:
            self._send_data(file, headers)

    def _serve_blob(self, sha256: str, *, body: bool) -> None:
        file = next((f for f in self.state.files.values() if f.sha256 == sha256), None)
        if file is None:
            self._error(404, "EntryNotFound", f"no blob {sha256}")
            return
        headers = {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"}
        if not body:
            self._send(200, {**headers, "Content-Length": str(len(file.data))})
            return
        self._send_data(file, headers)

    def _send_data(self, file: HubFile, headers: dict[str, str]) -> None:
        key = (file.repo_id, file.filename)
        data = file.data
        if key in self.state.corrupt:
            data = flipped(data)
        start, status = 0, 200
        range_header = self.headers.get("Range")
        if range_header and (match := _RANGE.match(range_header.strip())) is not None:
            start = int(match["start"])
            if start >= len(data):
                self._send(416, {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        with self.state.lock:
            cut = self.state.cuts.pop(key, None)
            stall = self.state.stalls.pop(key, None)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(data) - start)}.items():
            self.send_header(name, value)
        self.end_headers()
        if cut is not None or stall is not None:  # drop the connection after some bytes
            self.wfile.write(data[start : start + (cut if cut is not None else stall or 0)])
            self.wfile.flush()
            if stall is not None:  # ... once the client is gone, or the hub closes
                self.state.closing.wait(timeout=120)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data[start:])


def flipped(data: bytes) -> bytes:
    """``data`` with its first byte's lowest bit flipped (how :meth:`LoopbackHub.corrupt`
    serves a file)."""
    return bytes([data[0] ^ 0x01]) + data[1:] if data else data


def _start(handler: type[_Handler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


class LoopbackHub:
    """A hub and its CDN on 127.0.0.1 (see the module docstring); a context manager.

    Args:
        files: ``(repo_id, filename) -> bytes`` to serve from the start (see :meth:`add`).
    """

    def __init__(self, files: dict[tuple[str, str], bytes] | None = None) -> None:
        state = _State()
        self._state = state
        hub_handler = type("_HubHandler", (_Handler,), {"state": state})
        cdn_handler = type("_CdnHandler", (_Handler,), {"state": state, "server_name_tag": "cdn"})
        self._hub, self._hub_thread = _start(hub_handler)
        self._cdn, self._cdn_thread = _start(cdn_handler)
        state.cdn_endpoint = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        for (repo_id, filename), data in (files or {}).items():
            self.add(repo_id, filename, data)

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT`` (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def requests(self) -> list[HubRequest]:
        """A copy of every request received so far, in order."""
        with self._state.lock:
            return list(self._state.requests)

    def add(self, repo_id: str, filename: str, data: bytes, *, lfs: bool | None = None) -> HubFile:
        """Serve ``data`` as ``repo_id``'s ``filename`` (LFS unless a text file, or as
        ``lfs`` says)."""
        if lfs is None:
            lfs = not filename.endswith(_TEXT_SUFFIXES)
        file = HubFile(repo_id, filename, data, lfs)
        with self._state.lock:
            self._state.files[repo_id, filename] = file
        return file

    def file(self, repo_id: str, filename: str) -> HubFile:
        """The served file ``repo_id``/``filename``."""
        return self._state.files[repo_id, filename]

    def cut(self, repo_id: str, filename: str, after: int) -> None:
        """Drop the connection after ``after`` bytes of the next download of the file."""
        with self._state.lock:
            self._state.cuts[repo_id, filename] = after

    def stall(self, repo_id: str, filename: str, after: int) -> None:
        """Send ``after`` bytes of the next download of the file, then nothing more until
        the hub closes (for a test that interrupts the client mid-file)."""
        with self._state.lock:
            self._state.stalls[repo_id, filename] = after

    def corrupt(self, repo_id: str, filename: str, corrupt: bool = True) -> None:
        """Serve the file with its first byte flipped (the hub's checksum stays the true one)."""
        with self._state.lock:
            if corrupt:
                self._state.corrupt.add((repo_id, filename))
            else:
                self._state.corrupt.discard((repo_id, filename))

    def downloads(self, filename: str) -> list[HubRequest]:
        """The ``GET`` requests that fetched ``filename``'s bytes (on the hub or the CDN)."""
        blobs = {f.sha256 for f in self._state.files.values() if f.filename == filename}
        return [
            r
            for r in self.requests
            if r.method == "GET"
            and (r.path.endswith(f"/{filename}") or r.path.removeprefix("/cdn/") in blobs)
        ]

    def close(self) -> None:
        """Stop both servers (their ports are then closed)."""
        self._state.closing.set()
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> LoopbackHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port_endpoint() -> str:
    """An ``http://127.0.0.1:PORT`` endpoint where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
