"""Provision on demand against the sandbox: the same outcome and the same provisioning log as a
cycle for the same user (created, updated, deactivated when unassigned, quarantined with the same
reason), without reading the tenant (the emulators' request counts, ``$batch`` contents included).

Each scenario runs twice from the example fixtures: once ending in a scheduled cycle, once ending
in ``api.provision_user`` for the user; the user's log rows of that last run and their Salesforce
record must be equal."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from include.provisioning import api
from include.provisioning.cycle import Engine, run_cycle
from include.provisioning.errors import ConfigurationError, UnknownUserError
from include.provisioning.model import Action, LogEntry, Status
from include.provisioning.runtime import build_engine
from tests.e2e.conftest import org_users
from tests.sandbox_process import SandboxProcess

ADELE, MEGAN, ZOE = (
    "00000000-0000-0000-0000-000000000001",
    "00000000-0000-0000-0000-000000000003",
    "00000000-0000-0000-0000-000000000004",
)
UPNS = {ADELE: "adele.vance@contoso.example", MEGAN: "megan.bowen@contoso.example", ZOE: "zoe.muller@contoso.example"}
REMOVED_ROLE = "00000000-0000-0000-0000-0000000000ff"
TENANT_READS = ("/users/delta", "/appRoleAssignedTo", "/transitiveMembers")
"""Graph routes that read the whole tenant (with ``GET /v1.0/users``, the listing)."""

Change = Callable[[SandboxProcess], None]


def _row(entry: LogEntry) -> tuple[Any, ...]:
    """A log row without what differs between two runs (cycle id, time)."""
    changes = {name: (change.old, change.new) for name, change in entry.changes.items()}
    return entry.action, entry.status, entry.user_principal_name, changes, entry.error_code, entry.error_message


def _record(sandbox: SandboxProcess, upn: str) -> dict[str, Any] | None:
    user = org_users(sandbox).get(upn)
    return (
        None if user is None else {k: v for k, v in user.items() if k not in ("Id", "CreatedDate")}
    )  # ids follow creation order


def _run(
    sandbox: SandboxProcess, state: Path, user_id: str, change: Change | None, *, on_demand: bool, baseline: bool
) -> tuple[list[tuple[Any, ...]], dict[str, Any] | None, dict[str, Any]]:
    """From the example fixtures: an optional first cycle, ``change``, then a cycle or provision on
    demand. Returns the user's log rows of that last run, their Salesforce record and the Graph
    requests of the last run."""
    sandbox.reset()
    engine: Engine = build_engine(sandbox.settings, state_url=f"sqlite:///{state}")
    try:
        if baseline:
            run_cycle(engine)
        if change is not None:
            change(sandbox)
        sandbox.graph.delete("/_sandbox/requests").raise_for_status()
        if on_demand:
            outcome = api.provision_user(engine, UPNS[user_id])
            assert outcome.result is not None, outcome.steps
            log = outcome.result.log
        else:
            log = run_cycle(engine).log
        if on_demand:
            org_size = len(org_users(sandbox))
            assert _users_queried_last(engine) < min(2, org_size), "Salesforce was asked about that user only"
        rows = [_row(entry) for entry in log if entry.entra_id == user_id]
        assert rows == [_row(e) for e in engine.state.log_entries(entra_id=user_id)[-len(rows) :]], "stored as returned"
        return rows, _record(sandbox, UPNS[user_id]), sandbox.requests("graph")
    finally:
        engine.state.close()


def _users_queried_last(engine: Engine) -> int:
    """Rows of the last Bulk query job on User (Salesforce's ``Get Job Info``)."""
    sf = engine.salesforce_session().sf
    jobs = [job for job in sf.restful("jobs/query")["records"] if job.get("object") == "User"]
    return int(sf.restful(f"jobs/query/{jobs[-1]['id']}")["numberRecordsProcessed"])


def _same_as_a_cycle(
    sandbox: SandboxProcess, tmp_path: Path, user_id: str, change: Change | None = None, *, baseline: bool = True
) -> list[tuple[Any, ...]]:
    cycle_rows, cycle_record, _ = _run(
        sandbox, tmp_path / "cycle.db", user_id, change, on_demand=False, baseline=baseline
    )
    rows, record, graph = _run(sandbox, tmp_path / "on-demand.db", user_id, change, on_demand=True, baseline=baseline)
    assert rows == cycle_rows
    assert record == cycle_record
    _assert_no_tenant_read(graph)
    return rows


def _assert_no_tenant_read(graph: dict[str, Any], runs: int = 1) -> None:
    routes = [*graph["by_route"], *graph["batched_by_route"]]
    assert routes, "the counts were read after the run"
    assert "GET /v1.0/users" not in routes
    assert [route for route in routes if route.endswith(TENANT_READS)] == []
    assert graph["batched_by_route"].get("GET /v1.0/users/{user_id}") == runs  # the one user, once a run


def _patch(user_id: str, **fields: Any) -> Change:
    return lambda sandbox: sandbox.graph.patch(f"/_sandbox/users/{user_id}", json=fields).raise_for_status()


def test_a_new_user_is_created_as_a_cycle_creates_them(sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, baseline=False)
    assert [(action, status) for action, status, *_ in rows] == [(Action.CREATE, Status.SUCCESS)]


def test_a_user_assigned_through_a_nested_group_gets_the_groups_role(sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, ZOE, baseline=False)
    assert [(action, status) for action, status, *_ in rows] == [(Action.CREATE, Status.SUCCESS)]
    assert rows[0][3]["IsActive"] == (None, True)


def test_a_changed_user_is_updated_as_a_cycle_updates_them(sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, _patch(ADELE, surname="Vance-Smith", givenName="Adèle"))
    assert [(action, status) for action, status, *_ in rows] == [(Action.UPDATE, Status.SUCCESS)]
    assert rows[0][3] == {"FirstName": ("Adele", "Adèle"), "LastName": ("Vance", "Vance-Smith")}


def test_an_unassigned_user_is_deactivated_as_a_cycle_deactivates_them(sandbox: SandboxProcess, tmp_path: Path) -> None:
    def unassign(sandbox: SandboxProcess) -> None:
        sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()

    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, unassign)
    assert [(action, status) for action, status, *_ in rows] == [(Action.DISABLE, Status.SUCCESS)]
    assert rows[0][3] == {"IsActive": (True, False)}


