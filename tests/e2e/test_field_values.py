"""Values that clear a field, and rules that guard one write only (issue 8, cases 1 and 2).

Case 1: a source attribute set to null (or "") clears a ``clear_when_null`` field through Bulk
API 2.0's null (``#N/A`` in the CSV), and every other change of the user lands with it.
Case 2: ``mail`` missing guards creation only: on an existing user the null is skipped (Email
stays) and the other changes, a demotion included, apply; a new user without mail is held.

Each scenario checks the whole org afterwards: only the intended fields of the intended user
changed, and the next cycle writes nothing and escrows nobody new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from include.provisioning.cycle import CycleResult, Engine
from include.provisioning.model import Action, Mode, Status
from tests.e2e.conftest import add_assigned_user, org_changes, org_users
from tests.sandbox_process import SandboxProcess

ADELE = "00000000-0000-0000-0000-000000000001"
ADELE_USERNAME = "adele.vance@contoso.example"
ALEX = "00000000-0000-0000-0000-000000000002"
"""The example's user whose username another org holds: escrowed by every sync (DUPLICATE_USERNAME)."""
STANDARD_USER_ROLE, SYSTEM_ADMINISTRATOR_ROLE = (
    "00000000-0000-0000-0000-000000000065",
    "00000000-0000-0000-0000-000000000066",
)
STANDARD_USER, SYSTEM_ADMINISTRATOR = "00e000000000001AAA", "00e000000000002AAA"
MAIL_MISSING = "mail: missing (expect_column_values_to_not_be_null)"


def _changes_of(result: CycleResult, entra_id: str) -> list[tuple[Action, Status, dict[str, tuple[Any, Any]]]]:
    return [
        (e.action, e.status, {k: (v.old, v.new) for k, v in e.changes.items()})
        for e in result.log
        if e.entra_id == entra_id
    ]


def _assert_settled(cycle: Callable[..., CycleResult], engine: Engine, sandbox: SandboxProcess) -> None:
    """The next cycle writes nothing, changes nothing, and only the example's standing conflict waits."""
    before = org_users(sandbox)
    again = cycle()
    assert (again.summary.created, again.summary.updated, again.summary.deactivated) == (0, 0, 0)
    assert [e for e in again.log if e.entra_id != ALEX] == []
    assert again.quarantined == []
    assert org_changes(before, org_users(sandbox)) == {}
    assert [e.entra_id for e in engine.state.escrow_entries()] == [ALEX]


def _reassign(sandbox: SandboxProcess, user_id: str, app_role_id: str) -> None:
    """Replace the user's direct assignment with one to ``app_role_id`` (a role change in Entra)."""
    tenant = sandbox.graph.get("/_sandbox/state").json()
    for assignment in tenant["appRoleAssignments"]:
        if assignment["principalId"] == user_id:
            sandbox.graph.delete(f"/_sandbox/appRoleAssignments/{assignment['id']}").raise_for_status()
    body = {"principalId": user_id, "principalType": "User", "appRoleId": app_role_id}
    sandbox.graph.post("/_sandbox/appRoleAssignments", json=body).raise_for_status()


def _sync_change(
    sandbox: SandboxProcess,
    cycle: Callable[..., CycleResult],
    patch: dict[str, Any],
    expected: dict[str, tuple[Any, Any]],
    *,
    mode: Mode = Mode.AUTO,
    role: str | None = None,
) -> CycleResult:
    """Change Adele in Entra (``patch``, and her app role when ``role``), run a cycle and check that
    it wrote exactly ``expected`` ({field: (old, new)}) to her and changed nothing else in the org."""
    before = org_users(sandbox)
    if role is not None:
        _reassign(sandbox, ADELE, role)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json=patch).raise_for_status()
    result = cycle(mode)
    assert result.quarantined == []
    assert _changes_of(result, ADELE) == [(Action.UPDATE, Status.SUCCESS, expected)]
    assert org_changes(before, org_users(sandbox)) == {ADELE_USERNAME: expected}
    return result


@pytest.mark.parametrize("mode", [Mode.INCREMENTAL, Mode.FULL])
@pytest.mark.parametrize("cleared", [None, ""], ids=["null", "empty"])
def test_clearing_a_job_title_clears_title_and_the_new_surname_lands(
    sandbox: SandboxProcess, engine: Engine, cycle: Callable[..., CycleResult], cleared: str | None, mode: Mode
) -> None:
    cycle()
    assert org_users(sandbox)[ADELE_USERNAME]["Title"] == "Account Executive"
    result = _sync_change(
        sandbox,
        cycle,
        {"jobTitle": cleared, "surname": "Vance-Married"},
        {"Title": ("Account Executive", None), "LastName": ("Vance", "Vance-Married")},
        mode=mode,
    )
    assert result.summary.mode is mode
    _assert_settled(cycle, engine, sandbox)


@dataclass(frozen=True)
class MailRemoved:
    """Adele's mail is removed in Entra with another change (``patch``, ``role``)."""

    role_before: str
    patch: dict[str, Any]
    role: str | None
    expected: dict[str, tuple[Any, Any]]


MAIL_REMOVED = {
    "demotion": MailRemoved(
        SYSTEM_ADMINISTRATOR_ROLE,
        {"mail": None},
        STANDARD_USER_ROLE,
        {"ProfileId": (SYSTEM_ADMINISTRATOR, STANDARD_USER)},
    ),
    "surname": MailRemoved(
        STANDARD_USER_ROLE, {"mail": None, "surname": "Vance-Married"}, None, {"LastName": ("Vance", "Vance-Married")}
    ),
}


@pytest.mark.parametrize("scenario", MAIL_REMOVED.values(), ids=MAIL_REMOVED.keys())
def test_mail_removed_keeps_the_email_and_the_other_changes_land(
    sandbox: SandboxProcess, engine: Engine, cycle: Callable[..., CycleResult], scenario: MailRemoved
) -> None:
    _reassign(sandbox, ADELE, scenario.role_before)
    cycle()
    profile_before = SYSTEM_ADMINISTRATOR if scenario.role_before == SYSTEM_ADMINISTRATOR_ROLE else STANDARD_USER
    assert org_users(sandbox)[ADELE_USERNAME]["ProfileId"] == profile_before
    _sync_change(sandbox, cycle, scenario.patch, scenario.expected, role=scenario.role)
    assert org_users(sandbox)[ADELE_USERNAME]["Email"] == ADELE_USERNAME
    _assert_settled(cycle, engine, sandbox)


def test_a_new_user_without_mail_is_still_held_from_creation(
    sandbox: SandboxProcess, engine: Engine, cycle: Callable[..., CycleResult]
) -> None:
    cycle()
    joiner, upn = "00000000-0000-0000-0000-00000000b0b0", "no.mail@contoso.example"
    add_assigned_user(sandbox, joiner, upn)
    sandbox.graph.patch(f"/_sandbox/users/{joiner}", json={"mail": None}).raise_for_status()
    before = org_users(sandbox)

    result = cycle()
    assert {q.entra_id: q.reasons for q in result.quarantined} == {joiner: [MAIL_MISSING]}
    assert _changes_of(result, joiner) == [(Action.QUARANTINE, Status.SKIPPED, {})]
    assert org_changes(before, org_users(sandbox)) == {}
    _assert_settled(cycle, engine, sandbox)
