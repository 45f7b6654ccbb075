"""The recipes docs/sandbox-fixtures.md gives for changing the sandbox by hand (issue 8): a
Salesforce org user added and changed by replacing the org's state, which User fields the
emulator accepts, and a user's app role changed by removing the assignment and adding another;
each seen by the next cycle as the document says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.provisioning.cycle import CycleResult
from include.provisioning.model import Action, Mode
from tests.e2e.conftest import org_users
from tests.sandbox_process import SandboxProcess

ADELE = "00000000-0000-0000-0000-000000000001"
ADMIN_ROLE = "00000000-0000-0000-0000-000000000066"
PROFILES = {"00e000000000001AAA": "Standard User", "00e000000000002AAA": "System Administrator"}


def _org(sandbox: SandboxProcess) -> dict[str, Any]:
    answer = sandbox.salesforce.get("/_sandbox/state")
    answer.raise_for_status()
    return dict(answer.json())


def _user(org: dict[str, Any], username: str) -> dict[str, Any]:
    return next(u for u in org["users"] if u["Username"] == username)


def test_an_org_user_is_added_and_changed_by_replacing_the_state(sandbox: SandboxProcess) -> None:
    org = _org(sandbox)
    org["users"].append(
        {
            "Username": "chloe.king@contoso.example",
            "Email": "chloe.king@contoso.example",
            "LastName": "King",
            "Alias": "cking",
            "ProfileId": "00e000000000001AAA",
            "Division": "EMEA",
            "CompanyName": "Contoso",
        }
    )
    assert sandbox.salesforce.put("/_sandbox/state", json=org).status_code == 200
    added = _user(_org(sandbox), "chloe.king@contoso.example")
    assert (added["Division"], added["CompanyName"], added["IsActive"]) == ("EMEA", "Contoso", True)
    assert added["Id"].startswith("005") and added["TimeZoneSidKey"] == "America/Los_Angeles"  # the defaults

    again = _org(sandbox)  # a GET body, edited, loads back: system fields and all
    _user(again, "chloe.king@contoso.example").update({"Title": "Buyer", "IsActive": False})
    assert sandbox.salesforce.put("/_sandbox/state", json=again).status_code == 200
    changed = _user(_org(sandbox), "chloe.king@contoso.example")
    assert (changed["Id"], changed["Title"], changed["IsActive"]) == (added["Id"], "Buyer", False)

    _user(again, "chloe.king@contoso.example")["Nickname__c"] = "x"
    refused = sandbox.salesforce.put("/_sandbox/state", json=again)
    assert refused.status_code == 400 and "Nickname__c" in refused.text
    for read_only in ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"):
        assert read_only in changed, read_only  # dumped, and accepted back above
    assert "Name" not in changed and "UserType" not in changed  # computed: served, not dumped


def test_a_users_app_role_changes_by_removing_the_assignment_and_adding_another(
    sandbox: SandboxProcess, cycle: Callable[..., CycleResult]
) -> None:
    cycle()
    assert org_users(sandbox)["adele.vance@contoso.example"]["ProfileId"] == "00e000000000001AAA"
    same_id = {"id": "asg-1", "principalId": ADELE, "principalType": "User", "appRoleId": ADMIN_ROLE}
    assert sandbox.graph.post("/_sandbox/appRoleAssignments", json=same_id).status_code == 409  # asg-1 exists
    assert sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").status_code == 204
    assert sandbox.graph.post("/_sandbox/appRoleAssignments", json={**same_id, "id": "asg-1b"}).status_code == 201
    again = {**same_id, "id": "asg-1c"}
    assert sandbox.graph.post("/_sandbox/appRoleAssignments", json=again).status_code == 409  # holds the role
    second = cycle()
    assert second.summary.mode is Mode.INCREMENTAL
    (update,) = [c for c in second.plan.updates if c.entra_id == ADELE]
    assert update.action is Action.UPDATE
    assert update.changes["ProfileId"].new == "00e000000000002AAA"
    assert PROFILES[org_users(sandbox)["adele.vance@contoso.example"]["ProfileId"]] == "System Administrator"