def test_a_user_who_left_a_group_is_deactivated_too(sandbox: SandboxProcess, tmp_path: Path) -> None:
    def leave(sandbox: SandboxProcess) -> None:
        sandbox.graph.delete(f"/_sandbox/groups/00000000-0000-0000-0000-0000000000ca/members/{ZOE}").raise_for_status()

    rows = _same_as_a_cycle(sandbox, tmp_path, ZOE, leave)
    assert [(action, status) for action, status, *_ in rows] == [(Action.DISABLE, Status.SUCCESS)]


def test_a_bad_user_is_quarantined_with_the_cycles_reason(sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, _patch(ADELE, mail="not-an-address"))
    assert [(action, status) for action, status, *_ in rows] == [(Action.QUARANTINE, Status.SKIPPED)]
    assert "mail" in rows[0][5]


def test_an_unknown_user_is_a_configuration_error_naming_them(sandbox: SandboxProcess, tmp_path: Path) -> None:
    engine = build_engine(sandbox.settings, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with pytest.raises(UnknownUserError, match=r"nobody@nowhere\.example") as raised:
            run_cycle(engine, focus_upn="nobody@nowhere.example")
        assert isinstance(raised.value, ConfigurationError)
        outcome = api.provision_user(engine, "nobody@nowhere.example")
        assert outcome.unknown_user and not outcome.ok
        assert [s.name for s in outcome.steps if s.status == "failed"] == ["import"]
    finally:
        engine.state.close()
    _assert_no_tenant_read(sandbox.requests("graph"), runs=2)


def test_a_user_whose_role_was_removed_is_quarantined_with_the_cycles_reason(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    def remove_role(sandbox: SandboxProcess) -> None:
        tenant = copy.deepcopy(sandbox.tenant)  # asg-1 now grants a role the app no longer defines
        next(a for a in tenant["appRoleAssignments"] if a["id"] == "asg-1")["appRoleId"] = REMOVED_ROLE
        sandbox.graph.put("/_sandbox/state", content=orjson.dumps(tenant)).raise_for_status()

    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, remove_role)
    assert [(action, status) for action, status, *_ in rows] == [(Action.QUARANTINE, Status.SKIPPED)]
    assert f"app role assignment asg-1 (direct) grants app role {REMOVED_ROLE}" in rows[0][5]


def test_a_user_can_be_named_by_object_id_as_graph_allows(sandbox: SandboxProcess, tmp_path: Path) -> None:
    engine = build_engine(sandbox.settings, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    try:
        outcome = api.provision_user(engine, ADELE)
        assert outcome.ok and outcome.result is not None
        assert [(e.entra_id, e.action, e.status) for e in outcome.result.log] == [
            (ADELE, Action.CREATE, Status.SUCCESS)
        ]
    finally:
        engine.state.close()
    assert UPNS[ADELE] in org_users(sandbox)


def test_a_create_clashing_on_a_unique_field_is_held_as_a_cycle_holds_it(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    def clash(sandbox: SandboxProcess) -> None:
        org = copy.deepcopy(sandbox.org)  # an unmanaged Salesforce user already has Adele's SSO identity
        org["users"][0]["FederationIdentifier"] = UPNS[ADELE]
        sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org)).raise_for_status()

    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, clash, baseline=False)
    assert [(action, status) for action, status, *_ in rows] == [(Action.QUARANTINE, Status.SKIPPED)]
    assert "FederationIdentifier" in rows[0][5]


def test_an_existing_salesforce_user_is_matched_as_a_cycle_matches_them(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, MEGAN, baseline=False)  # in the org already, by Username
    assert [(action, status) for action, status, *_ in rows] == [(Action.UPDATE, Status.SUCCESS)]


def test_a_disabled_user_is_deactivated_as_a_cycle_deactivates_them(sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = _same_as_a_cycle(sandbox, tmp_path, ADELE, _patch(ADELE, accountEnabled=False))
    assert [(action, status) for action, status, *_ in rows] == [(Action.DISABLE, Status.SUCCESS)]


def test_a_dry_run_names_the_action_it_would_take(sandbox: SandboxProcess, tmp_path: Path) -> None:
    """The action step of a dry run says what would be sent, and for an up-to-date user that
    nothing would be (its plan's label is "none": the step once read "would none")."""
    sandbox.reset()
    engine = build_engine(sandbox.settings, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    try:
        before = api.provision_user(engine, UPNS[ADELE], dry_run=True)
        run_cycle(engine)
        after = api.provision_user(engine, UPNS[ADELE], dry_run=True)
    finally:
        engine.state.close()
    [(_, _, first)] = [(s.name, s.status, s.detail) for s in before.steps if s.name == "action"]
    [(_, status, second)] = [(s.name, s.status, s.detail) for s in after.steps if s.name == "action"]
    assert first.startswith("would create: ") and first.endswith("(dry run)")
    assert (status, second) == ("skipped", "no action: no field changes (dry run)")
