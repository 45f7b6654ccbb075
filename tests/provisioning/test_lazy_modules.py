"""``lazy_modules.deferred``: a deferred module's code runs on its first attribute read, not at
its import; nothing else about importing changes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.provisioning.lazy_modules import deferred, is_loaded


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A package ``lazyprobe_pkg`` with a module ``heavy`` that counts its own executions in
    ``lazyprobe_pkg.runs`` and a module ``user`` that imports it, as GX imports scipy.stats."""
    root = tmp_path / "lazyprobe_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("runs = []\n")
    (root / "heavy.py").write_text("import lazyprobe_pkg\nlazyprobe_pkg.runs.append('heavy')\nANSWER = 42\n")
    (root / "user.py").write_text("from lazyprobe_pkg import heavy\n\ndef answer():\n    return heavy.ANSWER\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "lazyprobe_pkg"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "lazyprobe_pkg" or n.startswith("lazyprobe_pkg.")]:
            del sys.modules[name]


def test_a_deferred_module_runs_on_first_use(package: str) -> None:
    with deferred([f"{package}.heavy"]):
        from lazyprobe_pkg import user
    runs = sys.modules[package].runs
    assert runs == [] and not is_loaded(f"{package}.heavy") and is_loaded(f"{package}.user")
    assert user.answer() == 42
    assert runs == ["heavy"] and is_loaded(f"{package}.heavy")
    assert user.answer() == 42 and runs == ["heavy"]  # once


def test_imports_after_the_block_are_as_usual(package: str) -> None:
    with deferred(["json"]):  # already imported: left as it is
        import json

    assert is_loaded("json") and json.dumps([1]) == "[1]"
    import lazyprobe_pkg.heavy  # noqa: F401

    assert sys.modules[package].runs == ["heavy"]  # run at import: the finder is gone
    assert not [finder for finder in sys.meta_path if type(finder).__name__ == "_DeferringFinder"]


def test_a_module_that_is_not_there_is_still_an_import_error(package: str) -> None:
    with deferred([f"{package}.missing"]), pytest.raises(ModuleNotFoundError, match="missing"):
        import lazyprobe_pkg.missing  # noqa: F401


def test_is_loaded_knows_modules_never_imported() -> None:
    assert not is_loaded("lazyprobe_pkg_never_imported")


def test_blocks_open_at_once_do_not_ask_each_other(package: str) -> None:
    # As when two threads import GX at the same time: each finder must skip the other.
    with deferred([f"{package}.heavy"]), deferred([f"{package}.heavy"]):
        from lazyprobe_pkg import user
    assert not is_loaded(f"{package}.heavy") and user.answer() == 42
