"""Defer running a module's code until something reads from it (Python's ``importlib.util.LazyLoader``).

Great Expectations' package ``__init__`` imports every expectation and renderer it ships, and
some of those import heavy libraries at module level that only their own methods use: the
KL-divergence expectation imports ``scipy.stats`` and ``altair`` (its distribution statistics and
its chart), the JSON-schema metric ``jsonschema``, the renderers ``mistune`` (about half of
importing GX: 0.9-1.0 of ~2.0 CPU seconds, measured). A column-map suite never runs those methods,
so ``deferred`` lets their ``import`` statements bind a lazy module: the module object exists, but
its code runs on the first attribute read. Nothing changes in what runs: a module someone does use
is loaded then, in full, as usual.

Only pure-Python modules can be deferred (the loader must execute source or bytecode); a name
already imported is left as it is. CPython 3.11's lazy module is not safe to *load* from two
threads at once (``importlib.util._LazyModule``), which is why only modules nothing here reads are
deferred.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_lock = threading.Lock()


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds ``names`` with the other finders, then wraps their loader in a ``LazyLoader``."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        for finder in list(sys.meta_path):  # a copy: another thread may open or close a block
            # Every deferring finder is skipped, not only this one: two threads' blocks would
            # otherwise ask each other for ever.
            if isinstance(finder, _DeferringFinder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if isinstance(spec.loader, importlib.machinery.SourceFileLoader | importlib.machinery.SourcelessFileLoader):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextmanager
def deferred(names: Sequence[str]) -> Iterator[None]:
    """Inside the block, importing one of ``names`` (full dotted names, e.g. ``"scipy.stats"``)
    binds a lazy module whose code runs on first use; after the block imports are as usual
    (the lazy modules stay lazy until read). Modules already imported are unaffected; a name
    that cannot be found raises ``ModuleNotFoundError`` at its import, as usual, and an error in a
    deferred module's own code is raised at its first use instead of at its import."""
    finder = _DeferringFinder(frozenset(name for name in names if name not in sys.modules))
    with _lock:
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with _lock:
            sys.meta_path.remove(finder)


def is_loaded(name: str) -> bool:
    """Whether ``name`` is imported and its code has run (False for a lazy module not read yet)."""
    module = sys.modules.get(name)
    return module is not None and type(module) is not importlib.util._LazyModule  # type: ignore[attr-defined]


def exported_from(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562) for names it re-exports from its submodules
    (``homes``: name → submodule, relative to ``package``): the submodule is imported on the first
    read of one of its names, not when the package is. Every task process imports a package
    such as ``graph`` for a light module (``graph.settings``); importing the client stack with it
    would cost every stage what only one uses. An unknown name raises ``AttributeError``."""

    def attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    return attribute
