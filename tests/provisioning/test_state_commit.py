"""The commit's rules, worked out without a database (state/commit.py), and the escrow schedule."""

from __future__ import annotations

import datetime as dt

import pytest

from include.provisioning.model import (
    Action,
    EscrowEntry,
    FieldChange,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
    Status,
)
from include.provisioning.settings import SyncOptions
from include.provisioning.state.codec import StateError, dumps, loads, to_bool
from include.provisioning.state.commit import PriorSnapshot, SnapshotRow, build_commit
from include.provisioning.state.escrow import check_schedule, next_attempt_at

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def prior(fields: dict[str, object], *, active: bool = True, roles: list[str] | None = None) -> PriorSnapshot:
    row = SnapshotRow(
        "entra-a",
        "005A",
        "a@contoso.com",
        active,
        dumps(fields, what="test"),
        dumps(roles or ["Standard User"], what="test"),
    )
    return PriorSnapshot.of(row, keep_json=True)


def planned(action: Action, *, desired: dict[str, object] | None = None, **changes: FieldChange) -> PlannedChange:
    return PlannedChange(
        "entra-a",
        "a@contoso.com",
        action,
        "005A",
        dict(changes),
        match_value="a@contoso.com",
        desired=desired or {},
        roles=["Standard User"],
    )


def build(plan: Plan, results: list[RecordResult], **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "quarantined": [],
        "now": NOW,
        "schedule_hours": (6, 12),
        "prior_snapshot": {},
        "prior_escrow": {},
    }
    options.update(kwargs)
    return build_commit("cycle-1", plan=plan, results=results, **options)  # type: ignore[arg-type]


def test_an_update_without_desired_values_applies_its_changes_to_the_previous_fields() -> None:
    change = planned(Action.UPDATE, Title=FieldChange("Dev", None), Phone=FieldChange(None, "123"))
    rows = build(
        Plan(updates=[change]),
        [RecordResult("entra-a", Action.UPDATE, "005A", True)],
        prior_snapshot={"entra-a": prior({"Title": "Dev", "LastName": "A"}, active=False)},
    )
    [row] = rows.snapshot
    assert loads(row.fields) == {"Title": None, "LastName": "A", "Phone": "123"}  # the typed null cleared it
    assert row.is_active is False  # an update does not reactivate


def test_is_active_follows_the_action_then_the_desired_value() -> None:
    cases = [
        (Action.DISABLE, {"IsActive": True}, True, False),
        (Action.REACTIVATE, {"IsActive": False}, False, True),
        (Action.CREATE, {"IsActive": "false"}, None, False),
        (Action.CREATE, {}, None, True),
        (Action.UPDATE, {"IsActive": "true"}, False, True),
        (Action.UPDATE, {"LastName": "B"}, False, False),
    ]
    for action, desired, was_active, expected in cases:
        change = planned(action, desired=desired)
        plan = Plan(creates=[change]) if action is Action.CREATE else Plan(updates=[change])
        priors = {} if was_active is None else {"entra-a": prior({}, active=was_active)}
        rows = build(plan, [RecordResult("entra-a", action, "005A", True)], prior_snapshot=priors)
        assert rows.snapshot[0].is_active is expected, (action, desired, was_active)


def test_a_failure_after_the_last_wait_is_logged_as_final_and_leaves_escrow() -> None:
    change = planned(Action.UPDATE, LastName=FieldChange("A", "B"))
    escrowed = EscrowEntry("entra-a", Action.UPDATE, 2, NOW - dt.timedelta(hours=18), NOW, "X", "old")
    rows = build(
        Plan(updates=[change]),
        [RecordResult("entra-a", Action.UPDATE, None, False, "FIELD_INTEGRITY_EXCEPTION", "bad value")],
        prior_escrow={"entra-a": escrowed},
    )
    assert rows.escrow_upserts == []
    assert rows.escrow_deletes == ["entra-a"]
    [log] = rows.log
    assert (log.status, log.error_code) == (Status.FAILURE, "FIELD_INTEGRITY_EXCEPTION")
    assert log.error_message == (
        "bad value [escrow: giving up after 3 failed attempts since 2026-11-25 18:00 UTC; "
        "the record is no longer retried automatically]"
    )
    assert log.changes == {"LastName": FieldChange("A", "B")}


