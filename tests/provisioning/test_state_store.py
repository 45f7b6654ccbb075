"""The state store against real databases: every test runs on SQLite and on PostgreSQL.

PostgreSQL: one throwaway database per test run on 127.0.0.1:5432 (user postgres), one schema
per test (selected through the connection's search_path), all dropped at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from include.provisioning import stages
from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    FieldChange,
    JobRecord,
    LogEntry,
    Mode,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
    Status,
)
from include.provisioning.plan_table import PlanTable
from include.provisioning.state import StateError, StateStore, bulk, schema
from include.provisioning.state.commit import NO_RESULT_MESSAGE
from include.provisioning.state.database import index_names

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)
SCHEDULE = (6.0, 12.0, 24.0)
HOUR = dt.timedelta(hours=1)


# -- fixtures --------------------------------------------------------------------------------


# -- helpers ---------------------------------------------------------------------------------


def desired(n: int, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "Username": f"user{n}@contoso.com",
        "LastName": f"Last{n}",
        "Email": f"user{n}@contoso.com",
        "IsActive": True,
        "ProfileId": "00e000000000001AAA",
    }
    values.update(overrides)
    return values


def sf_id(n: int) -> str:
    return f"005{n:015d}"


def create(n: int) -> PlannedChange:
    want = desired(n)
    return PlannedChange(
        f"entra-{n}",
        f"user{n}@contoso.com",
        Action.CREATE,
        None,
        {k: FieldChange(None, v) for k, v in want.items()},
        match_value=f"user{n}@contoso.com",
        desired=want,
        roles=["Standard User"],
        display_name=f"User {n}",
    )


def change(n: int, action: Action, changes: dict[str, FieldChange], **want: object) -> PlannedChange:
    return PlannedChange(
        f"entra-{n}",
        f"user{n}@contoso.com",
        action,
        sf_id(n),
        changes,
        match_value=f"user{n}@contoso.com",
        desired=desired(n, **want),
        roles=["Standard User"],
        display_name=f"User {n}",
    )


def ok(c: PlannedChange, n: int) -> RecordResult:
    return RecordResult(c.entra_id, c.action, sf_id(n), True)


def failed(c: PlannedChange, code: str = "DUPLICATE_USERNAME", message: str = "Duplicate Username") -> RecordResult:
    return RecordResult(c.entra_id, c.action, None, False, code, message)


def run_cycle(
    store: StateStore,
    plan: Plan,
    results: list[RecordResult],
    *,
    quarantined: list[QuarantinedUser] | None = None,
    now: dt.datetime = T0,
    delta_link: str | None = "https://graph/delta?token=1",
    advance: bool = True,
    schedule: tuple[float, ...] = SCHEDULE,
    status: CycleStatus = CycleStatus.SUCCEEDED,
) -> tuple[str, list[LogEntry]]:
    cycle_id = store.start_cycle(Mode.FULL, "fp-1", now=now)
    summary = CycleSummary(
        cycle_id,
        Mode.FULL,
        status,
        now,
        finished_at=now + dt.timedelta(seconds=5),
        created=sum(1 for r in results if r.ok and r.action is Action.CREATE),
        updated=sum(1 for r in results if r.ok and r.action in (Action.UPDATE, Action.REACTIVATE)),
        reactivated=sum(1 for r in results if r.ok and r.action is Action.REACTIVATE),
        phase_seconds={"extract": 1.5, "load": 2.25},
        requests={"graph": 3, "salesforce": 4},
    )
    try:
        log = store.commit_cycle(
            summary,
            plan=plan,
            results=results,
            quarantined=quarantined or [],
            delta_link=delta_link,
            mapping_fingerprint="fp-1",
            now=now,
            escrow_schedule_hours=schedule,
            advance_watermark=advance,
        )
    except Exception as exc:  # as the cycle does: close the cycle, keep the error
        store.fail_cycle(cycle_id, str(exc))
        raise
    return cycle_id, log


def snapshot_by_id(store: StateStore) -> dict[str, dict[str, object]]:
    frame = store.snapshot()
    return {row["entra_id"]: row for row in frame.to_dict("records")}


def state_fingerprint(store: StateStore) -> tuple[object, ...]:
    """Everything a failed commit must leave as it was."""
    frame = store.snapshot()
    return (
        frame.to_json(),
        store.watermark(),
        store.escrow_entries(),
        len(store.log_entries(limit=100_000)),
        store.quarantine_entries(),
        [(c.cycle_id, c.status, c.created) for c in store.cycles()],
    )


# -- opening ---------------------------------------------------------------------------------


def test_fresh_store_is_empty_and_creates_its_sqlite_folder(store: StateStore, url: str) -> None:
    if url.startswith("sqlite"):
        assert Path(url.removeprefix("sqlite:///")).exists()
    frame = store.snapshot()
    assert list(frame.columns) == ["entra_id", "sf_id", "match_value", "is_active", "fields", "roles"]
    assert len(frame) == 0
    assert store.watermark() is None
    assert store.escrow_entries() == []
    assert store.pending_jobs() == []
    assert store.cycles() == []
    assert store.quarantine_entries() == []


def test_reopening_keeps_data_and_a_newer_schema_is_refused(open_store: Callable[..., StateStore], url: str) -> None:
    first = open_store()
    cycle_id, _ = run_cycle(first, Plan(creates=[create(1)]), [ok(create(1), 1)])
    first.close()
    again = open_store()
    assert [c.cycle_id for c in again.cycles()] == [cycle_id]
    again.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE state_schema SET version = 99"))
    engine.dispose()
    with pytest.raises(StateError, match="schema version 99, newer than this code"):
        StateStore(url)


def test_a_version_4_database_gains_the_stage_column_and_the_log_paging_indexes(
    open_store: Callable[..., StateStore], url: str
) -> None:
    cycle_id, engine, current_indexes = _one_cycle_at_an_older_version(open_store, url, _back_to_version_4)
    again = open_store()
    again.enter_stage(cycle_id, "load")
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM state_schema")).scalar()
        stage = conn.execute(text("SELECT stage FROM cycles")).scalar()
        indexes = _log_index_names(conn)
    engine.dispose()
    sqlite = url.startswith("sqlite")
    upn_index = "ix_provisioning_log_upn_lower_action_status" if sqlite else "ix_provisioning_log_upn_lower_c"
    assert (version, stage) == (schema.SCHEMA_VERSION, "load")
    assert upn_index in indexes and indexes == current_indexes  # the old single-column ones are gone
    assert [c.cycle_id for c in again.cycles()] == [cycle_id]


def test_a_version_5_database_gains_the_reactivated_count_and_the_later_log_indexes(
    open_store: Callable[..., StateStore], url: str
) -> None:

    def back_to_version_5(
        conn: Connection,
    ) -> None:  # as first released: no time-window index, SQLite's UPN index alone
        conn.execute(text("DROP INDEX ix_provisioning_log_at_id"))
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP INDEX ix_provisioning_log_upn_lower_action_status"))
            conn.execute(text("CREATE INDEX ix_provisioning_log_upn_lower ON provisioning_log (lower(upn))"))
        conn.execute(text("ALTER TABLE cycles DROP COLUMN reactivated"))
        _undo_versions_after(conn, 5)

    cycle_id, engine, current_indexes = _one_cycle_at_an_older_version(open_store, url, back_to_version_5)
    again = open_store()
    with engine.connect() as conn:
        assert _log_index_names(conn) == current_indexes
    back = change(1, Action.REACTIVATE, {"IsActive": FieldChange(False, True)})
    later, _ = run_cycle(again, Plan(reactivations=[back]), [ok(back, 1)], now=T0 + dt.timedelta(hours=1))
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM state_schema")).scalar()
    engine.dispose()
    counts = {c.cycle_id: (c.updated, c.reactivated) for c in again.cycles()}
    assert (version, counts) == (schema.SCHEMA_VERSION, {cycle_id: (0, 0), later: (1, 1)})


def _one_cycle_at_an_older_version(
    open_store: Callable[..., StateStore],
    url: str,
    downgrade: Callable[[Connection], None],
    quarantined: list[QuarantinedUser] | None = None,
) -> tuple[str, Engine, set[str]]:
    """A store with one committed cycle (creating user 1, quarantining ``quarantined``), then given
    an older version's shape by ``downgrade``: the cycle's id, an engine on the database and the
    log's indexes of the current version."""
    first = open_store()
    cycle_id, _ = run_cycle(first, Plan(creates=[create(1)]), [ok(create(1), 1)], quarantined=quarantined)
    first.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        current_indexes = _log_index_names(conn)
        downgrade(conn)
    return cycle_id, engine, current_indexes


