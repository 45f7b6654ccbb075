"""The order of a cycle's writes (issue 8, case 4): capacity a cycle frees is used in that cycle.

An org at its licence ceiling; in one cycle one user is unassigned and another is assigned. The
leaver's deactivation must reach Salesforce before the joiner's create, so the joiner takes the
freed licence instead of failing ``LICENSE_LIMIT_EXCEEDED`` and waiting in escrow."""

from __future__ import annotations

from collections.abc import Callable

from include.provisioning.cycle import CycleResult
from include.provisioning.model import Action, Status
from tests.e2e.conftest import add_assigned_user
from tests.sandbox_process import SandboxProcess

JOINER_ID = "00000000-0000-0000-0000-00000000f00d"
JOINER_UPN = "new.joiner@contoso.example"


def _fill_licences(sandbox: SandboxProcess) -> None:
    """Every licence's total := the active users holding it now (the org is at its ceiling)."""
    org = sandbox.salesforce.get("/_sandbox/state").json()
    license_of = {p["Id"]: p["UserLicenseId"] for p in org["profiles"]}
    used: dict[str, int] = {}
    for user in org["users"]:
        if user.get("IsActive"):
            lic = license_of[user["ProfileId"]]
            used[lic] = used.get(lic, 0) + 1
    for lic in org["user_licenses"]:
        lic["TotalLicenses"] = used.get(lic["Id"], 0)
    sandbox.salesforce.put("/_sandbox/state", json=org).raise_for_status()


def test_a_licence_freed_by_a_leaver_is_used_by_a_joiner_in_the_same_cycle(
    sandbox: SandboxProcess, cycle: Callable[..., CycleResult]
) -> None:
    first = cycle()
    tenant = sandbox.graph.get("/_sandbox/state").json()
    created = {e.entra_id for e in first.log if e.action is Action.CREATE and e.status is Status.SUCCESS}
    leaver = next(
        a for a in tenant["appRoleAssignments"] if a["principalType"] == "User" and a["principalId"] in created
    )
    _fill_licences(sandbox)

    sandbox.graph.delete(f"/_sandbox/appRoleAssignments/{leaver['id']}").raise_for_status()
    add_assigned_user(sandbox, JOINER_ID, JOINER_UPN, leaver["appRoleId"])

    second = cycle()
    by_user = {e.entra_id: e for e in second.log}
    assert by_user[leaver["principalId"]].action is Action.DISABLE
    assert by_user[leaver["principalId"]].status is Status.SUCCESS
    assert by_user[JOINER_ID].action is Action.CREATE
    assert by_user[JOINER_ID].status is Status.SUCCESS, by_user[JOINER_ID].error_code
    assert not any(e.error_code == "LICENSE_LIMIT_EXCEEDED" for e in second.log)
