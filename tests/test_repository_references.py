"""The repository is self-contained: no tracked file points at a file a clone does not have.

Every tracked text file (README, docs, code, comments, docstrings, scripts, tests) is scanned for
three kinds of reference, URLs aside:

- a document cited by name (``something.md``) that is not in the repository, relative to the root
  or to the citing file (``FORMAT.md``, ``reference/graph.md``);
- a path into a folder that lives beside a development checkout, not in it (``shared/...``,
  ``reference/...``);
- a relative path that climbs out of the repository, or to nothing it holds (``../shared/...``).

What the product documents lives in ``docs/``; facts about the external APIs cite their public
pages (``docs/external-apis.md``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(REPO).as_posix()

URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
CITED_DOCUMENT = re.compile(r"(?<![\w/.-])([\w./-]*\w\.md)\b")
OUTSIDE_FOLDER = re.compile(r"(?<![\w/.$-])((?:shared|reference)/[\w./-]*)")
CLIMBING_PATH = re.compile(r"(?<![\w/.-])((?:\.\./)+[\w./-]*)")


def tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [name for name in listed.decode().split("\0") if name]


def dangling_references(name: str, text: str, tracked: set[str]) -> set[str]:
    """The references in ``text`` (the file ``name``) to files outside the repository."""
    folder = Path(name).parent
    basenames = {Path(path).name for path in tracked}
    found: set[str] = set()
    for raw in text.splitlines():
        line = URL.sub(" ", raw)
        for cited in CITED_DOCUMENT.findall(line):
            candidates = {cited.lstrip("./"), (folder / cited).as_posix()}
            if not candidates & tracked and not ("/" not in cited and cited in basenames):
                found.add(cited)
        found.update(OUTSIDE_FOLDER.findall(line))
        for climbing in CLIMBING_PATH.findall(line):
            target = (REPO / folder / climbing).resolve()
            inside = target.relative_to(REPO).as_posix() if target.is_relative_to(REPO) else None
            if inside is None or not any(path == inside or path.startswith(f"{inside}/") for path in tracked):
                found.add(climbing)
    return found


def test_no_tracked_file_references_a_path_outside_the_repository() -> None:
    tracked = tracked_files()
    known = set(tracked)
    found: set[tuple[str, str]] = set()
    for name in tracked:
        if name == SELF:
            continue  # its examples point outside on purpose
        path = REPO / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary, or deleted in the work tree
        found.update((name, reference) for reference in dangling_references(name, text, known))
    assert sorted(found) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed format of ``FORMAT.md``", {"FORMAT.md"}),
        ("The rules (``reference/entra-provisioning.md``)", {"reference/entra-provisioning.md"}),
        ("see shared/fixtures/example-tenant.json", {"shared/fixtures/example-tenant.json"}),
        ("cp ../shared/hooks/before-stop .", {"../shared/hooks/before-stop"}),
        ("cd ../../shared", {"../../shared"}),
        ('(DESIGN.md "One cycle")', {"DESIGN.md"}),
        ("see docs/sandbox-fixtures.md and README.md", set()),
        ("https://learn.microsoft.com/en-us/graph/json-batching.md", set()),
        ("cat /opt/airflow/shared/mail/x.eml", set()),
        ("Path(__file__).parent / '../tests'", set()),
    ],
)
def test_what_counts_as_a_reference_outside_the_repository(text: str, expected: set[str]) -> None:
    tracked = {"docs/sandbox-fixtures.md", "README.md", "include/x.py", "tests/__init__.py"}
    assert dangling_references("include/x.py", text, tracked) == expected


# -- paths the prose of README and docs names ----------------------------------------------------

PROSE_DOCUMENTS = ("README.md", "docs")
"""What a new user reads: every path they name must lead somewhere (issue 8's fresh clone found
fixtures "beside this file" that were in tests/fixtures/)."""
DATA_FILE = re.compile(r"(?<![\w/.$-])([\w-]+\.(?:json|ya?ml|csv|toml))\b")
"""A data file named without its folder, which a reader looks for beside the document."""
BESIDE = re.compile(r"beside this (?:file|document)|in this folder", re.IGNORECASE)
BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


def _expand(path: str) -> list[str]:
    """``a.{html,txt}.j2`` → ``["a.html.j2", "a.txt.j2"]`` (shell brace expansion, one level)."""
    match = BRACES.search(path)
    if match is None:
        return [path]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in _expand(path[: match.start()] + choice + path[match.end() :])
    ]


def missing_prose_paths(name: str, text: str, tracked: set[str]) -> set[str]:
    """Paths the document ``name`` names that the repository does not hold: ``folder/...`` under
    one of its top-level folders (placeholders such as ``<run>`` or ``*`` aside), and data files
    named bare that are not beside the document (or at the root), bare names included when the
    line says they are "beside this file"."""
    folder = Path(name).parent
    tops = {path.split("/")[0] for path in tracked if "/" in path}
    under_top = re.compile(r"(?<![\w/.$-])((?:" + "|".join(map(re.escape, sorted(tops))) + r")/[\w./{},-]*\w/?)")
    missing: set[str] = set()
    for raw in text.splitlines():
        line = URL.sub(" ", raw)
        for cited in under_top.findall(line):
            for path in _expand(cited.rstrip("/")):
                if not (path in tracked or any(t.startswith(f"{path}/") for t in tracked)):
                    missing.add(path)
        named = set(DATA_FILE.findall(line))
        if BESIDE.search(line):
            named |= {m for m in re.findall(r"`([\w.-]+\.\w+)`", line)}
        basenames = {Path(path).name for path in tracked}
        for bare in named:
            beside = (folder / bare).as_posix()
            if bare in basenames and beside not in tracked and bare not in tracked:
                missing.add(bare)  # it exists, elsewhere: name its folder
            elif BESIDE.search(line) and beside not in tracked:
                missing.add(bare)
    return missing


def test_every_path_the_readme_and_docs_name_exists() -> None:
    tracked = set(tracked_files())
    found = set()
    for name in sorted(tracked):
        if name == PROSE_DOCUMENTS[0] or (name.startswith(f"{PROSE_DOCUMENTS[1]}/") and name.endswith(".md")):
            text = (REPO / name).read_text(encoding="utf-8")
            found |= {(name, path) for path in missing_prose_paths(name, text, tracked)}
    assert sorted(found) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("`example-tenant.json` and `example-org.json` beside this file", {"example-tenant.json", "example-org.json"}),
        ("`tests/fixtures/example-tenant.json` and `example-org.json`", {"example-org.json"}),
        ("in `tests/fixtures/`: `example-tenant.json`", {"example-tenant.json"}),
        ("see `tests/fixtures/gone.json` and include/x.py", {"tests/fixtures/gone.json"}),
        ("`include/templates/report.{html,txt}.j2`", {"include/templates/report.txt.j2"}),
        ("`<run>/<cycle>/`: `validation_result.json`, `tests/<name>.py`, `tests/*.py`", set()),
        ("see docs/sandbox-fixtures.md and tests/fixtures/", set()),
        ("https://example.com/tests/fixtures/nothing.json", set()),
        ("`notes.json` beside this file", {"notes.json"}),
    ],
)
def test_what_counts_as_a_missing_prose_path(text: str, expected: set[str]) -> None:
    tracked = {
        "docs/sandbox-fixtures.md",
        "include/x.py",
        "include/templates/report.html.j2",
        "tests/fixtures/example-tenant.json",
        "tests/fixtures/example-org.json",
    }
    assert missing_prose_paths("docs/sandbox-fixtures.md", text, tracked) == expected
