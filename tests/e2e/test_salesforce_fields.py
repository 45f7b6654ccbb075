"""A mapping target the org does not have, end to end against the sandbox: ``validate-config
--connect`` names the row and the close match (from ``sobjects/User/describe``), and a cycle
that sends it anyway fails as a configuration error (exit 2, the row named), not as a transient
Bulk job error (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.provisioning.errors import is_configuration_error
from include.provisioning.model import Action, FieldChange, Plan, PlannedChange
from include.provisioning.runtime import build_engine
from include.provisioning.salesforce.fields import SalesforceFieldError
from include.provisioning.settings import DEFAULT_MAPPING_PATH
from include.provisioning.stages import _send
from tests.e2e.conftest import ingest_jobs, org_users, run_cli
from tests.sandbox_process import SandboxProcess


def _misspelt_table(tmp_path: Path) -> Path:
    text = DEFAULT_MAPPING_PATH.read_text(encoding="utf-8")
    assert text.count("target: FirstName\n") == 1
    path = tmp_path / "mapping.yaml"
    path.write_text(text.replace("target: FirstName\n", "target: FirstNme\n"), encoding="utf-8")
    return path


def test_validate_config_connect_names_the_row_and_the_close_match(sandbox: SandboxProcess, tmp_path: Path) -> None:
    good = run_cli(sandbox, tmp_path / "state.db", "validate-config", "--connect")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Salesforce: User has every mapped field (15 checked against its describe)" in good.stdout + good.stderr
    bad = run_cli(
        sandbox, tmp_path / "state.db", "validate-config", "--connect", "--mapping", str(_misspelt_table(tmp_path))
    )
    out = bad.stdout + bad.stderr
    assert bad.returncode == 2, out
    assert "mapping.yaml row 4 (FirstNme): Salesforce's User has no field FirstNme; did you mean FirstName?" in out
    assert "1 problem(s) found" in out
    assert sandbox.requests("salesforce")["by_route"].get("GET /services/data/{version}/sobjects/{sobject}/describe")


def test_a_cycle_sending_a_missing_field_fails_as_configuration(sandbox: SandboxProcess, tmp_path: Path) -> None:
    result = run_cli(sandbox, tmp_path / "state.db", "sync", "--dry-run", "--mapping", str(_misspelt_table(tmp_path)))
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Salesforce refused the field FirstNme (mapping.yaml row 4 (FirstNme)): INVALID_FIELD: No such column" in out
    assert "BulkJobError" not in out


def test_a_load_whose_job_salesforce_refuses_fails_as_configuration(sandbox: SandboxProcess, tmp_path: Path) -> None:
    """An org that lacks a mapped field while the table is unchanged (a custom field deleted in
    Salesforce) is not caught by the org query of a mapping change's full cycle: an incremental
    cycle's insert job is refused whole ("InvalidBatch : Field name not found")."""
    engine = build_engine(
        sandbox.settings, mapping_path=_misspelt_table(tmp_path), state_url=f"sqlite:///{tmp_path / 'state.db'}"
    )
    values = {"Username": "nora.field@contoso.example", "FirstNme": "Nora", "LastName": "Field"}
    create = PlannedChange(
        "nora-id", values["Username"], Action.CREATE, None, {k: FieldChange(None, v) for k, v in values.items()}
    )
    jobs_before = ingest_jobs(sandbox)
    try:
        with pytest.raises(SalesforceFieldError) as raised:
            _send(engine, engine.salesforce_session(), "cycle-1", Plan(creates=[create]))
        assert str(raised.value).startswith(
            "Salesforce refused the field FirstNme (mapping.yaml row 4 (FirstNme)): INVALID_FIELD: "
            "Field name not found : FirstNme"
        )
        assert is_configuration_error(raised.value)
        assert ingest_jobs(sandbox) == jobs_before + 1
        assert engine.state.pending_jobs("cycle-1") == []  # nothing written, nothing to settle
        assert values["Username"] not in org_users(sandbox)
    finally:
        engine.state.close()
