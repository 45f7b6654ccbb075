"""``provision-user`` as people and the DAG's task process run it: a fresh ``python -m
include.provisioning`` process. What it imports is read from Python's own ``-X importtime`` lines:
naming a user Entra ID does not have must not load Great Expectations (seconds of imports for
nothing to validate), while a real user is still validated by GX, with the cycle's suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO_ROOT
from tests.sandbox_process import SandboxProcess


def _cold_provision_user(sandbox: SandboxProcess, state: Path, upn: str) -> tuple[int, str, set[str]]:
    """Exit status, what it printed (stdout, and stderr without the import lines) and the top-level
    packages the fresh process imported."""
    done = subprocess.run(
        [
            *(sys.executable, "-X", "importtime", "-m", "include.provisioning", "provision-user", upn),
            *("--env-file", str(sandbox.env_file), "--state-url", f"sqlite:///{state}", "--quiet"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert imported, f"no -X importtime lines: {done.stderr[-2000:]}"
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    return done.returncode, "\n".join([done.stdout, *said]), imported


def test_an_unknown_user_is_answered_without_importing_great_expectations(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    status, printed, imported = _cold_provision_user(sandbox, tmp_path / "state.db", "nobody@nowhere.example")
    assert status == 2, printed
    assert "nobody@nowhere.example" in printed
    assert "great_expectations" not in imported
    assert "include" in imported  # the lines were read: the product's own package is among them


def test_a_known_user_is_still_validated_by_great_expectations(sandbox: SandboxProcess, tmp_path: Path) -> None:
    status, printed, imported = _cold_provision_user(sandbox, tmp_path / "state.db", "adele.vance@contoso.example")
    assert status == 0, printed  # every step ok: found, in scope, valid, created
    assert "great_expectations" in imported
