"""What a load task does before its first Bulk job: the rows of a group (``stages.bulk_rows``),
the writes left to send (``stages._unsent``) and the resume of a fresh load (``_resume_jobs``).
The sandbox waits for that first job, so none of it makes a pass it does not need."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from include.provisioning import stages
from include.provisioning.model import Action, FieldChange, Plan, PlannedChange
from include.provisioning.state import StateStore
from include.provisioning.state.codec import JsonChanges, changes_json

CYCLE = "cycle-1"


def _change(entra_id: str, changes: dict[str, FieldChange], action: Action = Action.UPDATE) -> PlannedChange:
    return PlannedChange(entra_id, f"{entra_id}@contoso.example", action, f"005{entra_id}", changes)


def _stored(change: PlannedChange) -> PlannedChange:
    """``change`` as the load reads it: its changes kept as the plan file's JSON text."""
    text = changes_json(change.changes, what=change.entra_id)
    return PlannedChange(change.entra_id, change.user_principal_name, change.action, change.sf_id, JsonChanges(text))


@pytest.mark.parametrize("stored", [False, True], ids=["decoded", "json-text"])
def test_a_bulk_row_is_the_new_values_with_entra_id_and_id_added_where_the_changes_do_not_name_them(
    stored: bool,
) -> None:
    """``bulk_rows`` completes ``new_values``' own dict in place; a changed field named ``Id`` keeps
    its new value, as the merge with the new values last did."""
    plain = _change("e1", {"Title": FieldChange("A", "B"), "Email": FieldChange(None, None)})
    named = _change("e2", {"Id": FieldChange(None, "005OTHER"), "Title": FieldChange(None, "C")})
    changes = [_stored(c) for c in (plain, named)] if stored else [plain, named]
    assert stages.bulk_rows(changes, keyed=True) == [
        {"_entra_id": "e1", "Id": "005e1", "Title": "B", "Email": None},
        {"_entra_id": "e2", "Id": "005OTHER", "Title": "C"},
    ]
    assert stages.bulk_rows(changes, keyed=False) == [
        {"_entra_id": "e1", "Title": "B", "Email": None},
        {"_entra_id": "e2", "Id": "005OTHER", "Title": "C"},
    ]
    # Each call decodes anew: a row handed to the loader (which empties the request) is its own.
    first, again = stages.bulk_rows(changes[:1], keyed=False), stages.bulk_rows(changes[:1], keyed=False)
    assert first == again and first[0] is not again[0]


def test_a_fresh_load_sends_the_plan_itself_and_a_resumed_one_what_is_left() -> None:
    plan = Plan(
        creates=[_change("c1", {}, Action.CREATE), _change("c2", {}, Action.CREATE)],
        updates=[_change("u1", {})],
        reactivations=[_change("r1", {}, Action.REACTIVATE)],
    )
    assert stages._unsent(plan, {}) is plan
    left = stages._unsent(plan, {"c1": object(), "r1": object()})
    assert [c.entra_id for c in left.writes()] == ["c2", "u1"]


class _NoPassPlan(Plan):
    """A plan whose writes must not be listed (a fresh load's resume has no job to ask about)."""

    def writes(self) -> list[PlannedChange]:
        raise AssertionError("the writes were listed")


def _engine(tmp_path: Path) -> Any:
    return SimpleNamespace(state=StateStore(f"sqlite:///{tmp_path / 'state.db'}"), progress=lambda message: None)


def test_a_fresh_loads_resume_makes_no_pass_over_its_writes(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    plan = _NoPassPlan(creates=[_change("c1", {}, Action.CREATE)])
    assert stages._resume_jobs(engine, None, CYCLE, plan) == {}  # type: ignore[arg-type]


def test_another_shards_recorded_job_is_skipped_by_the_writes_look_up(tmp_path: Path) -> None:
    """A recorded job is kept only when one of its rows is this plan's (the ids gathered once,
    on the first look-up): another shard's job is not this load's to settle."""
    engine = _engine(tmp_path)
    engine.state.record_job(CYCLE, "750A", "insert", "Username", {"x@contoso.example": "other-shard"})
    plan = Plan(creates=[_change("c1", {}, Action.CREATE)])
    assert stages._resume_jobs(engine, None, CYCLE, plan) == {}  # type: ignore[arg-type]
    ids = stages._WriteActions(plan)
    assert "c1" in ids and "other-shard" not in ids