def _back_to_version_4(conn: Connection) -> None:
    """Give a current database version 4's shape: no ``cycles.stage`` nor ``cycles.reactivated``,
    single-column log indexes."""
    for name in _log_index_names(conn):
        conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text("CREATE INDEX ix_provisioning_log_cycle_id ON provisioning_log (cycle_id)"))
    conn.execute(text("CREATE INDEX ix_provisioning_log_entra_id ON provisioning_log (entra_id)"))
    conn.execute(text("ALTER TABLE cycles DROP COLUMN stage"))
    conn.execute(text("ALTER TABLE cycles DROP COLUMN reactivated"))
    _undo_versions_after(conn, 4)


def _drop_failure_kind(conn: Connection) -> None:
    """Take away version 8's ``cycles.failure_kind``."""
    conn.execute(text("ALTER TABLE cycles DROP COLUMN failure_kind"))


def test_a_version_7_database_gains_the_failure_kind_of_a_cycle(
    open_store: Callable[..., StateStore], url: str
) -> None:
    old_cycle, engine, _ = _one_cycle_at_an_older_version(
        open_store, url, functools.partial(_undo_versions_after, version=7)
    )
    again = open_store()
    failed = again.start_cycle(Mode.FULL, "fp", now=T0 + HOUR)
    again.enter_stage(failed, "extract")
    again.record_failure(failed, "configuration", "Entra ID has no user x@contoso.com")
    again.record_failure(old_cycle, "transient", "a committed cycle keeps its story")
    again.fail_cycle(failed, "Airflow run r ended before the cycle was committed (see the failed task)")
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM state_schema")).scalar()
        rows = conn.execute(text("SELECT id, status, failure_kind, reason FROM cycles ORDER BY started_at")).all()
    engine.dispose()
    assert version == schema.SCHEMA_VERSION == 8
    assert [tuple(row) for row in rows] == [
        (old_cycle, "succeeded", None, None),
        (failed, "failed", "configuration", "Entra ID has no user x@contoso.com"),
    ]


def _drop_display_name(conn: Connection) -> None:
    """Take away version 7's ``display_name`` of the log (and its index) and of the quarantine."""
    for name in _log_index_names(conn):
        if "display_name" in name:
            conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text("ALTER TABLE provisioning_log DROP COLUMN display_name"))
    conn.execute(text("ALTER TABLE quarantine DROP COLUMN display_name"))


_ADDED_BY_VERSION: dict[int, Callable[[Connection], None]] = {8: _drop_failure_kind, 7: _drop_display_name}
"""How to take away what each schema version from 7 on added (the older versions' tests undo
their own version's changes themselves)."""


def _undo_versions_after(conn: Connection, version: int) -> None:
    """Take away what every schema version after ``version`` added, newest first, and record
    ``version`` as the database's."""
    for added_in in sorted(_ADDED_BY_VERSION, reverse=True):
        if added_in > version:
            _ADDED_BY_VERSION[added_in](conn)
    conn.execute(text(f"UPDATE state_schema SET version = {version}"))


def test_a_version_6_database_gains_the_display_name_of_the_log_and_the_quarantine(
    open_store: Callable[..., StateStore], url: str
) -> None:

    def back_to_version_6(conn: Connection) -> None:
        _undo_versions_after(conn, 6)
        assert not any("display_name" in name for name in _log_index_names(conn))

    held_out = [QuarantinedUser("entra-q", "q@contoso.com", ["bad"], "Quinn Q")]
    old_cycle, engine, current_indexes = _one_cycle_at_an_older_version(open_store, url, back_to_version_6, held_out)
    again = open_store()
    assert again.quarantine_entries(old_cycle) == [QuarantinedUser("entra-q", "q@contoso.com", ["bad"], None)]
    renamed = change(1, Action.UPDATE, {"LastName": FieldChange("Last1", "Vance")}, LastName="Vance")
    renamed.display_name = "Adèle Vance"
    new_cycle, _ = run_cycle(again, Plan(updates=[renamed]), [ok(renamed, 1)], quarantined=held_out, now=T0 + HOUR)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM state_schema")).scalar()
        rows = conn.execute(text("SELECT cycle_id, upn, display_name FROM provisioning_log ORDER BY id")).all()
        quarantine = conn.execute(text("SELECT cycle_id, display_name FROM quarantine ORDER BY id")).all()
        indexes = _log_index_names(conn)
    engine.dispose()
    # The quarantine's old rows keep no name either; the next cycle's rows have it.
    assert [tuple(row) for row in quarantine] == [(old_cycle, None), (new_cycle, "Quinn Q")]
    assert again.quarantine_entries() == held_out
    name_index = "ix_provisioning_log_display_name_lower_" + ("action_status" if url.startswith("sqlite") else "c")
    assert version == schema.SCHEMA_VERSION == 8
    assert name_index in indexes and indexes == current_indexes
    # The row written before keeps no name (nothing in the store had it); the new one has it.
    assert [tuple(row) for row in rows] == [
        (old_cycle, "user1@contoso.com", None),
        (old_cycle, "q@contoso.com", None),
        (new_cycle, "user1@contoso.com", "Adèle Vance"),
        (new_cycle, "q@contoso.com", "Quinn Q"),
    ]
    assert again.last_names(["entra-1"]) == {"entra-1": ("user1@contoso.com", "Adèle Vance")}


