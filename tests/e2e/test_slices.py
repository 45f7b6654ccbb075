"""An initial sync slice by slice (the backfill DAG's runs), against the sandbox through the real
clients: slices by assignment date add up to one full cycle, each user is written once, a slice
re-run changes nothing, and a slice neither deactivates anyone outside it nor saves a delta link."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.provisioning.cycle import run_cycle
from include.provisioning.model import Mode
from include.provisioning.slices import AssignmentWindow
from tests.e2e.generated import engine_for, generated_sandbox, org_users
from tests.sandbox_process import SandboxProcess

USERS = 1200
YEARS = range(2019, 2028)
"""Yearly slices; the generator assigns from 2018 on, so the first slice also takes the older ones."""


def _utc(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def _windows() -> list[AssignmentWindow]:
    return [AssignmentWindow(_utc(year), _utc(year + 1)) for year in YEARS]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SandboxProcess]]:
    with generated_sandbox(tmp_path_factory, "slices", USERS, seed=11) as tenant:
        yield tenant


@pytest.fixture(scope="module")
def tenant_dir(generated: tuple[Path, SandboxProcess]) -> Path:
    return generated[0]


@pytest.fixture(scope="module")
def sandbox(generated: tuple[Path, SandboxProcess]) -> SandboxProcess:
    return generated[1]


_engine = engine_for
_org = org_users


def _writes(result: Any) -> int:
    s = result.summary
    return s.created + s.updated + s.deactivated


def test_slices_add_up_to_one_full_cycle(sandbox: SandboxProcess, tmp_path: Path) -> None:
    sandbox.reset()
    full = run_cycle(_engine(sandbox, tmp_path / "full.db"), Mode.FULL)
    expected_org = _org(sandbox)

    sandbox.reset()
    state = tmp_path / "slices.db"
    results = [run_cycle(_engine(sandbox, state), window=window) for window in _windows()]

    assert _org(sandbox) == expected_org
    created = [r.summary.created for r in results]
    assert sum(created) == full.summary.created > 0
    assert sum(1 for n in created if n) >= 5, f"the tenant's assignments span several years: {created}"
    for name in ("deactivated", "quarantined", "held_back"):
        assert sum(getattr(r.summary, name) for r in results) == getattr(full.summary, name), name
    # Each user was evaluated by exactly one slice.
    ids = [uid for r in results for uid in r.users["id"]]
    assert len(ids) == len(set(ids))
    engine = _engine(sandbox, state)
    assert engine.state.watermark() is None or not engine.state.watermark().delta_link
    assert all(r.summary.mode is Mode.FULL for r in results)
    assert any("slice: users assigned from" in note for note in results[0].notes)

    # Re-running an interval changes nothing.
    again = run_cycle(_engine(sandbox, state), window=_windows()[3])
    assert _writes(again) == 0 and again.summary.unchanged >= _writes(results[3]) > 0
    assert again.summary.in_scope == results[3].summary.in_scope
    assert _org(sandbox) == expected_org

    # After the backfill, the 20-minute DAG's first cycle is full and finds everything in place.
    after = run_cycle(_engine(sandbox, state))
    assert after.summary.mode is Mode.FULL and _writes(after) == 0


def test_a_slice_never_deactivates_users_outside_it(sandbox: SandboxProcess, tenant_dir: Path, tmp_path: Path) -> None:
    sandbox.reset()
    state = tmp_path / "state.db"
    first, second = _windows()[1], _windows()[2]
    one = run_cycle(_engine(sandbox, state), window=first)
    assert one.summary.created > 0
    # Unassign a user the first slice created (assigned directly, in no group), then run the next slice.
    tenant = json.loads((tenant_dir / "tenant.json").read_text())
    in_groups = {member for group in tenant["groups"] for member in group["members"]}
    entra_id = next(
        e.entra_id
        for e in one.log
        if e.action == "Create"
        and e.entra_id not in in_groups
        and any(a["principalId"] == e.entra_id for a in tenant["appRoleAssignments"])
    )
    for assignment in tenant["appRoleAssignments"]:
        if assignment["principalId"] == entra_id:
            sandbox.graph.delete(f"/_sandbox/appRoleAssignments/{assignment['id']}").raise_for_status()

    two = run_cycle(_engine(sandbox, state), window=second)
    assert two.summary.deactivated == 0
    assert entra_id not in set(two.users["id"])
    # The next regular (full: no delta link was saved) cycle deactivates the unassigned user.
    regular = run_cycle(_engine(sandbox, state))
    assert regular.summary.mode is Mode.FULL
    # (It also deactivates disabled users of later slices that match existing Salesforce users.)
    disabled = {e.entra_id for e in regular.log if str(e.action) == "Disable"}
    reasons = dict(zip(regular.users["id"], regular.users["scopeReason"], strict=True))
    assert entra_id in disabled and reasons[entra_id] == "unassigned"
    assert {reasons[uid] for uid in disabled - {entra_id}} <= {"disabled"}
