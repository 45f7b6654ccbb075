"""A full cycle rebuilds the memory incremental cycles rely on (issue 8, case 5).

The org and the tenant are reset to the fixtures they were provisioned from (a sandbox refresh, a
restored backup) while the state store is kept. The full cycle that follows must leave the store
as a fresh one would be after it: links only to Salesforce users the org has, roles and "seen"
users as observed, escrow only for users it looked at; so the next incremental cycle acts on what
changes next, and nothing else in Salesforce changes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from include.provisioning.cycle import CycleResult, run_cycle
from include.provisioning.engine import Engine
from include.provisioning.model import Action, CycleStatus, Mode, Status
from include.provisioning.runtime import build_engine
from include.provisioning.state import StateStore
from tests.e2e.conftest import org_changes, org_users
from tests.e2e.test_sync_example import ADELE, ADMIN, ADMIN_ROLE, ALEX, FRANCE, NORA, SALES_EMEA, STANDARD, ZOE
from tests.sandbox_process import FIXTURES, REPO_ROOT, SandboxProcess

NORA_UPN, ADELE_UPN, ZOE_UPN = (
    "not.assigned@contoso.example",
    "adele.vance@contoso.example",
    "zoe.muller@contoso.example",
)
Cycle = Callable[..., CycleResult]


def _succeeded(result: CycleResult, mode: Mode) -> CycleResult:
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    assert result.summary.mode is mode
    return result


@pytest.fixture
def restarted(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A second sandbox process from the same fixtures: the org and tenant as first loaded."""
    workdir = tmp_path / "restarted-sandbox"
    workdir.mkdir()
    process = SandboxProcess(FIXTURES / "example-tenant.json", FIXTURES / "example-org.json", workdir)
    try:
        yield process
    finally:
        process.stop()


def _engine(sandbox: SandboxProcess, tmp_path: Path) -> Engine:
    return build_engine(sandbox.settings, state_url=f"sqlite:///{tmp_path / 'state.db'}")


def test_after_a_restarted_sandbox_a_full_cycle_lets_incremental_cycles_create_group_joiners(
    sandbox: SandboxProcess, restarted: SandboxProcess, tmp_path: Path
) -> None:
    first = _engine(sandbox, tmp_path)
    _succeeded(run_cycle(first), Mode.FULL)
    sandbox.graph.post(f"/_sandbox/groups/{FRANCE}/members", json={"id": NORA}).raise_for_status()
    assert _succeeded(run_cycle(first), Mode.INCREMENTAL).summary.created == 1  # Nora, linked in the store
    first.state.close()

    engine = _engine(restarted, tmp_path)  # same state store, the sandbox restarted from the fixtures
    full = _succeeded(run_cycle(engine, Mode.FULL), Mode.FULL)
    assert full.summary.created == 3  # Adele, Zoë and No Surname are back; Nora is not assigned any more
    restored = org_users(restarted)
    assert NORA_UPN not in restored
    snapshot = engine.state.snapshot()
    assert NORA not in set(snapshot["entra_id"])  # her Salesforce user is gone: no link is remembered
    assert set(snapshot["sf_id"]) <= {user["Id"] for user in restored.values()}

    restarted.graph.post(f"/_sandbox/groups/{SALES_EMEA}/members", json={"id": NORA}).raise_for_status()
    incremental = _succeeded(run_cycle(engine), Mode.INCREMENTAL)
    assert [(e.entra_id, e.action, e.status) for e in incremental.log] == [(NORA, Action.CREATE, Status.SUCCESS)]
    changes = org_changes(restored, org_users(restarted))
    assert set(changes) == {NORA_UPN}, changes
    assert changes[NORA_UPN]["Username"] == (None, NORA_UPN)
    engine.state.close()


def _restore_org(sandbox: SandboxProcess) -> None:
    """The org back to its fixture (a sandbox refresh); the tenant is left as it is."""
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(sandbox.org)).raise_for_status()


def test_a_held_user_whose_salesforce_user_is_gone_loses_the_link_and_is_created_once_fixed(
    sandbox: SandboxProcess, engine: Engine, cycle: Cycle
) -> None:
    _succeeded(cycle(), Mode.FULL)
    two_roles = {"id": "asg-9", "principalId": ADELE, "principalType": "User", "appRoleId": ADMIN_ROLE}
    sandbox.graph.post("/_sandbox/appRoleAssignments", json=two_roles).raise_for_status()
    _restore_org(sandbox)
    full = _succeeded(cycle(Mode.FULL), Mode.FULL)
    assert [q.entra_id for q in full.quarantined] == [ADELE]  # two different roles: held, not written
    restored = org_users(sandbox)
    # The org hands out Ids again from the start: Adele's old Id may now be another user's.
    snapshot = engine.state.snapshot()
    assert ADELE not in set(snapshot["entra_id"])
    assert dict(zip(snapshot["entra_id"], snapshot["sf_id"], strict=True))[ZOE] == restored[ZOE_UPN]["Id"]
    assert set(snapshot["sf_id"]) <= {user["Id"] for user in restored.values()}

    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-9").raise_for_status()
    fixed = _succeeded(cycle(), Mode.INCREMENTAL)
    assert [(e.entra_id, e.action, e.status) for e in fixed.log] == [(ADELE, Action.CREATE, Status.SUCCESS)]
    changes = org_changes(restored, org_users(sandbox))
    assert set(changes) == {ADELE_UPN}, changes


