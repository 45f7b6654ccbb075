"""The example fixtures end to end: initial sync, re-run, and one incremental scenario per kind
of change, each producing exactly the expected Salesforce change and nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from include.provisioning.cycle import CycleResult, Engine
from include.provisioning.model import Action, CycleStatus, Mode, Status
from include.provisioning.report import format_summary
from tests.e2e.conftest import ingest_jobs, org_changes, org_users
from tests.sandbox_process import SandboxProcess

ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA, NORA = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 8))
SALES_EMEA, FRANCE = "00000000-0000-0000-0000-0000000000c9", "00000000-0000-0000-0000-0000000000ca"
STANDARD_ROLE, ADMIN_ROLE = "00000000-0000-0000-0000-000000000065", "00000000-0000-0000-0000-000000000066"
STANDARD, ADMIN = "00e000000000001AAA", "00e000000000002AAA"

Cycle = Callable[..., CycleResult]


def _initial(cycle: Cycle) -> CycleResult:
    result = cycle()
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    return result


def test_initial_sync_leaves_every_example_user_in_the_documented_state(sandbox: SandboxProcess, cycle: Cycle) -> None:
    before = org_users(sandbox)
    result = _initial(cycle)
    after = org_users(sandbox)
    summary = result.summary
    assert summary.mode is Mode.FULL
    assert (summary.created, summary.updated, summary.unchanged, summary.escrowed) == (3, 1, 1, 1)
    assert (summary.deactivated, summary.quarantined, summary.held_back) == (0, 0, 0)
    assert summary.in_scope == 6  # everyone assigned; Nora is not

    adele = after["adele.vance@contoso.example"]
    assert (adele["LastName"], adele["FirstName"], adele["ProfileId"], adele["IsActive"]) == (
        "Vance",
        "Adele",
        STANDARD,
        True,
    )
    assert (adele["Alias"], adele["EmailEncodingKey"], adele["LocaleSidKey"]) == ("adele.va", "UTF-8", "en_US")
    zoe = after["zoe.muller@contoso.example"]  # through the nested group Sales EMEA -> France
    assert (zoe["FirstName"], zoe["LastName"], zoe["ProfileId"], zoe["LocaleSidKey"]) == (
        "Zoë",
        "Müller",
        STANDARD,
        "fr_FR",
    )
    assert after["no.surname@contoso.example"]["LastName"] == "."  # Entra's default for a missing surname
    assert after["megan.bowen@contoso.example"]["LastName"] == "Bowen"  # matched by Username, stale name fixed
    assert after["megan.bowen@contoso.example"]["Id"] == before["megan.bowen@contoso.example"]["Id"]
    assert "alex.wilber@contoso.example" not in after  # username taken in another org
    assert "disabled.user@contoso.example" not in after  # disabled and never provisioned: nothing to create
    assert "not.assigned@contoso.example" not in after
    assert after["integration@contoso.example.sfdc"] == before["integration@contoso.example.sfdc"]

    failed = [entry for entry in result.log if entry.status is Status.FAILURE]
    assert [(e.entra_id, e.action, e.error_code) for e in failed] == [(ALEX, Action.CREATE, "DUPLICATE_USERNAME")]
    assert result.report is not None and "alex.wilber@contoso.example" in result.report.text


def test_a_rerun_changes_nothing(sandbox: SandboxProcess, cycle: Cycle) -> None:
    _initial(cycle)
    before = org_users(sandbox)
    sandbox.salesforce.delete("/_sandbox/requests")
    again = cycle()
    assert again.summary.mode is Mode.INCREMENTAL
    assert ingest_jobs(sandbox) == 0
    assert org_changes(before, org_users(sandbox)) == {}
    assert (again.summary.created, again.summary.updated, again.summary.deactivated) == (0, 0, 0)
    full_again = cycle(Mode.FULL)
    assert full_again.summary.mode is Mode.FULL
    assert ingest_jobs(sandbox) == 0
    assert org_changes(before, org_users(sandbox)) == {}


def _after_change(
    sandbox: SandboxProcess, cycle: Cycle, change: Callable[[], Any]
) -> tuple[CycleResult, dict[str, Any]]:
    _initial(cycle)
    before = org_users(sandbox)
    change()
    result = cycle()
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    assert result.summary.mode is Mode.INCREMENTAL
    return result, org_changes(before, org_users(sandbox))


def _only(changes: dict[str, Any], username: str) -> dict[str, Any]:
    assert set(changes) == {username}, changes
    return changes[username]


def test_attribute_change_updates_only_that_field(sandbox: SandboxProcess, cycle: Cycle) -> None:
    _, changes = _after_change(
        sandbox, cycle, lambda: sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": "Sales Director"})
    )
    assert _only(changes, "adele.vance@contoso.example") == {"Title": ("Account Executive", "Sales Director")}


def test_unassignment_deactivates_and_reassignment_reactivates(
    sandbox: SandboxProcess, cycle: Cycle, engine: Engine
) -> None:
    _, changes = _after_change(sandbox, cycle, lambda: sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1"))
    assert _only(changes, "adele.vance@contoso.example") == {"IsActive": (True, False)}
    before = org_users(sandbox)
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments",
        json={"id": "asg-1b", "principalId": ADELE, "principalType": "User", "appRoleId": STANDARD_ROLE},
    ).raise_for_status()
    result = cycle()
    assert _only(org_changes(before, org_users(sandbox)), "adele.vance@contoso.example") == {"IsActive": (False, True)}
    assert [e.action for e in result.log if e.entra_id == ADELE] == [Action.REACTIVATE]
    # Counted within "updated" (the sum stays the users in scope) and shown apart (issue 8).
    assert (result.summary.updated, result.summary.reactivated) == (1, 1)
    assert re.search(r"^  updated +1  \(1 reactivated\)$", format_summary(result.summary), re.MULTILINE)
    stored = engine.state.cycle(result.summary.cycle_id)
    assert stored is not None and (stored.updated, stored.reactivated) == (1, 1)


def test_disabling_a_user_deactivates_it(sandbox: SandboxProcess, cycle: Cycle) -> None:
    result, changes = _after_change(
        sandbox, cycle, lambda: sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"accountEnabled": False})
    )
    assert _only(changes, "adele.vance@contoso.example") == {"IsActive": (True, False)}
    assert result.summary.deactivated == 1


def test_soft_delete_deactivates_it(sandbox: SandboxProcess, cycle: Cycle) -> None:
    result, changes = _after_change(sandbox, cycle, lambda: sandbox.graph.delete(f"/_sandbox/users/{ZOE}"))
    assert _only(changes, "zoe.muller@contoso.example") == {"IsActive": (True, False)}
    # The log row says who it is, though Graph's delta names a deleted user by id alone: the UPN
    # and display name the log last knew.
    assert [(e.action, e.status, e.user_principal_name, e.display_name) for e in result.log if e.entra_id == ZOE] == [
        (Action.DISABLE, Status.SUCCESS, "zoe.muller@contoso.example", "Zoë Müller")
    ]


def test_group_membership_changes_follow_nested_groups(sandbox: SandboxProcess, cycle: Cycle) -> None:
    def change() -> None:
        sandbox.graph.delete(f"/_sandbox/groups/{FRANCE}/members/{ZOE}").raise_for_status()
        sandbox.graph.post(f"/_sandbox/groups/{FRANCE}/members", json={"id": NORA}).raise_for_status()

    _, changes = _after_change(sandbox, cycle, change)
    assert set(changes) == {"zoe.muller@contoso.example", "not.assigned@contoso.example"}
    assert changes["zoe.muller@contoso.example"] == {"IsActive": (True, False)}
    nora = changes["not.assigned@contoso.example"]
    assert nora["Username"] == (None, "not.assigned@contoso.example")
    assert nora["ProfileId"] == (None, STANDARD)


def test_role_change_changes_the_profile(sandbox: SandboxProcess, cycle: Cycle) -> None:
    def change() -> None:
        sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()
        sandbox.graph.post(
            "/_sandbox/appRoleAssignments",
            json={"id": "asg-1c", "principalId": ADELE, "principalType": "User", "appRoleId": ADMIN_ROLE},
        ).raise_for_status()

    _, changes = _after_change(sandbox, cycle, change)
    assert _only(changes, "adele.vance@contoso.example") == {"ProfileId": (STANDARD, ADMIN)}


def test_two_different_roles_quarantine_the_user_with_entras_reason(sandbox: SandboxProcess, cycle: Cycle) -> None:
    def change() -> None:
        sandbox.graph.post(
            "/_sandbox/appRoleAssignments",
            json={"id": "asg-9", "principalId": ADELE, "principalType": "User", "appRoleId": ADMIN_ROLE},
        ).raise_for_status()

    result, changes = _after_change(sandbox, cycle, change)
    assert changes == {}
    [entry] = result.quarantined
    assert entry.entra_id == ADELE
    assert any("No more than one app role assignment" in reason for reason in entry.reasons)
    assert result.summary.quarantined == 1