def _log_index_names(conn: Connection) -> set[str]:
    """The provisioning log's own indexes (not a primary key's)."""
    return {name for name in index_names(conn, "provisioning_log") if name.startswith("ix_")}


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(StateError, match="supports sqlite, postgresql"):
        StateStore("mysql://user@localhost/db")
    with pytest.raises(StateError, match="not a SQLAlchemy URL"):
        StateStore("not a url")


# -- cycles: one writer ----------------------------------------------------------------------


def test_cycle_ids_sort_by_start_time_and_a_second_writer_is_refused(store: StateStore) -> None:
    first = store.start_cycle(Mode.FULL, "fp", now=T0)
    assert first.startswith("20261126T153000Z-")
    with pytest.raises(StateError, match=f"cycle {first} .* is still running; only one cycle"):
        store.start_cycle(Mode.INCREMENTAL, "fp", now=T0 + dt.timedelta(minutes=5))
    store.fail_cycle(first, "boom")
    second = store.start_cycle(Mode.INCREMENTAL, "fp", now=T0 + dt.timedelta(minutes=5))
    assert second > first
    assert [c.cycle_id for c in store.cycles()] == [second, first]
    assert store.cycles()[1].status is CycleStatus.FAILED
    assert store.cycles()[1].reason == "boom"


def test_a_stale_running_cycle_is_abandoned_and_force_takes_over(open_store: Callable[..., StateStore]) -> None:
    store = open_store(stale_after=dt.timedelta(hours=1))
    dead = store.start_cycle(Mode.FULL, "fp", now=T0)
    later = store.start_cycle(Mode.FULL, "fp", now=T0 + dt.timedelta(hours=1, seconds=1))
    by_id = {c.cycle_id: c for c in store.cycles()}
    assert by_id[dead].status is CycleStatus.FAILED
    assert by_id[dead].reason.startswith(f"abandoned: taken over by cycle {later} (no sign of life")
    forced = store.start_cycle(Mode.FULL, "fp", now=T0 + dt.timedelta(hours=1, seconds=2), force=True)
    by_id = {c.cycle_id: c for c in store.cycles()}
    assert by_id[later].reason == f"abandoned: taken over by cycle {forced} (forced)"
    assert by_id[forced].status is CycleStatus.RUNNING


def test_recording_a_bulk_job_is_a_sign_of_life(open_store: Callable[..., StateStore]) -> None:
    store = open_store(stale_after=dt.timedelta(hours=1))
    running = store.start_cycle(Mode.FULL, "fp", now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    store.record_job(running, "750J1", "insert", "Username", {"a@x": "entra-a"})
    with pytest.raises(StateError, match="still running"):
        store.start_cycle(Mode.FULL, "fp")


def test_concurrent_starts_let_exactly_one_writer_in(open_store: Callable[..., StateStore]) -> None:
    stores = [open_store(), open_store()]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def start(store: StateStore) -> None:
        barrier.wait()
        try:
            outcomes.append(store.start_cycle(Mode.FULL, "fp"))
        except StateError as exc:
            outcomes.append(f"refused: {exc}")

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.startswith("refused") for o in outcomes) == [False, True]
    assert [c.status for c in stores[0].cycles()] == [CycleStatus.RUNNING]


def test_fail_cycle_keeps_the_summary_and_knows_stopped(store: StateStore) -> None:
    cycle_id = store.start_cycle(Mode.FULL, "fp", now=T0)
    summary = CycleSummary(cycle_id, Mode.FULL, CycleStatus.STOPPED, T0, T0, quarantined=7, unchanged=3)
    store.fail_cycle(cycle_id, "60% failed validation", summary)
    [stored] = store.cycles()
    assert (stored.status, stored.reason, stored.quarantined, stored.unchanged) == (
        CycleStatus.STOPPED,
        "60% failed validation",
        7,
        3,
    )
    with pytest.raises(StateError, match="no cycle 'nope'"):
        store.fail_cycle("nope", "x")


# -- commit_cycle ----------------------------------------------------------------------------


def test_commit_writes_one_log_row_per_action_and_the_snapshot(store: StateStore) -> None:
    first = [create(n) for n in range(1, 5)]
    run_cycle(store, Plan(creates=first), [ok(c, n) for n, c in enumerate(first, 1)])

    update = change(1, Action.UPDATE, {"LastName": FieldChange("Last1", "Renamed")}, LastName="Renamed")
    disable = change(2, Action.DISABLE, {"IsActive": FieldChange(True, False)}, IsActive=False)
    held = change(3, Action.DISABLE, {"IsActive": FieldChange(True, False)}, IsActive=False)
    unchanged = change(4, Action.OTHER, {})
    fails = create(5)
    plan = Plan(
        creates=[fails],
        updates=[update],
        deactivations=[disable],
        held_back=[held],
        held_back_reason="3 deactivations exceed the threshold of 2",
        unchanged=[unchanged],
    )
    quarantined = [QuarantinedUser("entra-9", "bad@@contoso.com", ["UPN is not e-mail shaped", "LastName missing"])]
    cycle_id, log = run_cycle(
        store,
        plan,
        [ok(update, 1), ok(disable, 2), failed(fails)],
        quarantined=quarantined,
        now=T0 + dt.timedelta(hours=1),
        delta_link="https://graph/delta?token=2",
    )

    assert [(e.action, e.status, e.entra_id) for e in log] == [
        (Action.CREATE, Status.FAILURE, "entra-5"),
        (Action.UPDATE, Status.SUCCESS, "entra-1"),
        (Action.DISABLE, Status.SUCCESS, "entra-2"),
        (Action.STAGED_DELETE, Status.SKIPPED, "entra-3"),
        (Action.QUARANTINE, Status.SKIPPED, "entra-9"),
    ]
    assert log == store.log_entries(cycle_id=cycle_id)
    by_id = {e.entra_id: e for e in log}
    assert by_id["entra-5"].error_code == "DUPLICATE_USERNAME"
    assert by_id["entra-5"].error_message == "Duplicate Username"
    assert by_id["entra-1"].changes == {"LastName": FieldChange("Last1", "Renamed")}
    assert by_id["entra-1"].sf_id == sf_id(1)
    assert by_id["entra-3"].error_message == "3 deactivations exceed the threshold of 2"
    assert by_id["entra-9"].error_message == "UPN is not e-mail shaped; LastName missing"
    assert all(e.at == T0 + dt.timedelta(hours=1) for e in log)

    snap = snapshot_by_id(store)
    assert set(snap) == {"entra-1", "entra-2", "entra-3", "entra-4"}
    assert snap["entra-1"]["fields"]["LastName"] == "Renamed"
    assert snap["entra-2"]["is_active"] is False
    assert snap["entra-3"]["is_active"] is True  # held back: nothing applied
    assert snap["entra-1"]["roles"] == ["Standard User"]
    assert snap["entra-1"]["match_value"] == "user1@contoso.com"

    watermark = store.watermark()
    assert watermark is not None
    assert (watermark.delta_link, watermark.mapping_fingerprint) == ("https://graph/delta?token=2", "fp-1")
    assert watermark.updated_at == T0 + dt.timedelta(hours=1)
    assert [q.entra_id for q in store.quarantine_entries()] == ["entra-9"]
    assert store.quarantine_entries()[0].reasons == ["UPN is not e-mail shaped", "LastName missing"]
    [escrowed] = store.escrow_entries()
    assert (escrowed.entra_id, escrowed.action, escrowed.attempts) == ("entra-5", Action.CREATE, 1)
    latest = store.cycles()[0]
    assert (latest.cycle_id, latest.status, latest.mode) == (cycle_id, CycleStatus.SUCCEEDED, Mode.FULL)
    assert latest.phase_seconds == {"extract": 1.5, "load": 2.25}
    assert latest.requests == {"graph": 3, "salesforce": 4}
    assert latest.started_at == T0 + dt.timedelta(hours=1)
    assert latest.finished_at == T0 + dt.timedelta(hours=1, seconds=5)


