"""Structure seen from outside, read from the source (imports anywhere in a module, lazy ones too):

- the product and its commands (``include/``, ``plugins/``, ``dags/``, ``providers/``, ``scripts/``)
  never import the tests;
- the emulators' models and the fixture generator never reach their HTTP layer (Starlette, the
  ``responses``/``urls``/``endpoints`` modules and the like), directly or through another module;
- no import failure is swallowed: a broken import must fail loudly, not become missing routes.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("include", "plugins", "dags", "providers", "scripts")

MODEL_MODULES = [
    "include.sandbox.graph.models",
    "include.sandbox.graph.state",
    "include.sandbox.graph.delta",
    "include.sandbox.graph.exceptions",
    "include.sandbox.salesforce.models",
    "include.sandbox.salesforce.soql",
    "include.sandbox.salesforce.validation",
    "include.sandbox.salesforce.exceptions",
    "include.sandbox.salesforce.bulk_jobs",
    "include.sandbox.generator",
]
HTTP_LAYER = {"responses", "urls", "endpoints", "batch", "auth", "bulk_responses", "bulk_urls", "service", "server"}
"""Last name of a module under ``include.sandbox`` that speaks HTTP."""
HTTP_PACKAGES = ("starlette", "uvicorn", "httpx")


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (REPO / folder).rglob("*.py") if ".venv" not in path.parts)


def module_path(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every module ``path`` imports, at the top or inside functions: ``from a import b`` is the
    module ``a.b`` when there is one (a package's ``__init__`` is not its submodules' dependency),
    else ``a``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if module_path(submodule) is not None else node.module)
    return frozenset(found)


def reachable(module: str) -> set[str]:
    """``module`` and every module it imports, transitively, within the repository (outside
    modules are listed but not followed)."""
    seen: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        path = module_path(current)
        if path is not None:
            stack.extend(imports_of(path))
    return seen


def test_the_product_and_its_commands_never_import_the_tests() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(name for name in imports_of(path) if name.split(".")[0] == "tests")
        for path in python_files(*PRODUCT)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("module", MODEL_MODULES)
def test_models_do_not_reach_the_http_layer(module: str) -> None:
    modules = reachable(module)
    http = sorted(
        name
        for name in modules
        if name.split(".")[0] in HTTP_PACKAGES
        or (name.startswith("include.sandbox.") and name.rsplit(".", 1)[-1] in HTTP_LAYER)
    )
    assert http == []


def test_the_salesforce_org_has_no_http_shaped_methods() -> None:
    from include.sandbox.salesforce.models import Org

    assert not hasattr(Org, "describe_user")  # the REST describe body lives in responses


def test_no_import_failure_is_swallowed() -> None:
    swallowed = []
    for path in python_files(*PRODUCT):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)]
                if {"ImportError", "ModuleNotFoundError"} & set(names):
                    swallowed.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert swallowed == []
