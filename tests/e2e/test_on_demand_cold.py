"""``provision-user`` as people and the DAG's task process run it: a fresh ``python -m
include.provisioning`` process. What it imports is read from Python's own ``-X importtime`` lines:
naming a user Entra ID does not have must not load Great Expectations (seconds of imports for
nothing to validate), while a real user is still validated by GX, with the cycle's suite. What GX
imports but a column-map suite never runs (``validate.GX_DEFERRED_MODULES``) is bound lazily: its
submodules never load, and a user breaking an expectation is still quarantined with GX's reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from include.provisioning.model import Action, Status
from include.provisioning.state import StateStore
from tests.e2e.conftest import REPO_ROOT
from tests.sandbox_process import SandboxProcess

ADELE = "00000000-0000-0000-0000-000000000001"
MAIL_REASON = "mail: not e-mail-shaped (expect_column_values_to_match_regex)"
"""The suite's own words for a mail that breaks its regex expectation (entra_users.json)."""


def _cold_provision_user(sandbox: SandboxProcess, state: Path, upn: str) -> tuple[int, str, set[str]]:
    """Exit status, what it printed (stdout, and stderr without the import lines) and the modules
    the fresh process imported: top-level packages, and the full dotted names."""
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
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert names, f"no -X importtime lines: {done.stderr[-2000:]}"
    imported = names | {name.split(".")[0] for name in names}
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
    assert f"import: Entra user Adele Vance (adele.vance@contoso.example), object id {ADELE};" in printed
    assert "great_expectations" in imported


def test_what_gx_imports_but_never_runs_is_not_loaded(sandbox: SandboxProcess, tmp_path: Path) -> None:
    status, printed, imported = _cold_provision_user(sandbox, tmp_path / "state.db", "adele.vance@contoso.example")
    assert status == 0, printed
    assert {"great_expectations.expectations.core.expect_column_kl_divergence_to_be_less_than"} <= imported
    # Bound as lazy modules by that expectation's imports (scipy.stats through scipy's own
    # __getattr__, which -X importtime does not list); their code and submodules never ran.
    assert {"scipy", "altair", "jsonschema", "mistune"} <= imported
    assert not {"scipy.stats._stats_py", "altair.vegalite", "jsonschema.validators", "mistune.markdown"} & imported


def test_a_user_breaking_an_expectation_is_quarantined_with_gxs_reason(sandbox: SandboxProcess, tmp_path: Path) -> None:
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"mail": "not-an-address"}).raise_for_status()
    state = tmp_path / "state.db"
    status, printed, imported = _cold_provision_user(sandbox, state, "adele.vance@contoso.example")
    assert status == 1, printed  # the validate step failed: nothing was written
    assert f"[ failed] validate: {MAIL_REASON}" in printed
    assert f"import: Entra user Adele Vance (adele.vance@contoso.example), object id {ADELE}" in printed
    assert "great_expectations" in imported
    store = StateStore(f"sqlite:///{state}")
    try:
        [entry] = store.log_entries(entra_id=ADELE)
    finally:
        store.close()
    assert (entry.action, entry.status, entry.error_message) == (Action.QUARANTINE, Status.SKIPPED, MAIL_REASON)
    assert "adele.vance@contoso.example" not in {
        u["Username"] for u in sandbox.salesforce.get("/_sandbox/state").json()["users"]
    }