def test_the_snapshot_of_a_few_users_is_their_rows_and_those_linked_to_their_salesforce_users(
    store: StateStore,
) -> None:
    first = [create(n) for n in range(1, 6)]
    run_cycle(store, Plan(creates=first), [ok(c, n) for n, c in enumerate(first, 1)])
    whole = store.snapshot()
    assert store.snapshot_size() == len(whole) == 5

    some = store.snapshot(entra_ids=["entra-4", "entra-2", "entra-404"], sf_ids=[sf_id(2), sf_id(5)[:15]])
    # entra-5 is not found by the 15-character prefix of its stored id: callers give both forms.
    assert list(some["entra_id"]) == ["entra-2", "entra-4"]
    by_id = {row["entra_id"]: row for row in some.to_dict("records")}
    full_rows = {row["entra_id"]: row for row in whole.to_dict("records")}
    assert by_id == {k: full_rows[k] for k in by_id}, "the same rows, columns and types as the whole snapshot"
    assert list(some.dtypes) == list(whole.dtypes)
    both = store.snapshot(entra_ids=["entra-1"], sf_ids=[sf_id(3), sf_id(1)])
    assert list(both["entra_id"]) == ["entra-1", "entra-3"]  # a row found twice is one row, in id order
    assert store.snapshot(entra_ids=[]).empty


def test_a_first_full_cycle_learns_matched_unchanged_users(store: StateStore) -> None:
    matched = change(7, Action.OTHER, {})
    unmatched = PlannedChange("entra-8", "gone@contoso.com", Action.OTHER, None, {})
    _, log = run_cycle(store, Plan(unchanged=[matched, unmatched]), [])
    assert log == []
    snap = snapshot_by_id(store)
    assert list(snap) == ["entra-7"]
    assert snap["entra-7"]["sf_id"] == sf_id(7)
    assert snap["entra-7"]["fields"] == desired(7)


def test_reactivation_and_a_deactivation_without_desired_values(store: StateStore) -> None:
    users = [create(1), create(2)]
    run_cycle(store, Plan(creates=users), [ok(users[0], 1), ok(users[1], 2)])
    gone = PlannedChange(
        "entra-1", "user1@contoso.com", Action.DISABLE, sf_id(1), {"IsActive": FieldChange(True, False)}
    )
    run_cycle(store, Plan(deactivations=[gone]), [ok(gone, 1)], now=T0 + dt.timedelta(hours=1))
    snap = snapshot_by_id(store)["entra-1"]
    assert snap["is_active"] is False
    assert snap["fields"] == {**desired(1), "IsActive": False}  # previous fields, change applied
    assert snap["match_value"] == "user1@contoso.com"
    back = change(1, Action.REACTIVATE, {"IsActive": FieldChange(False, True)})
    cycle_id, _ = run_cycle(store, Plan(reactivations=[back]), [ok(back, 1)], now=T0 + dt.timedelta(hours=2))
    assert snapshot_by_id(store)["entra-1"]["is_active"] is True
    stored = store.cycle(cycle_id)
    assert stored is not None and (stored.updated, stored.reactivated, stored.in_scope) == (1, 1, 1)


def test_escrow_follows_the_schedule_and_gives_up_when_it_is_used_up(store: StateStore) -> None:
    user = create(1)
    now = T0
    expected_waits = [6, 12, 24]
    for attempt, wait in enumerate(expected_waits, 1):
        _, log = run_cycle(store, Plan(creates=[user]), [failed(user)], now=now)
        [entry] = store.escrow_entries()
        assert (entry.attempts, entry.first_failed_at) == (attempt, T0)
        assert entry.next_attempt_at == now + dt.timedelta(hours=wait)
        assert (entry.error_code, entry.error_message) == ("DUPLICATE_USERNAME", "Duplicate Username")
        assert store.due_escrow(now + dt.timedelta(hours=wait) - dt.timedelta(seconds=1)) == []
        assert store.due_escrow(now + dt.timedelta(hours=wait)) == [entry]
        assert log[0].status is Status.FAILURE
        now = entry.next_attempt_at
    _, log = run_cycle(store, Plan(creates=[user]), [failed(user)], now=now)
    assert store.escrow_entries() == []
    assert log[0].status is Status.FAILURE
    assert log[0].error_message.startswith("Duplicate Username [escrow: giving up after 4 failed attempts since")
    assert len(store.log_entries(entra_id="entra-1")) == 4


