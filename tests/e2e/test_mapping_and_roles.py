"""Configuration-driven behaviour end to end: a scoping filter added to the mapping table forces a
full resync and deactivates the users it leaves out; importing roles turns every Salesforce Profile
into an assignable app role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from include.provisioning.cycle import Engine, run_cycle
from include.provisioning.mapping import MappingTable
from include.provisioning.model import CycleStatus, Mode
from include.provisioning.settings import DEFAULT_MAPPING_PATH
from tests.e2e.conftest import org_changes, org_users
from tests.sandbox_process import SandboxProcess

ADELE = "00000000-0000-0000-0000-000000000001"


def test_a_new_scoping_filter_forces_a_full_cycle_and_deactivates_who_falls_out(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = make_engine()
    assert run_cycle(engine).summary.status is CycleStatus.SUCCEEDED
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"department": "Finance"}).raise_for_status()
    scoped = tmp_path / "scoped.yaml"
    scoped.write_text(
        DEFAULT_MAPPING_PATH.read_text(encoding="utf-8")
        + "\nscoping:\n  - name: Sales only\n    clauses:\n"
        + "      - {attribute: department, operator: EQUALS, value: Sales}\n",
        encoding="utf-8",
    )
    engine.table = MappingTable.load(scoped)
    before = org_users(sandbox)
    result = run_cycle(engine)
    assert result.summary.mode is Mode.FULL
    assert any("mapping table or scoping filters changed" in note for note in result.notes), result.notes
    changes = org_changes(before, org_users(sandbox))
    assert changes == {"adele.vance@contoso.example": {"IsActive": (True, False)}}
    assert result.summary.deactivated == 1


def test_importing_roles_makes_every_profile_an_app_role(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine]
) -> None:
    org = sandbox.salesforce.get("/_sandbox/state").json()
    org["profiles"].append({"Id": "00e000000000004AAA", "Name": "Sales Manager", "UserLicenseId": "100000000000001AAA"})
    sandbox.salesforce.put("/_sandbox/state", json=org).raise_for_status()
    engine = make_engine(AIRFLOW_VAR_PROVISIONING_IMPORT_ROLES="true")
    result = run_cycle(engine)
    assert result.summary.status is CycleStatus.SUCCEEDED
    roles = sandbox.graph.get("/_sandbox/state").json()["service_principal"]["appRoles"]
    by_value = {role["value"]: role for role in roles}
    assert {"Standard User", "System Administrator", "Chatter Free User", "Sales Manager"} <= set(by_value)
    assert by_value["Sales Manager"]["isEnabled"] is True
    assert by_value["Standard User"]["id"] == "00000000-0000-0000-0000-000000000065"  # existing ids are kept
    assert any("app roles" in note for note in result.notes)
