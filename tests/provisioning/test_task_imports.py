"""What a task process imports before its stage runs (issue 7): each DAG task and each task of
``scripts/benchmark_shards.py`` is a fresh process that imports ``api`` and builds an engine, so a
package only one stage uses is imported by that stage, not by all of them. Read from a fresh
process's ``sys.modules``; no timing here (the CPU is measured by the benchmarks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from include.provisioning import graph, salesforce

REPO_ROOT = Path(__file__).resolve().parents[2]

ONE_STAGE_PACKAGES = (
    "httpx",  # Graph's client: extract (and the roles import)
    "simple_salesforce",  # Salesforce's client: transform, plan, load, a recovery in begin
    "requests",
    "jwt",
    "zeep",  # simple_salesforce.metadata
    "great_expectations",  # validate
    "wcwidth",  # a dry run's table
    "msgraph",
)


def _imported_by(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_task_process_imports_no_service_client_before_its_stage_runs() -> None:
    imported = _imported_by(
        "from include.provisioning import api\n"
        "from include.provisioning.runtime import build_engine\n"
        "from include.provisioning.engine import Engine\n"
        "import include.provisioning.stages, include.provisioning.cycle"
    )
    assert "include" in imported and "sqlalchemy" in imported  # the probe saw the imports
    assert imported.isdisjoint(ONE_STAGE_PACKAGES), sorted(imported & set(ONE_STAGE_PACKAGES))


@pytest.mark.parametrize("package", [graph, salesforce], ids=lambda p: p.__name__)
def test_the_client_packages_still_export_their_names(package: ModuleType) -> None:
    """Their names are imported on first use (``lazy_modules.exported_from``), from their submodules."""
    for name in package.__all__:
        assert getattr(package, name).__module__.startswith(f"{package.__name__}."), name
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018