def test_success_clears_escrow_and_unprocessed_records_stay_due_without_an_attempt(store: StateStore) -> None:
    a, b, c = create(1), create(2), create(3)
    run_cycle(store, Plan(creates=[a, b, c]), [failed(a), failed(b), ok(c, 3)])
    assert [e.entra_id for e in store.escrow_entries()] == ["entra-1", "entra-2"]
    later = T0 + dt.timedelta(hours=6)
    unprocessed = RecordResult(b.entra_id, Action.CREATE, None, False, unprocessed=True)
    d = create(4)
    _, log = run_cycle(store, Plan(creates=[a, b, d]), [ok(a, 1), unprocessed], now=later)
    entries = {e.entra_id: e for e in store.escrow_entries()}
    assert set(entries) == {"entra-2", "entra-4"}
    assert (entries["entra-2"].attempts, entries["entra-2"].next_attempt_at) == (1, later)  # not counted
    assert (entries["entra-4"].attempts, entries["entra-4"].next_attempt_at) == (0, later)
    assert entries["entra-2"].first_failed_at == T0
    assert [e.entra_id for e in store.due_escrow(later)] == ["entra-2", "entra-4"]
    statuses = {e.entra_id: (e.status, e.error_code, e.error_message) for e in log}
    assert statuses["entra-1"][0] is Status.SUCCESS
    assert statuses["entra-2"][:2] == (Status.WARNING, "UNPROCESSED")
    assert statuses["entra-4"] == (Status.WARNING, "UNPROCESSED", NO_RESULT_MESSAGE)
    assert "entra-2" not in snapshot_by_id(store)


def test_an_unchanged_user_leaves_escrow(store: StateStore) -> None:
    user = create(1)
    run_cycle(store, Plan(creates=[user]), [failed(user, "UNABLE_TO_LOCK_ROW", "locked")])
    assert len(store.escrow_entries()) == 1
    run_cycle(store, Plan(unchanged=[change(1, Action.OTHER, {})]), [], now=T0 + dt.timedelta(hours=6))
    assert store.escrow_entries() == []


def test_a_stopped_cycle_stores_quarantine_but_keeps_the_watermark(store: StateStore) -> None:
    run_cycle(store, Plan(creates=[create(1)]), [ok(create(1), 1)], delta_link="link-1")
    quarantined = [QuarantinedUser(f"entra-q{n}", None, ["bad"]) for n in range(3)]
    cycle_id, log = run_cycle(
        store,
        Plan(),
        [],
        quarantined=quarantined,
        delta_link="link-2",
        advance=False,
        status=CycleStatus.STOPPED,
        now=T0 + dt.timedelta(hours=1),
    )
    assert store.watermark().delta_link == "link-1"
    assert store.cycles()[0].status is CycleStatus.STOPPED
    assert [q.entra_id for q in store.quarantine_entries()] == ["entra-q0", "entra-q1", "entra-q2"]
    assert [q.entra_id for q in store.quarantine_entries(cycle_id)] == ["entra-q0", "entra-q1", "entra-q2"]
    assert len(log) == 3


def test_current_quarantine_is_the_latest_committed_cycles(store: StateStore) -> None:
    first, _ = run_cycle(store, Plan(), [], quarantined=[QuarantinedUser("entra-1", "a@x", ["r"])])
    run_cycle(store, Plan(), [], now=T0 + dt.timedelta(hours=1))
    store.fail_cycle(store.start_cycle(Mode.FULL, "fp", now=T0 + dt.timedelta(hours=2)), "crashed")
    assert store.quarantine_entries() == []
    assert [q.entra_id for q in store.quarantine_entries(first)] == ["entra-1"]


def test_field_values_from_dataframes_are_stored_as_plain_json(store: StateStore) -> None:
    user = create(1)
    user.desired = {
        "Username": np.str_("user1@contoso.com"),
        "Title": float("nan"),
        "Department": pd.NA,
        "IsActive": np.bool_(True),
        "Rank": np.int64(3),
        "Hired": pd.Timestamp("2024-01-02T03:04:05Z"),
    }
    run_cycle(store, Plan(creates=[user]), [ok(user, 1)])
    fields = snapshot_by_id(store)["entra-1"]["fields"]
    assert fields == {
        "Username": "user1@contoso.com",
        "Title": None,
        "Department": None,
        "IsActive": True,
        "Rank": 3,
        "Hired": "2024-01-02T03:04:05+00:00",
    }


def test_an_unstorable_value_names_the_user_and_writes_nothing(store: StateStore) -> None:
    user = create(1)
    user.desired = {"Username": object()}
    before = state_fingerprint(store)
    with pytest.raises(
        StateError,
        match=r"snapshot of user entra-1: cannot be stored as JSON \(Type is not JSON serializable: object\)",
    ):
        run_cycle(store, Plan(creates=[user]), [ok(user, 1)])
    assert state_fingerprint(store)[:5] == before[:5]


def test_inconsistent_input_is_refused_and_nothing_is_written(store: StateStore) -> None:
    user = create(1)
    run_cycle(store, Plan(creates=[user]), [ok(user, 1)])
    before = state_fingerprint(store)
    stranger = RecordResult("entra-404", Action.UPDATE, sf_id(404), True)
    with pytest.raises(StateError, match=r"result for user entra-404 \(Update\) matches no planned write"):
        run_cycle(store, Plan(updates=[change(1, Action.UPDATE, {})]), [stranger], now=T0 + dt.timedelta(hours=1))
    twice = change(1, Action.UPDATE, {})
    with pytest.raises(StateError, match=r"user entra-1 appears in both plan\.updates and unchanged"):
        run_cycle(store, Plan(updates=[twice], unchanged=[twice]), [], now=T0 + dt.timedelta(hours=2))
    no_id = create(2)
    with pytest.raises(StateError, match="user entra-2: Salesforce reported Create succeeded but gave no record Id"):
        run_cycle(store, Plan(creates=[no_id]), [RecordResult("entra-2", Action.CREATE, None, True)])
    assert state_fingerprint(store)[:5] == before[:5]


def test_a_cycle_commits_once(store: StateStore) -> None:
    cycle_id, _ = run_cycle(store, Plan(), [])
    summary = CycleSummary(cycle_id, Mode.FULL, CycleStatus.SUCCEEDED, T0)
    with pytest.raises(StateError, match=f"cycle {cycle_id} was already committed"):
        store.commit_cycle(
            summary,
            plan=Plan(),
            results=[],
            quarantined=[],
            delta_link=None,
            mapping_fingerprint="fp",
            now=T0,
            escrow_schedule_hours=SCHEDULE,
        )


# -- crash safety ----------------------------------------------------------------------------


def _prepare_second_cycle(store: StateStore) -> tuple[CycleSummary, dict[str, object]]:
    users = [create(n) for n in range(1, 4)]
    run_cycle(store, Plan(creates=users), [ok(u, n) for n, u in enumerate(users, 1)], delta_link="link-1")
    broken = create(9)
    run_cycle(store, Plan(creates=[broken]), [failed(broken)], delta_link="link-1")
    later = T0 + dt.timedelta(hours=7)
    cycle_id = store.start_cycle(Mode.INCREMENTAL, "fp-1", now=later)
    update = change(1, Action.UPDATE, {"LastName": FieldChange("Last1", "New")}, LastName="New")
    disable = change(2, Action.DISABLE, {"IsActive": FieldChange(True, False)}, IsActive=False)
    fixed = create(9)
    plan = Plan(creates=[fixed, create(4)], updates=[update], deactivations=[disable])
    results = [ok(update, 1), ok(disable, 2), ok(fixed, 9), ok(create(4), 4)]
    summary = CycleSummary(cycle_id, Mode.INCREMENTAL, CycleStatus.SUCCEEDED, later, created=2, updated=1)
    kwargs = {
        "plan": plan,
        "results": results,
        "quarantined": [QuarantinedUser("entra-q", None, ["bad"])],
        "delta_link": "link-2",
        "mapping_fingerprint": "fp-1",
        "now": later,
        "escrow_schedule_hours": SCHEDULE,
    }
    return summary, kwargs


