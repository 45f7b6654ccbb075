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