def test_a_failure_without_code_or_message_still_says_so() -> None:
    change = planned(Action.CREATE)
    rows = build(Plan(creates=[change]), [RecordResult("entra-a", Action.CREATE, None, False)])
    [log] = rows.log
    assert (log.error_code, log.error_message) == ("UNKNOWN_ERROR", "Salesforce rejected the record without a message")
    [entry] = rows.escrow_upserts
    assert (entry.attempts, entry.next_attempt_at) == (1, NOW + dt.timedelta(hours=6))


def test_held_back_and_quarantined_users_get_skipped_rows_and_keep_their_state() -> None:
    held = planned(Action.DISABLE, IsActive=FieldChange(True, False))
    escrowed = EscrowEntry("entra-a", Action.DISABLE, 1, NOW, NOW, "X", "y")
    rows = build(
        Plan(held_back=[held]),
        [],
        quarantined=[QuarantinedUser("entra-q", None, [])],
        prior_escrow={"entra-a": escrowed},
    )
    assert [(e.action, e.status, e.error_message) for e in rows.log] == [
        (Action.STAGED_DELETE, Status.SKIPPED, "held back by the accidental-deletion threshold"),
        (Action.QUARANTINE, Status.SKIPPED, "quarantined (no reason given)"),
    ]
    assert rows.snapshot == []
    assert rows.escrow_deletes == []
    assert rows.escrow_upserts == []
    assert [q.entra_id for q in rows.quarantine] == ["entra-q"]


def test_an_unchanged_user_equal_to_its_snapshot_is_not_rewritten() -> None:
    desired = {"LastName": "A", "IsActive": True}
    same = planned(Action.OTHER, desired=desired)
    row = SnapshotRow("entra-a", "005A", "a@contoso.com", True, dumps(desired, what="t"), '["Standard User"]')
    stored = PriorSnapshot.of(row, keep_json=False)
    assert build(Plan(unchanged=[same]), [], prior_snapshot={"entra-a": stored}).snapshot == []
    moved = planned(Action.OTHER, desired=desired)
    moved.roles = ["Custom: Sales"]
    [row] = build(Plan(unchanged=[moved]), [], prior_snapshot={"entra-a": stored}).snapshot
    assert row.roles == '["Custom: Sales"]'


def test_an_unchanged_out_of_scope_user_with_an_inactive_match_is_recorded_inactive() -> None:
    change = PlannedChange("entra-z", "z@contoso.com", Action.OTHER, "005Z", {}, match_value="z@contoso.com")
    [row] = build(Plan(unchanged=[change]), []).snapshot
    assert (row.sf_id, row.is_active, row.fields) == ("005Z", False, "{}")


def test_a_result_for_a_user_twice_is_refused() -> None:
    change = planned(Action.CREATE)
    result = RecordResult("entra-a", Action.CREATE, "005A", True)
    with pytest.raises(StateError, match="two Salesforce results for user entra-a"):
        build(Plan(creates=[change]), [result, result])


def test_to_bool_reads_salesforce_booleans() -> None:
    assert [to_bool(v, default=True) for v in (True, "true", "TRUE", "1", 1)] == [True] * 5
    assert [to_bool(v, default=True) for v in (False, "false", "0", 0)] == [False] * 4
    unknown = (None, "#N/A", "", "maybe", float("nan"))
    assert [to_bool(v, default=True) for v in unknown] == [True] * 5
    assert [to_bool(v, default=False) for v in unknown] == [False] * 5


# -- the schedule ----------------------------------------------------------------------------


def test_the_default_schedule_is_entras_six_twelve_twenty_four_hours_then_daily_for_28_days() -> None:
    schedule = SyncOptions().escrow_schedule_hours
    first = NOW
    at, waits = first, []
    attempts = 0
    while True:
        attempts += 1
        retry = next_attempt_at(attempts, at, schedule)
        if retry is None:
            break
        waits.append((retry - at) / dt.timedelta(hours=1))
        at = retry
    assert waits[:4] == [6, 12, 24, 24]
    assert set(waits[3:]) == {24}
    assert dt.timedelta(days=28) <= at - first < dt.timedelta(days=29)


def test_unprocessed_records_are_due_now_and_bad_schedules_are_refused() -> None:
    assert next_attempt_at(0, NOW, (6,)) == NOW
    assert next_attempt_at(1, NOW, ()) is None
    assert check_schedule([1, 2.5]) == (1, 2.5)
    with pytest.raises(ValueError, match="wait #2 is -1"):
        check_schedule([1, -1])
    with pytest.raises(ValueError, match="wait #1 is '6'"):
        check_schedule(["6"])  # type: ignore[list-item]