def _edit_in_salesforce(sandbox: SandboxProcess, username: str, **values: object) -> None:
    """An administrator's edit in the org, outside the product."""
    state = sandbox.salesforce.get("/_sandbox/state").json()
    for user in state["users"]:
        if user["Username"].lower() == username:
            user.update(values)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(state)).raise_for_status()


def test_a_held_user_keeps_a_link_the_org_confirms_with_the_orgs_values_and_the_roles_just_read(
    sandbox: SandboxProcess, engine: Engine, cycle: Cycle
) -> None:
    _succeeded(cycle(), Mode.FULL)
    adele_id = org_users(sandbox)[ADELE_UPN]["Id"]
    _edit_in_salesforce(sandbox, ADELE_UPN, Title="Edited in Salesforce")
    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()
    admin = {"id": "asg-1c", "principalId": ADELE, "principalType": "User", "appRoleId": ADMIN_ROLE}
    sandbox.graph.post("/_sandbox/appRoleAssignments", json=admin).raise_for_status()
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"mail": "bad"}).raise_for_status()
    before = org_users(sandbox)
    full = _succeeded(cycle(Mode.FULL), Mode.FULL)
    assert [q.entra_id for q in full.quarantined] == [ADELE]  # validation: not e-mail-shaped
    snapshot = engine.state.snapshot().set_index("entra_id")
    assert snapshot.loc[ADELE, "sf_id"] == adele_id
    assert list(snapshot.loc[ADELE, "roles"]) == ["System Administrator"]
    assert snapshot.loc[ADELE, "fields"]["Title"] == "Edited in Salesforce"  # what the org holds now
    assert org_changes(before, org_users(sandbox)) == {}

    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"mail": ADELE_UPN}).raise_for_status()
    fixed = _succeeded(cycle(), Mode.INCREMENTAL)
    assert [(e.entra_id, e.action) for e in fixed.log] == [(ADELE, Action.UPDATE)]
    changes = org_changes(before, org_users(sandbox))
    assert set(changes) == {ADELE_UPN}, changes
    assert changes[ADELE_UPN]["ProfileId"] == (STANDARD, ADMIN)
    assert changes[ADELE_UPN]["Title"] == ("Edited in Salesforce", "Account Executive")  # Entra ID's value again


def test_a_full_cycle_drops_the_escrow_of_a_user_it_no_longer_sees(
    sandbox: SandboxProcess, engine: Engine, cycle: Cycle
) -> None:
    _succeeded(cycle(), Mode.FULL)
    assert ALEX in {e.entra_id for e in engine.state.escrow_entries()}  # Username taken in another org
    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-2").raise_for_status()  # Alex is unassigned
    before = org_users(sandbox)
    full = _succeeded(cycle(Mode.FULL), Mode.FULL)
    assert full.users is not None and ALEX not in set(full.users["id"])
    assert engine.state.escrow_entries() == []
    assert full.backlog is not None and full.backlog.waiting == 0
    assert org_changes(before, org_users(sandbox)) == {}


def _cli(sandbox: SandboxProcess, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "include.provisioning", *args, "--env-file", str(sandbox.env_file)]
    return subprocess.run(
        [*command, "--state-url", f"sqlite:///{state}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_restart_provisioning_clears_the_state_and_runs_a_full_cycle(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    state = tmp_path / "cli.db"
    assert _cli(sandbox, state, "sync").returncode == 0
    with StateStore(f"sqlite:///{state}") as store:
        first_link = store.watermark()
        (escrowed,) = store.escrow_entries()
    assert first_link is not None and escrowed.entra_id == ALEX

    unconfirmed = _cli(sandbox, state, "restart-provisioning")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    with StateStore(f"sqlite:///{state}") as store:
        assert store.watermark() == first_link and store.escrow_entries() == [escrowed]  # nothing changed

    before = org_users(sandbox)
    summary = tmp_path / "summary.json"
    done = _cli(sandbox, state, "restart-provisioning", "--yes", "--summary-json", str(summary))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Restart provisioning: delta link and escrow cleared; the next cycle is full" in done.stdout
    assert orjson.loads(summary.read_bytes())["mode"] == "full"
    with StateStore(f"sqlite:///{state}") as store:
        cycles = store.cycles()
        assert [c.mode for c in cycles[:2]] == [Mode.FULL, Mode.FULL] and len(cycles) == 2
        assert store.watermark() is not None and store.watermark() != first_link
        (retried,) = store.escrow_entries()  # escrow forgotten, then Alex tried again by the full cycle
        assert retried.entra_id == ALEX and retried.attempts == 1 and retried.first_failed_at > escrowed.first_failed_at
    assert org_changes(before, org_users(sandbox)) == {}  # the org already held what Entra ID says

    help_text = _cli(sandbox, state, "restart-provisioning", "--help")
    assert help_text.returncode == 0 and "--yes" in help_text.stdout and "Restart provisioning" in help_text.stdout
