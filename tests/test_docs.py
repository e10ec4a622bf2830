"""The repository stands alone: every document it cites is in it (``docs/``).

* every ``docs/...`` path cited by a tracked file exists;
* no file cites the design documents that used to live outside the repository;
* every cited ``docs/data-flow.md`` step and ``docs/promises.md`` section exists;
* the links between the docs pages resolve, and the docs name no machine's paths.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THIS = Path(__file__).resolve()

#: Names of the out-of-tree documents the docs replaced (split so this file does not
#: match itself).
OLD_NAMES = (
    "REFERENCE" + "-FLOW",
    "SPEC" + ".md",
    "SPEC" + " §",
    "DESIGN" + ".md",
    "CHECKPOINTS" + ".md",
    "PARITY" + "-VENV",
    "shared" + "/reference",
)
#: Bare mentions of the old notes ("(SPEC)", "SPEC asks", "DESIGN, Performance").
OLD_WORDS = re.compile(r"\b(?:" + "SP" + "EC|DES" + "IGN)\b")
DOC_PATH = re.compile(r"\bdocs/[\w./-]*\w")
STEPS = re.compile(r"docs/data-flow\.md,?\s+steps?\s+((?:\d+[a-z]?(?:\s*(?:-|\u2013|,|and)\s*)?)+)")
SECTIONS = re.compile(r"docs/promises\.md,?\s+((?:§\s*\d+(?:\s*(?:,|and|-)\s*)?)+)")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@cache
def tracked_files() -> tuple[Path, ...]:
    """The repository's text files (``git ls-files``, with untracked files not ignored)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        paths = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        skip = {".git", ".venv", ".venv-parity", "__pycache__", ".pytest_cache", ".ruff_cache"}
        paths = [
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]
    return tuple(p for p in paths if p.is_file() and p.suffix not in (".lock",))


@cache
def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def joined(text: str) -> str:
    """Text with line breaks (and comment markers at line starts) turned into spaces, so a
    citation wrapped over two comment or docstring lines is still one match."""
    return re.sub(r"\s*\n\s*(?:#:?|//|\*)?\s*", " ", text)


def sources() -> list[tuple[Path, str]]:
    """``(path, text)`` of every tracked text file outside ``docs/`` but this one."""
    out = []
    for path in tracked_files():
        if path == THIS or DOCS in path.parents:
            continue
        text = text_of(path)
        if text is not None:
            out.append((path, text))
    return out


def numbers(spec: str) -> list[str]:
    """``"3-9, 15 and 11a"`` → ``["3", ..., "9", "15", "11a"]``."""
    found: list[str] = []
    for part in re.split(r"\s*(?:,|and)\s*", spec.strip()):
        if not part:
            continue
        ends = re.split(r"\s*[-\u2013]\s*", part)
        if len(ends) == 2 and ends[0].isdigit() and ends[1].isdigit():
            found += [str(n) for n in range(int(ends[0]), int(ends[1]) + 1)]
        else:
            found += [e for e in ends if e]
    return found


def test_citation_parser():
    text = "holds docs/data-flow.md steps 3-9 and\n#: 15 for one docs/promises.md §1, §5"
    assert [numbers(m) for m in STEPS.findall(joined(text))] == [[*map(str, range(3, 10)), "15"]]
    assert SECTIONS.findall(joined(text)) == ["§1, §5"]


def headings(page: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (DOCS / page).read_text(encoding="utf-8"), re.MULTILINE))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def uncited(
    present: set[str], citation: re.Pattern[str], cited: Callable[[str], list[str]], mark: str
) -> list[str]:
    """``path: <mark><n>`` for each number ``n`` that a ``citation`` in a source names
    (``cited`` reads them from its match) and ``present`` lacks."""
    return [
        f"{relative(path)}: {mark}{n}"
        for path, text in sources()
        for spec in citation.findall(joined(text))
        for n in cited(spec)
        if n not in present
    ]


def test_cited_docs_exist():
    missing = [
        f"{relative(path)}: {cited}"
        for path, text in sources()
        for cited in sorted(set(DOC_PATH.findall(text)))
        if not (ROOT / cited).exists()
    ]
    assert not missing, "cited documents that are not in the repository:\n" + "\n".join(missing)


def test_no_file_cites_the_old_out_of_tree_documents():
    found = []
    for path in tracked_files():
        if path == THIS:
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{relative(path)}:{number}: {name}" for name in OLD_NAMES if name in line]
            found += [f"{relative(path)}:{number}: {m}" for m in OLD_WORDS.findall(line)]
    assert not found, "cite docs/ instead of:\n" + "\n".join(found)


def test_cited_data_flow_steps_exist():
    steps = headings("data-flow.md", r"^## (\d+[a-z]?)\. ")
    assert {str(n) for n in range(1, 23)} <= steps
    bad = uncited(steps, STEPS, numbers, "step ")
    assert not bad, "cited steps missing from docs/data-flow.md:\n" + "\n".join(bad)


def test_cited_promise_sections_exist():
    sections = headings("promises.md", r"^## (\d+)\. ")
    assert {str(n) for n in range(1, 13)} <= sections
    bad = uncited(sections, SECTIONS, lambda spec: re.findall(r"\d+", spec), "§")
    assert not bad, "cited sections missing from docs/promises.md:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_docs_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    broken = [
        link for link in MD_LINK.findall(text) if "://" not in link and not (DOCS / link).exists()
    ]
    assert not broken, f"docs/{page}: broken links {broken}"


def test_docs_name_no_machine_paths():
    machine = re.compile(r"(?<![\w.~])/(?:work|home|root|tmp|Users|mnt)/")
    found = [
        f"{relative(path)}: {m.group(0)}"
        for path in sorted(DOCS.rglob("*.md"))
        for m in machine.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)


def test_reference_config_is_the_one_the_parity_tests_load():
    ours = DOCS / "reference" / "indextts2-config.yaml"
    parity = ROOT / "tests" / "parity" / "data" / "indextts2-config.yaml"
    assert ours.read_bytes() == parity.read_bytes()


def test_readmes_link_the_docs():
    assert "docs/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    stale = [
        relative(path)
        for path in sorted(ROOT.glob("packages/*/README.md"))
        if re.search(r"to come|arrives with|is built once", path.read_text(encoding="utf-8"))
    ]
    assert not stale, f"package READMEs that describe a future state: {stale}"
