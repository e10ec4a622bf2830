"""Finding the official files under a source folder, in the layouts users really have.

Every pattern of a file is tried anywhere under the source folder, so one search covers:

- a flat folder of the official files (``hf download IndexTeam/IndexTTS-2 --local-dir D``
  and the auxiliary files beside them);
- a ``huggingface_hub`` snapshot folder, ``models--ORG--NAME/snapshots/REV/...`` (the files
  are symlinks into ``blobs/``), or a whole hub cache holding several such repos;
- an upstream ``index-tts`` ``checkpoints/`` folder in its older layout
  (``HF_HUB_CACHE=./checkpoints/hf_cache``: a snapshot folder per auxiliary repo) and its
  current one (``indextts/utils/model_download.py: ensure_models_available``):
  ``hf_cache/w2v-bert-2.0/``, ``hf_cache/semantic_codec_model.safetensors``,
  ``hf_cache/campplus_cn_common.bin``, ``hf_cache/bigvgan/bigvgan_generator.pt``; a
  migrated folder holds both, the new copies beside the old snapshots;
- ``indextts-weights download``'s cache (``<cache>/<repo id>/<file>``).

The candidates for a file are all the matches of all its patterns. The same file reached
twice (a symlink, a hard link) and identical copies (same size and SHA-256) are one
candidate, shown as the first match (earlier patterns first); different files are a
conflict, which names every candidate and the way out (``--file NAME=PATH``, ``--only``),
except when they are all revisions of one hub repo's snapshots: then the one its
``refs/main`` names is chosen (as ``huggingface_hub`` and upstream's loader would).
:func:`plan_sources` returns the choice for every file as data (:class:`SourcePlan`);
:func:`format_plan` writes it as the table ``indextts-weights convert`` prints before
converting.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from indextts_weights.errors import WeightsError
from indextts_weights.manifest import human_size

_HASH_CHUNK = 8 << 20
_LISTED = 4  # conflicting candidates named in an error (the table names them all)
#: Files at least this large are announced to ``progress`` before they are hashed.
ANNOUNCE_HASH_BYTES = 64 << 20


@dataclass(frozen=True)
class Wanted:
    """One official file to find.

    Attributes:
        name: the converter's name (a ``WEIGHT_FILES`` key) or ``"bpe_model"``.
        patterns: globs relative to the source folder, in order of preference.
        origin: ``"hub repo: file"``, where users get it.
        required: whether conversion stops when it is not found.
    """

    name: str
    patterns: tuple[str, ...]
    origin: str
    required: bool = True

    @property
    def file(self) -> str:
        """The official file name (the part of :attr:`origin` after the repo)."""
        return self.origin.rpartition(": ")[2] or self.patterns[0]


@dataclass(frozen=True)
class Choice:
    """What was found for one :class:`Wanted` file.

    Attributes:
        wanted: the file looked for.
        path: the file chosen; None when not found or in conflict.
        given: ``path`` was named explicitly (``files=`` / ``--file NAME=PATH``).
        copies: other paths holding the same bytes as ``path`` (not read).
        conflicts: the different files found, when there are several (``path`` is None).
        superseded: other revisions of ``path`` in the same hub repo's snapshots, not
            used because ``refs/main`` names ``path``'s.
    """

    wanted: Wanted
    path: Path | None = None
    given: bool = False
    copies: tuple[Path, ...] = ()
    conflicts: tuple[Path, ...] = ()
    superseded: tuple[Path, ...] = ()

    @property
    def status(self) -> str:
        """``"given"``, ``"found"``, ``"conflict"`` or ``"not found"``."""
        if self.path is not None:
            return "given" if self.given else "found"
        return "conflict" if self.conflicts else "not found"


@dataclass(frozen=True)
class SourcePlan:
    """The choice for every wanted file under ``src_dir``."""

    src_dir: Path
    choices: tuple[Choice, ...]

    def sources(self) -> dict[str, Path]:
        """name → chosen path, for every file found (or given)."""
        return {c.wanted.name: c.path for c in self.choices if c.path is not None}

    def missing(self) -> list[Choice]:
        """The required files not found."""
        return [c for c in self.choices if c.wanted.required and c.status == "not found"]

    def conflicts(self) -> list[Choice]:
        """The files with several different candidates."""
        return [c for c in self.choices if c.status == "conflict"]

    def problem(self) -> str | None:
        """One line saying what stops conversion (missing required files, conflicts), or
        None when every required file has exactly one source."""
        parts = []
        missing = self.missing()
        if missing and not self.sources() and len(self.choices) > 1:
            files = ", ".join(c.wanted.file for c in missing)
            parts.append(
                f"no official checkpoint found under {self.src_dir} (looked anywhere below it "
                f"for {files})"
            )
        elif missing:
            details = ", ".join(
                f"{c.wanted.file} ({c.wanted.name}: looked for {', '.join(c.wanted.patterns)}; "
                f"from {c.wanted.origin})"
                for c in missing
            )
            parts.append(
                f"required file(s) not found under {self.src_dir}: {details}; put them there, "
                "name each with --file NAME=PATH, or convert the others with --only NAME"
            )
        for choice in self.conflicts():
            name = choice.wanted.name
            listed = ", ".join(
                f"{_shown(p, self.src_dir)} ({human_size(p.stat().st_size)})"
                for p in choice.conflicts[:_LISTED]
            )
            if len(choice.conflicts) > _LISTED:
                listed += f" and {len(choice.conflicts) - _LISTED} more"
            parts.append(
                f"different files could be {choice.wanted.file} ({name}): {listed}; remove "
                f"all but one, choose with --file {name}=PATH, or leave it out with --only"
            )
        return "; ".join(parts) if parts else None

    def check(self) -> None:
        """Raise one :class:`WeightsError` with :meth:`problem`, if there is one."""
        problem = self.problem()
        if problem:
            raise WeightsError(problem)


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it, else as given."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def candidates(src_dir: Path, patterns: Iterable[str]) -> list[Path]:
    """Every file matched by ``patterns`` under ``src_dir``: each pattern's matches sorted,
    earlier patterns first, each path once (symlinks to files count as files)."""
    seen: set[Path] = set()
    found = []
    for pattern in patterns:
        for path in sorted(src_dir.glob(pattern)):
            if path not in seen and path.is_file():
                seen.add(path)
                found.append(path)
    return found


def sha256_of(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def distinct(
    paths: Iterable[Path], *, progress: Callable[[str], None] | None = None
) -> list[list[Path]]:
    """``paths`` grouped into distinct files, in order of first appearance.

    Paths are one file when they are the same file (:func:`os.path.samefile`: a symlink
    into a hub cache's ``blobs/``, a hard link) or identical copies: the same size and
    SHA-256. Only files of equal size are hashed (``progress`` is told before hashing one
    of :data:`ANNOUNCE_HASH_BYTES` or more).
    """
    groups: list[list[Path]] = []
    hashes: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in hashes:
            size = path.stat().st_size
            if progress and size >= ANNOUNCE_HASH_BYTES:
                progress(f"comparing copies: SHA-256 of {path} ({human_size(size)}) ...")
            hashes[path] = sha256_of(path)
        return hashes[path]

    def same(a: Path, b: Path) -> bool:
        if os.path.samefile(a, b):
            return True
        if a.stat().st_size != b.stat().st_size:
            return False
        return digest(a) == digest(b)

    for path in paths:
        for group in groups:
            if same(group[0], path):
                group.append(path)
                break
        else:
            groups.append([path])
    return groups


def _snapshot_of(path: Path) -> tuple[Path, str] | None:
    """(repo folder, revision) when ``path`` lies in a hub cache's
    ``models--ORG--NAME/snapshots/REV/``, else None."""
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--"):
            return Path(*parts[:i]), parts[i + 1]
    return None


def _current_revision(groups: list[list[Path]]) -> int | None:
    """The index of the one group in the revision ``refs/main`` names, when every
    candidate lies in the snapshots of one hub repo; else None."""
    revisions: list[set[str]] = []
    repos = set()
    for group in groups:
        where = [_snapshot_of(path) for path in group]
        if None in where:
            return None
        repos |= {w[0] for w in where if w is not None}
        revisions.append({w[1] for w in where if w is not None})
    if len(repos) != 1:
        return None
    try:
        main = (repos.pop() / "refs" / "main").read_text().strip()
    except OSError:
        return None
    hits = [i for i, revs in enumerate(revisions) if main in revs]
    return hits[0] if len(hits) == 1 else None


def find_source(src_dir: Path, patterns: tuple[str, ...], label: str) -> Path | None:
    """The one file under ``src_dir`` that ``patterns`` find (identical copies are one),
    or None.

    Raises:
        WeightsError: the patterns find different files (naming them).
    """
    groups = distinct(candidates(Path(src_dir), patterns))
    if len(groups) > 1:
        listed = ", ".join(str(g[0]) for g in groups)
        raise WeightsError(f"several different candidates for {label}: {listed}")
    return groups[0][0] if groups else None


def plan_sources(
    src_dir: str | Path,
    wanted: Iterable[Wanted],
    *,
    files: Mapping[str, str | Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SourcePlan:
    """Choose the source of every ``wanted`` file under ``src_dir``.

    Args:
        src_dir: the folder searched (any layout of this module's docstring).
        wanted: the files to find.
        files: name → path, chosen explicitly (``--file NAME=PATH``); not searched for.
        progress: told before each SHA-256 of a large candidate copy (:func:`distinct`).

    Raises:
        WeightsError: ``src_dir`` is not a folder, ``files`` names an unknown file or a
            path that is not a file. Missing files and conflicts are not raised here: they
            are in the plan (:meth:`SourcePlan.check`).
    """
    src_dir = Path(src_dir)
    wanted = tuple(wanted)
    given = {name: Path(path).expanduser() for name, path in (files or {}).items()}
    known = [w.name for w in wanted]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise WeightsError(f"no file to convert is called {unknown} (--file); known: {known}")
    for name, path in given.items():
        if not path.is_file():
            raise WeightsError(f"no such file: {path} (--file {name}=PATH)")
    if not src_dir.is_dir():
        raise WeightsError(f"source folder not found: {src_dir}")
    choices = []
    for want in wanted:
        if want.name in given:
            choices.append(Choice(want, given[want.name], given=True))
            continue
        groups = distinct(candidates(src_dir, want.patterns), progress=progress)
        current = _current_revision(groups) if len(groups) > 1 else 0
        if current is not None and groups:
            group = groups[current]
            others = tuple(g[0] for i, g in enumerate(groups) if i != current)
            choices.append(Choice(want, group[0], copies=tuple(group[1:]), superseded=others))
        else:
            choices.append(Choice(want, conflicts=tuple(g[0] for g in groups)))
    return SourcePlan(src_dir, tuple(choices))


def format_plan(plan: SourcePlan) -> list[str]:
    """The plan as a table: one line per file, where it comes from (hub repo: file), and
    the path chosen (relative to the source folder when inside it),
    "not found" with the patterns looked for (and whether it is optional), or the
    conflicting candidates."""
    rows = [("name", "official file (hub repo: file)", "source chosen")]
    for choice in plan.choices:
        want = choice.wanted
        if choice.path is not None:
            shown = _shown(choice.path, plan.src_dir)
            if choice.given:
                shown += "  (given with --file)"
            if choice.copies:
                n = len(choice.copies)
                shown += f"  (+{n} identical {'copy' if n == 1 else 'copies'})"
            if choice.superseded:
                n = len(choice.superseded)
                shown += f"  (refs/main; {n} other revision{'' if n == 1 else 's'} not used)"
        elif choice.conflicts:
            shown = "CONFLICT: " + ", ".join(_shown(p, plan.src_dir) for p in choice.conflicts)
        else:
            need = "required" if want.required else "optional"
            shown = f"not found ({need}; looked for {', '.join(want.patterns)})"
        rows.append((want.name, want.origin, shown))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"official files under {plan.src_dir}:"]
    lines += [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    return lines