@pytest.mark.parametrize("step", ["_write_snapshot", "_write_escrow", "_write_watermark", "_finish_cycle"])
def test_an_exception_inside_commit_leaves_the_previous_state(
    store: StateStore, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    summary, kwargs = _prepare_second_cycle(store)
    before = state_fingerprint(store)
    original = getattr(StateStore, step)

    def explode(self: StateStore, *args: object, **kw: object) -> None:
        original(self, *args, **kw)
        raise RuntimeError(f"crash after {step}")

    monkeypatch.setattr(StateStore, step, explode)
    with pytest.raises(RuntimeError, match=f"crash after {step}"):
        store.commit_cycle(summary, **kwargs)  # type: ignore[arg-type]
    monkeypatch.undo()
    assert state_fingerprint(store) == before
    assert store.cycles()[0].status is CycleStatus.RUNNING
    log = store.commit_cycle(summary, **kwargs)  # the retry commits cleanly
    assert len(log) == 5
    assert store.watermark().delta_link == "link-2"
    assert store.escrow_entries() == []


def test_results_are_stored_before_the_watermark(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    summary, kwargs = _prepare_second_cycle(store)
    order: list[str] = []
    for step in ("_write_log", "_write_snapshot", "_write_escrow", "_write_quarantine", "_write_watermark"):
        original = getattr(StateStore, step)

        def spy(self: StateStore, *args: object, _step: str = step, _original: object = original, **kw: object) -> None:
            order.append(_step)
            _original(self, *args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(StateStore, step, spy)
    store.commit_cycle(summary, **kwargs)  # type: ignore[arg-type]
    assert order[-1] == "_write_watermark"
    assert set(order) == {"_write_log", "_write_snapshot", "_write_escrow", "_write_quarantine", "_write_watermark"}


KILLED_CHILD = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from include.provisioning.model import *
    from include.provisioning.state import StateStore

    def die(self, *args, **kwargs):
        os._exit(17)  # no rollback, no cleanup: like kill -9 between the results and the watermark

    StateStore._write_watermark = die
    store = StateStore(sys.argv[1])
    now = dt.datetime(2026, 11, 26, 23, 0, tzinfo=dt.UTC)
    cycle_id = store.start_cycle(Mode.INCREMENTAL, "fp-1", now=now, force=True)
    changes = {"LastName": FieldChange("Last1", "Killed")}
    update = PlannedChange("entra-1", "user1@contoso.com", Action.UPDATE, "005000000000000001", changes,
                           desired={"LastName": "Killed"})
    store.commit_cycle(
        CycleSummary(cycle_id, Mode.INCREMENTAL, CycleStatus.SUCCEEDED, now, updated=1),
        plan=Plan(updates=[update], creates=[PlannedChange("entra-7", None, Action.CREATE, None, {})]),
        results=[RecordResult("entra-1", Action.UPDATE, "005000000000000001", True)],
        quarantined=[QuarantinedUser("entra-q", None, ["bad"])],
        delta_link="link-killed", mapping_fingerprint="fp-1", now=now, escrow_schedule_hours=(6,),
    )
    """
)


def test_a_process_killed_inside_commit_leaves_the_previous_state(store: StateStore, url: str) -> None:
    _prepare_second_cycle(store)
    before = state_fingerprint(store)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 17, stderr
    assert state_fingerprint(store)[:5] == before[:5]
    assert snapshot_by_id(store)["entra-1"]["fields"]["LastName"] == "Last1"
    # the killed cycle was left "running"; its process is gone, so the next start takes over at once
    [killed] = [c for c in store.cycles() if c.status is CycleStatus.RUNNING]
    taken_over = store.start_cycle(Mode.FULL, "fp-1")
    by_id = {c.cycle_id: c for c in store.cycles()}
    assert by_id[taken_over].status is CycleStatus.RUNNING
    assert by_id[killed.cycle_id].status is CycleStatus.FAILED
    assert re.fullmatch(
        rf"abandoned: taken over by cycle {taken_over} \(its process {child.pid} on .+ has exited\)",
        by_id[killed.cycle_id].reason,
    )


HOLDING_CHILD = textwrap.dedent(
    """
    import sys, time
    from include.provisioning.model import Mode
    from include.provisioning.state import StateStore

    print(StateStore(sys.argv[1]).start_cycle(Mode.FULL, "fp"), flush=True)
    time.sleep(120)
    """
)


def test_a_cycle_whose_process_lives_blocks_and_one_whose_process_died_does_not(store: StateStore, url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDING_CHILD, url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        held = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert held, child.stderr.read()  # type: ignore[union-attr]
        with pytest.raises(StateError, match=rf"cycle {held} .* by .+:{child.pid}, .* is still running"):
            store.start_cycle(Mode.FULL, "fp")
    finally:
        child.kill()
        child.communicate(timeout=30)
    mine = store.start_cycle(Mode.FULL, "fp")
    assert {c.cycle_id: c.reason for c in store.cycles()}[held].endswith(
        f"(its process {child.pid} on " + f"{socket.gethostname()} has exited)"
    )
    assert store.cycles()[0].cycle_id == mine


# -- Bulk jobs -------------------------------------------------------------------------------


def test_bulk_jobs_are_recorded_before_upload_and_cleared_by_the_commit(store: StateStore) -> None:
    crashed = store.start_cycle(Mode.FULL, "fp", now=T0)
    store.record_job(crashed, "750A", "insert", "Username", {"a@contoso.com": "entra-a"})
    store.fail_cycle(crashed, "killed during load")
    cycle_id = store.start_cycle(Mode.FULL, "fp", now=T0 + dt.timedelta(hours=1))
    keys = {f"user{n}@contoso.com": f"entra-{n}" for n in range(3)}
    store.record_job(cycle_id, "750B", "insert", "Username", keys)
    store.record_job(cycle_id, "750C", "update", "Id", {sf_id(1): "entra-1"})
    store.mark_job("750C", "UploadComplete")
    jobs = {job.job_id: job for job in store.pending_jobs()}
    assert list(jobs) == ["750A", "750B", "750C"]
    assert (jobs["750B"].cycle_id, jobs["750B"].operation, jobs["750B"].key_field) == (cycle_id, "insert", "Username")
    assert jobs["750B"].keys == keys
    assert (jobs["750A"].state, jobs["750C"].state) == ("Open", "UploadComplete")
    assert jobs["750A"].created_at is not None
    store.forget_job("750A")
    store.forget_job("750A")  # idempotent
    store.commit_cycle(
        CycleSummary(cycle_id, Mode.FULL, CycleStatus.SUCCEEDED, T0),
        plan=Plan(),
        results=[],
        quarantined=[],
        delta_link=None,
        mapping_fingerprint="fp",
        now=T0 + dt.timedelta(hours=1),
        escrow_schedule_hours=SCHEDULE,
    )
    assert store.pending_jobs() == []


def test_pending_jobs_of_some_users_are_the_jobs_with_a_row_of_one_of_them(store: StateStore) -> None:
    cycle_id = store.start_cycle(Mode.FULL, "fp", now=T0)
    mine = {"entra-1": JobRecord("u1@contoso.com", Action.CREATE, "One")}
    store.record_job(cycle_id, "750A", "insert", "Username", {"u1@contoso.com": "entra-1"}, records=mine)
    store.record_job(cycle_id, "750B", "insert", "Username", {"u2@contoso.com": "entra-2"})
    store.record_job(cycle_id, "750C", "update", "Id", {sf_id(1): "entra-1", sf_id(3): "entra-3"})
    jobs = store.pending_jobs(cycle_id, users={"entra-1", "entra-9"})
    assert [job.job_id for job in jobs] == ["750A", "750C"]  # 750B has no row of theirs
    assert jobs[0].records == mine and jobs[1].keys == {sf_id(1): "entra-1", sf_id(3): "entra-3"}
    assert store.pending_jobs(cycle_id, users=set()) == []
    assert [job.job_id for job in store.pending_jobs(cycle_id)] == ["750A", "750B", "750C"]


def test_a_crashed_cycles_jobs_are_filed_under_it_with_who_each_row_is(store: StateStore) -> None:
    run_cycle(store, Plan(creates=[create(3)]), [ok(create(3), 3)], now=T0 - HOUR)  # the log knows user3
    crashed = store.start_cycle(Mode.FULL, "fp", now=T0)
    records = {
        "entra-a": JobRecord("a@contoso.com", Action.CREATE, "Adele Vance"),
        "entra-b": JobRecord("b@contoso.com", Action.CREATE),  # recorded before v7: no display name
    }
    keys = {"a@contoso.com": "entra-a", "b@contoso.com": "entra-b"}
    store.record_job(crashed, "750A", "insert", "Username", keys, records=records)
    store.record_job(crashed, "750B", "update", "Id", {sf_id(3): "entra-3"})  # recorded without records (< v4)
    store.fail_cycle(crashed, "killed during load")
    jobs = store.pending_jobs()
    assert (jobs[0].records, jobs[1].records) == (records, {})
    later = T0 + dt.timedelta(hours=1)
    settler = store.start_cycle(Mode.FULL, "fp", now=later)
    results = [
        RecordResult("entra-a", Action.CREATE, sf_id(1), True, created=True),
        RecordResult("entra-b", Action.CREATE, None, False, "DUPLICATE_USERNAME", "taken"),
        RecordResult("entra-3", Action.UPDATE, sf_id(3), False, "UNPROCESSED", "job aborted", unprocessed=True),
    ]
    job_of = {"entra-a": "750A", "entra-b": "750A", "entra-3": "750B"}
    written = store.settle_jobs(
        crashed, jobs, results, settled_by=settler, job_of=job_of, now=later, escrow_schedule_hours=SCHEDULE
    )
    logged = store.log_entries(cycle_id=crashed)
    assert logged == written and store.log_entries(cycle_id=settler) == []
    assert sorted((e.entra_id, e.user_principal_name, e.action, e.status, e.sf_id, e.error_code) for e in logged) == [
        ("entra-3", "user3@contoso.com", Action.UPDATE, Status.WARNING, sf_id(3), "UNPROCESSED"),  # from the log
        ("entra-a", "a@contoso.com", Action.CREATE, Status.SUCCESS, sf_id(1), None),
        ("entra-b", "b@contoso.com", Action.CREATE, Status.FAILURE, None, "DUPLICATE_USERNAME"),
    ]
    names = {e.entra_id: e.display_name for e in logged}
    assert names == {"entra-3": "User 3", "entra-a": "Adele Vance", "entra-b": None}  # user3's from the log
    by_user = {e.entra_id: e.error_message for e in logged}
    assert by_user["entra-a"] == f"settled by cycle {settler} from Bulk job 750A"
    assert by_user["entra-b"] == f"taken (settled by cycle {settler} from Bulk job 750A)"
    escrow = {e.entra_id: (e.attempts, e.next_attempt_at, e.last_cycle_id) for e in store.escrow_entries()}
    assert escrow == {
        "entra-b": (1, later + dt.timedelta(hours=SCHEDULE[0]), crashed),  # held until the retry time
        "entra-3": (0, later, crashed),  # never processed: due at once
    }
    assert store.pending_jobs() == [] and list(store.snapshot()["entra_id"]) == ["entra-3"]  # as it was
    assert {c.cycle_id: c.reason for c in store.cycles()}[crashed] == (
        f"killed during load; its Bulk jobs were settled by cycle {settler}: "
        "1 succeeded, 1 failed (escrowed), 1 not processed (sent again)"
    )


def test_last_names_name_users_the_log_has_seen(store: StateStore) -> None:
    three = create(3)
    three.display_name = None  # logged by UPN alone, as rows before schema version 7
    creates = [create(1), create(2), three]
    run_cycle(store, Plan(creates=creates), [ok(c, n) for n, c in enumerate(creates, start=1)])
    renamed = dataclasses.replace(
        create(1), user_principal_name="renamed@contoso.com", display_name="Renamed", action=Action.UPDATE
    )
    gone = dataclasses.replace(create(2), user_principal_name=None, display_name=None, action=Action.DISABLE)
    run_cycle(store, Plan(updates=[renamed], deactivations=[gone]), [ok(renamed, 1), ok(gone, 2)], now=T0 + HOUR)
    assert store.last_names(["entra-1", "entra-2", "entra-3", "entra-4"]) == {
        "entra-1": ("renamed@contoso.com", "Renamed"),  # the latest
        "entra-2": ("user2@contoso.com", "User 2"),  # its deactivation was logged without either
        "entra-3": ("user3@contoso.com", None),
    }


def test_a_user_the_directory_no_longer_has_is_named_by_the_log_or_else_by_salesforce(store: StateStore) -> None:
    """``stages._name_the_gone``: a deactivation Graph's delta names by id alone."""
    three = create(3)
    three.display_name = None  # logged before schema version 7: the log has its UPN only
    run_cycle(store, Plan(creates=[create(1), three]), [ok(create(1), 1), ok(three, 3)])
    leaving = {"IsActive": FieldChange(True, False)}
    gone = [
        change(1, Action.DISABLE, leaving),
        change(3, Action.DISABLE, leaving, FirstName="Grady", LastName="Archie"),
    ]
    for user in gone:
        user.user_principal_name = user.display_name = None
    table = PlanTable.of(Plan(deactivations=gone))
    stages._name_the_gone(SimpleNamespace(state=store), table)  # type: ignore[arg-type]  (it reads engine.state only)
    assert [(c.user_principal_name, c.display_name) for c in table.to_plan().deactivations] == [
        ("user1@contoso.com", "User 1"),  # the log's
        ("user3@contoso.com", "Grady Archie"),  # Salesforce's FirstName LastName, as the deactivation found them
    ]


def test_a_version_3_database_gains_the_job_records_column(url: str) -> None:
    StateStore(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:  # version 3: version 4's shape without bulk_jobs.records
        _back_to_version_4(conn)
        conn.execute(text("DROP TABLE bulk_jobs"))
        conn.execute(
            text(
                "CREATE TABLE bulk_jobs (job_id VARCHAR(64) PRIMARY KEY, cycle_id VARCHAR(64) NOT NULL, "
                "operation VARCHAR(32) NOT NULL, key_field VARCHAR(80) NOT NULL, keys TEXT NOT NULL, "
                "state VARCHAR(32) NOT NULL, created_at TIMESTAMP NOT NULL)"
            )
        )
        conn.execute(text("UPDATE state_schema SET version = 3"))
    engine.dispose()
    store = StateStore(url)
    try:
        cycle_id = store.start_cycle(Mode.FULL, "fp", now=T0)
        store.record_job(
            cycle_id, "750A", "insert", "Username", {"a@x": "e-a"}, records={"e-a": JobRecord("a@x", Action.CREATE)}
        )
        assert store.pending_jobs()[0].records == {"e-a": JobRecord("a@x", Action.CREATE)}
    finally:
        store.close()


# -- history and reset -----------------------------------------------------------------------


def test_log_entries_filter_and_return_the_latest_oldest_first(store: StateStore) -> None:
    ids = []
    for hour in range(3):
        user = change(1, Action.UPDATE, {"LastName": FieldChange(str(hour), str(hour + 1))})
        other = change(2, Action.UPDATE, {})
        cycle_id, _ = run_cycle(
            store, Plan(updates=[user, other]), [ok(user, 1), ok(other, 2)], now=T0 + dt.timedelta(hours=hour)
        )
        ids.append(cycle_id)
    mine = store.log_entries(entra_id="entra-1")
    assert [e.changes["LastName"].new for e in mine] == ["1", "2", "3"]
    assert [e.changes["LastName"].new for e in store.log_entries(entra_id="entra-1", limit=2)] == ["2", "3"]
    assert [e.entra_id for e in store.log_entries(cycle_id=ids[1])] == ["entra-1", "entra-2"]
    assert store.log_entries(cycle_id=ids[1], entra_id="entra-2")[0].cycle_id == ids[1]
    assert all(e.at.tzinfo is not None for e in store.log_entries())


def test_reset_forgets_only_what_it_is_asked_to(store: StateStore) -> None:
    user, broken = create(1), create(2)
    run_cycle(
        store,
        Plan(creates=[user, broken]),
        [ok(user, 1), failed(broken)],
        quarantined=[QuarantinedUser("entra-q", None, ["bad"])],
    )
    store.reset(watermark=True)
    assert store.watermark() is None
    assert len(store.snapshot()) == 1
    assert len(store.escrow_entries()) == 1
    store.reset(escrow=True, quarantine=True)
    assert store.escrow_entries() == []
    assert store.quarantine_entries() == []
    assert len(store.snapshot()) == 1
    store.reset(snapshot=True)
    assert len(store.snapshot()) == 0
    assert len(store.log_entries()) == 3  # the log is history: never reset


# -- volume ----------------------------------------------------------------------------------


def test_thousands_of_rows_cross_every_batch_boundary(
    store: StateStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small pages so a few thousand rows cross every batch and IN-list boundary
    monkeypatch.setattr(bulk, "PAGE", 500)
    monkeypatch.setattr(bulk, "PG_PAGE", 700)
    count = 2_500
    users = [create(n) for n in range(count)]
    run_cycle(store, Plan(creates=users), [ok(u, n) for n, u in enumerate(users)])
    frame = store.snapshot()
    assert len(frame) == count
    assert frame["entra_id"].is_unique
    assert frame["sf_id"].tolist() == [sf_id(n) for n in sorted(range(count), key=lambda n: f"entra-{n}")]
    # a partial update (prior rows found with IN lists) and a failure for every 100th user
    touched = range(0, 600)
    updates = [change(n, Action.UPDATE, {"LastName": FieldChange(f"Last{n}", "X")}, LastName="X") for n in touched]
    results = [ok(u, n) if n % 100 else failed(u) for n, u in zip(touched, updates, strict=True)]
    run_cycle(store, Plan(updates=updates), results, now=T0 + dt.timedelta(hours=1))
    snap = store.snapshot().set_index("entra_id")
    renamed = snap["fields"].map(lambda f: f["LastName"] == "X")
    assert renamed.sum() == 600 - 6
    assert len(store.escrow_entries()) == 6
    assert len(store.log_entries(limit=100_000)) == count + 600
    # a full cycle where nothing changed rewrites no snapshot row, and clears the escrow
    unchanged = [
        change(n, Action.OTHER, {}, **({"LastName": "X"} if n < 600 and n % 100 else {})) for n in range(count)
    ]
    cycle_id, _ = run_cycle(store, Plan(unchanged=unchanged), [], now=T0 + dt.timedelta(hours=2))
    assert store.escrow_entries() == []
    engine = create_engine(url)
    with engine.connect() as conn:
        rewritten = conn.execute(text("SELECT count(*) FROM snapshot WHERE last_cycle_id = :c"), {"c": cycle_id})
        assert rewritten.scalar() == 0
    engine.dispose()


def test_a_new_sqlite_database_has_16_kib_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    """``SQLITE_PAGE_SIZE`` applies to a database SQLite creates; one created with another page
    size (every state database before it) opens, keeps it and works as before."""
    import sqlite3

    new = tmp_path / "new.db"
    StateStore(f"sqlite:///{new}").close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE keep (x INTEGER)")
    store = StateStore(f"sqlite:///{old}")
    cycle_id = store.start_cycle(Mode.FULL, "fp")
    assert store.cycle(cycle_id) is not None
    store.close()
    sizes = {path.name: sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0] for path in (new, old)}
    assert sizes == {"new.db": 16_384, "old.db": 4_096}
    assert sqlite3.connect(new).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
