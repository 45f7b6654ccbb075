"""The exact rows a commit stores, on SQLite and PostgreSQL, read back raw through the driver.

``commit_cycle`` writes its big tables straight through the driver (executemany on SQLite, COPY
on PostgreSQL), so these tests pin every column of every row it writes, including values a
hand-written encoder could get wrong: NULL against the empty string, tabs, newlines, quotes,
backslashes, a lone ``\\.`` or ``\\N``, commas and non-ASCII text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from include.provisioning import artifacts, workspace
from include.provisioning.artifacts import PLAN, STORED_PLAN
from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    FieldChange,
    Mode,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
)
from include.provisioning.state import StateStore, bulk, deferred_indexes, schema
from include.provisioning.state.codec import JsonObject, StateError
from include.provisioning.state.rebuild import FullObservation
from include.provisioning.workspace import Workspace

T0 = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=7, microseconds=250)
ODD = 'tab\there, line\nbreak\r, "quoted", back\\slash, \\N, comma; é ✓'
"""Text a COPY or CSV encoder must get exactly right."""


def _user(n: int, action: Action, *, sf: str | None = None, upn: str | None = None, **fields: Any) -> PlannedChange:
    desired: dict[str, Any] = {"Username": f"u{n}@contoso.com", "LastName": f"Last{n}", "IsActive": True, **fields}
    return PlannedChange(
        f"entra-{n}",
        upn if upn is not None else f"u{n}@contoso.com",
        action,
        sf,
        {name: FieldChange(None, value) for name, value in desired.items()},
        match_value=f"u{n}@contoso.com",
        desired=desired,
        roles=["Standard User", "Custom: Sales"] if n % 2 else [],
    )


def _stored(plan: Plan, tmp_path: Path) -> Plan:
    """The plan as the commit stage reads it from the plan stage's file (``STORED_PLAN``: the
    values stay the JSON text the file holds)."""
    ws = Workspace(tmp_path / f"plan-{id(plan)}")
    ws.put("plan", plan, PLAN)
    stored = ws.get("plan", STORED_PLAN)
    assert stored == plan and all(type(c.desired) is JsonObject for c in stored.writes())
    return stored


ROW_GROUP = 3
"""Changes per row group in the row-group tests (``ROW_GROUP`` per part the commit streams)."""


def _streamed(plan: Plan, tmp_path: Path) -> list[Plan]:
    """The plan as the commit stage streams it: the file's row groups of ``ROW_GROUP`` changes,
    one ``Plan`` each (``row_groups`` must be patched in)."""
    ws = Workspace(tmp_path / f"plan-{id(plan)}")
    ws.put("plan", plan, PLAN)
    parts = list(ws.stream("plan", STORED_PLAN))
    changes = sum(len(getattr(part, group)) for part in parts for group in artifacts.PLAN_GROUPS)
    assert len(parts) == max(1, -(-changes // ROW_GROUP)) and all(
        sum(len(getattr(part, group)) for group in artifacts.PLAN_GROUPS) <= ROW_GROUP for part in parts
    )
    return parts


def _commit(
    store: StateStore,
    now: dt.datetime,
    plan: Plan | list[Plan],
    results: list[RecordResult],
    stored_in: Path | None = None,
    *,
    streamed: bool = False,
    **kwargs: Any,
) -> str:
    if stored_in is not None:
        assert isinstance(plan, Plan)
        plan = _streamed(plan, stored_in) if streamed else _stored(plan, stored_in)
    cycle_id = store.start_cycle(Mode.FULL, "fp", now=now)
    store.commit_cycle(
        CycleSummary(cycle_id, Mode.FULL, CycleStatus.SUCCEEDED, now, finished_at=now),
        plan=plan,
        results=results,
        delta_link="link",
        mapping_fingerprint="fp",
        now=now,
        escrow_schedule_hours=(6.0, 12.0),
        **{"quarantined": [], **kwargs},
    )
    return cycle_id


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def _two_cycles(store: StateStore, stored_in: Path | None = None, *, streamed: bool = False) -> tuple[str, str]:
    odd = _user(1, Action.CREATE, upn=ODD, Title=ODD, Note="", Score=1.5, Rank=3)
    odd.match_value = ""
    plain = _user(2, Action.CREATE, upn="")
    failing = _user(3, Action.CREATE)
    never = _user(4, Action.CREATE)
    held = _user(5, Action.DISABLE, sf="005000000000000005")
    matched = _user(6, Action.OTHER, sf="005000000000000006")
    matched.changes = {}
    unmatched = _user(7, Action.OTHER)
    unmatched.changes = {}
    first = _commit(
        store,
        T0,
        stored_in=stored_in,
        streamed=streamed,
        plan=Plan(creates=[odd, plain, failing, never], held_back=[held], unchanged=[matched, unmatched]),
        results=[
            RecordResult("entra-1", Action.CREATE, "005000000000000001", True),
            RecordResult("entra-2", Action.CREATE, "005000000000000002", True),
            RecordResult("entra-3", Action.CREATE, None, False, "DUPLICATE_USERNAME", ODD),
        ],
        quarantined=[
            QuarantinedUser("entra-q1", ODD, ["UPN is not e-mail shaped", ODD], ODD),
            QuarantinedUser("entra-q2", None, []),
        ],
        seen={"entra-1": ["Standard User"], "entra-3": [ODD], "entra-7": [], "entra-q1": ["x"]},
        seen_complete=True,
    )
    renamed = PlannedChange(
        "entra-1",
        ODD,
        Action.UPDATE,
        "005000000000000001",
        {"LastName": FieldChange("Last1", None), "Title": FieldChange(ODD, None)},
        roles=["Standard User", "Custom: Sales"],
    )
    disabled = _user(2, Action.DISABLE, sf="005000000000000002", IsActive=False)
    retried = _user(3, Action.CREATE)
    second = _commit(
        store,
        T1,
        stored_in=stored_in,
        streamed=streamed,
        plan=Plan(creates=[retried], updates=[renamed], deactivations=[disabled], unchanged=[never]),
        results=[
            RecordResult("entra-1", Action.UPDATE, "005000000000000001", True),
            RecordResult("entra-2", Action.DISABLE, None, False, None, None, unprocessed=True),
            RecordResult("entra-3", Action.CREATE, None, False, "UNABLE_TO_LOCK_ROW", "locked"),
        ],
        seen={"entra-3": ["Standard User"], "entra-6": ["Standard User"], "entra-8": ["Custom: Sales"]},
    )  # entra-6 is linked by the first cycle's snapshot row: not seen
    return first, second


@pytest.mark.parametrize(
    ("page", "through_file"), [(None, False), (2, False), (None, True), (None, "row groups"), (2, "row groups")]
)
def test_a_commit_stores_exactly_these_rows(
    store: StateStore,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    page: int | None,
    through_file: bool | str,
) -> None:
    """``through_file``: the plans as the commit stage reads them from the plan stage's file
    (their values kept as JSON text) store the very same rows; ``"row groups"``: streamed to the
    commit a row group of ``ROW_GROUP`` changes at a time, the way the commit stage reads it."""
    streamed = through_file == "row groups"
    if streamed:
        monkeypatch.setattr(artifacts, "ENCODE_BATCH", ROW_GROUP)
        monkeypatch.setattr(workspace, "BATCH_ROWS", ROW_GROUP)
    if page is not None:  # every batch boundary crossed, and SQLite's multi-row INSERTs split 2 + 1
        monkeypatch.setattr(bulk, "PAGE", page)
        monkeypatch.setattr(bulk, "PG_PAGE", page)
        monkeypatch.setattr(bulk, "SQLITE_VARIABLES", 10 * page)
        monkeypatch.setattr("include.provisioning.state.store.CHUNK", page + 1)
    first, second = _two_cycles(store, tmp_path if through_file else None, streamed=streamed)
    sqlite = store.dialect == "sqlite"

    def at(value: dt.datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value

    def flag(value: bool) -> Any:
        return int(value) if sqlite else value

    log = _rows(
        url,
        "SELECT id, cycle_id, action, status, entra_id, upn, sf_id, changes, error_code, error_message, at "
        "FROM provisioning_log ORDER BY id",
    )
    assert [row[0] for row in log] == list(range(log[0][0], log[0][0] + len(log)))
    odd_json = ODD.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    odd_json = odd_json.replace('"', '\\"')
    u1 = (
        '{"Username":[null,"u1@contoso.com"],"LastName":[null,"Last1"],"IsActive":[null,true],'
        f'"Title":[null,"{odd_json}"],"Note":[null,""],"Score":[null,1.5],"Rank":[null,3]}}'
    )
    u2 = '{"Username":[null,"u2@contoso.com"],"LastName":[null,"Last2"],"IsActive":[null,true]}'
    u3 = '{"Username":[null,"u3@contoso.com"],"LastName":[null,"Last3"],"IsActive":[null,true]}'
    u4 = '{"Username":[null,"u4@contoso.com"],"LastName":[null,"Last4"],"IsActive":[null,true]}'
    u5 = '{"Username":[null,"u5@contoso.com"],"LastName":[null,"Last5"],"IsActive":[null,true]}'
    retry = "UNABLE_TO_LOCK_ROW"
    unprocessed = "Salesforce did not process this record (its job stopped first); it is retried in the next cycle"
    assert [row[1:] for row in log] == [
        (first, "Create", "Success", "entra-1", ODD, "005000000000000001", u1, None, None, at(T0)),
        (first, "Create", "Success", "entra-2", "", "005000000000000002", u2, None, None, at(T0)),
        (first, "Create", "Failure", "entra-3", "u3@contoso.com", None, u3, "DUPLICATE_USERNAME", ODD, at(T0)),
        (
            first,
            "Create",
            "Warning",
            "entra-4",
            "u4@contoso.com",
            None,
            u4,
            "UNPROCESSED",
            "Salesforce returned no result for this record; it is retried in the next cycle",
            at(T0),
        ),
        (
            first,
            "StagedDelete",
            "Skipped",
            "entra-5",
            "u5@contoso.com",
            "005000000000000005",
            u5,
            None,
            "held back by the accidental-deletion threshold",
            at(T0),
        ),
        (first, "Quarantine", "Skipped", "entra-q1", ODD, None, "{}", None, f"UPN is not e-mail shaped; {ODD}", at(T0)),
        (first, "Quarantine", "Skipped", "entra-q2", None, None, "{}", None, "quarantined (no reason given)", at(T0)),
        (
            second,
            "Create",
            "Failure",
            "entra-3",
            "u3@contoso.com",
            None,
            u3,
            retry,
            "locked",
            at(T1),
        ),
        (
            second,
            "Update",
            "Success",
            "entra-1",
            ODD,
            "005000000000000001",
            f'{{"LastName":["Last1",null],"Title":["{odd_json}",null]}}',
            None,
            None,
            at(T1),
        ),
        (
            second,
            "Disable",
            "Warning",
            "entra-2",
            "u2@contoso.com",
            "005000000000000002",
            '{"Username":[null,"u2@contoso.com"],"LastName":[null,"Last2"],"IsActive":[null,false]}',
            "UNPROCESSED",
            unprocessed,
            at(T1),
        ),
    ]

    snapshot = _rows(
        url,
        "SELECT entra_id, sf_id, match_value, is_active, fields, roles, last_cycle_id, updated_at "
        "FROM snapshot ORDER BY entra_id",
    )
    roles = '["Standard User","Custom: Sales"]'
    assert snapshot == [
        (
            "entra-1",
            "005000000000000001",
            "",
            flag(True),
            '{"Username":"u1@contoso.com","LastName":null,"IsActive":true,"Title":null,"Note":"","Score":1.5,"Rank":3}',
            roles,
            second,
            at(T1),
        ),
        (
            "entra-2",
            "005000000000000002",
            "u2@contoso.com",
            flag(True),
            '{"Username":"u2@contoso.com","LastName":"Last2","IsActive":true}',
            "[]",
            first,
            at(T0),
        ),
        (
            "entra-6",
            "005000000000000006",
            "u6@contoso.com",
            flag(True),
            '{"Username":"u6@contoso.com","LastName":"Last6","IsActive":true}',
            "[]",
            first,
            at(T0),
        ),
    ]

    escrow = _rows(
        url,
        "SELECT entra_id, action, attempts, first_failed_at, next_attempt_at, error_code, error_message, "
        "last_cycle_id FROM escrow ORDER BY entra_id",
    )
    assert escrow == [
        ("entra-2", "Disable", 0, at(T1), at(T1), "UNPROCESSED", unprocessed, second),
        ("entra-3", "Create", 2, at(T0), at(T1 + dt.timedelta(hours=12)), retry, "locked", second),
    ]

    quarantine = _rows(url, "SELECT id, cycle_id, entra_id, upn, reasons, display_name FROM quarantine ORDER BY id")
    odd_reason = f'["UPN is not e-mail shaped","{odd_json}"]'
    assert [row[1:] for row in quarantine] == [
        (first, "entra-q1", ODD, odd_reason, ODD),
        (first, "entra-q2", None, "[]", None),
    ]

    seen = _rows(url, "SELECT entra_id, roles, last_cycle_id FROM seen ORDER BY entra_id")
    assert seen == [
        ("entra-3", '["Standard User"]', second),
        ("entra-7", "[]", first),
        ("entra-8", '["Custom: Sales"]', second),
        ("entra-q1", '["x"]', first),
    ]


def test_committing_the_same_cycle_twice_is_refused_and_changes_nothing(store: StateStore, url: str) -> None:
    first, _ = _two_cycles(store)
    tables = ("provisioning_log", "snapshot", "escrow", "quarantine", "seen")
    before = {table: _rows(url, f"SELECT * FROM {table}") for table in tables}
    with pytest.raises(Exception, match="already committed"):
        store.commit_cycle(
            CycleSummary(first, Mode.FULL, CycleStatus.SUCCEEDED, T0),
            plan=Plan(creates=[_user(9, Action.CREATE)]),
            results=[RecordResult("entra-9", Action.CREATE, "005000000000000009", True)],
            quarantined=[],
            delta_link="link",
            mapping_fingerprint="fp",
            now=T0,
            escrow_schedule_hours=(6.0,),
        )
    assert {table: _rows(url, f"SELECT * FROM {table}") for table in tables} == before


TABLES = {
    "provisioning_log": "action, status, entra_id, upn, sf_id, changes, error_code, error_message",
    "snapshot": "entra_id, sf_id, match_value, is_active, fields, roles",
    "escrow": "entra_id, action, attempts, error_code, error_message",
    "quarantine": "entra_id, upn, reasons",
    "seen": "entra_id, roles",
}
"""Each table's columns that do not name a cycle or a time (two runs of the same cycles differ there)."""


def _sf(n: int) -> str:
    return f"005{n:015d}"


def _ten_users_two_cycles(store: StateStore, tmp_path: Path, *, streamed: bool) -> dict[str, list[Any]]:
    """Ten users over two cycles through the plan file (streamed in row groups of ``ROW_GROUP``,
    or read whole): a first sync with failures, then a full cycle with updates, a deactivation,
    unchanged users and a rebuild; every table's rows after each."""
    creates = [_user(n, Action.CREATE) for n in range(1, 9)]
    unchanged = [_user(n, Action.OTHER, sf=_sf(n)) for n in (9, 10)]
    for change in unchanged:
        change.changes = {}
    first_results = [
        RecordResult(c.entra_id, Action.CREATE, _sf(int(c.entra_id.split("-")[1])), c.entra_id != "entra-4")
        for c in creates[:-1]
    ]  # entra-4 fails, entra-8 was never processed
    seen = {f"entra-{n}": ["Standard User"] for n in range(1, 12)}
    tables: dict[str, list[Any]] = {}
    _commit(
        store,
        T0,
        Plan(creates=creates, unchanged=unchanged),
        first_results,
        tmp_path / "first",
        streamed=streamed,
        quarantined=[QuarantinedUser("entra-11", "u11@contoso.com", ["mail: missing"])],
        seen=seen,
        seen_complete=True,
    )
    tables["first"] = _table_rows(store)
    renamed = _user(1, Action.UPDATE, sf="005000000000000001", LastName="Renamed")
    renamed.changes = {"LastName": FieldChange("Last1", "Renamed")}
    gone = _user(2, Action.DISABLE, sf="005000000000000002", IsActive=False)
    gone.changes = {"IsActive": FieldChange(True, False)}
    retried = _user(4, Action.CREATE)
    same = [_user(n, Action.OTHER, sf=_sf(n)) for n in (3, 5, 6, 7)]
    for change in same:
        change.changes = {}
    _commit(
        store,
        T1,
        Plan(creates=[retried], updates=[renamed], deactivations=[gone], unchanged=same),
        [
            RecordResult("entra-1", Action.UPDATE, "005000000000000001", True),
            RecordResult("entra-2", Action.DISABLE, "005000000000000002", True),
            RecordResult("entra-4", Action.CREATE, None, False, "UNABLE_TO_LOCK_ROW", "locked"),
        ],
        tmp_path / "second",
        streamed=streamed,
        seen={k: v for k, v in seen.items() if k not in ("entra-8", "entra-11")},
        seen_complete=True,
        observed=FullObservation(evaluated=frozenset(f"entra-{n}" for n in range(1, 8))),
    )
    tables["second"] = _table_rows(store)
    return tables


def _table_rows(store: StateStore) -> dict[str, list[Any]]:
    return {
        table: _rows(store.url, f"SELECT {columns} FROM {table} ORDER BY {'id' if 'log' in table else 'entra_id'}")
        for table, columns in TABLES.items()
    }


def test_ten_users_committed_three_per_row_group_store_the_rows_of_the_whole_plan(
    open_store: Callable[..., StateStore], url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit stage streams the plan file a row group at a time, each part's rows written
    before the next is read (priors looked up per part, the rebuild and the seen users from what
    all parts wrote): the tables end as committing the whole plan at once leaves them."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", ROW_GROUP)
    monkeypatch.setattr(workspace, "BATCH_ROWS", ROW_GROUP)
    streamed = _ten_users_two_cycles(open_store(), tmp_path / "streamed", streamed=True)
    store = open_store()
    with create_engine(url).begin() as conn:  # the same database again, emptied
        for table in (*TABLES, "cycles", "watermark"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    whole = _ten_users_two_cycles(store, tmp_path / "whole", streamed=False)
    assert streamed == whole
    first, second = streamed["first"], streamed["second"]
    assert [row[:3] for row in first["provisioning_log"]] == [
        *(("Create", "Success", f"entra-{n}") for n in (1, 2, 3)),
        ("Create", "Failure", "entra-4"),
        *(("Create", "Success", f"entra-{n}") for n in (5, 6, 7)),
        ("Create", "Warning", "entra-8"),
        ("Quarantine", "Skipped", "entra-11"),
    ]
    assert [row[0] for row in first["snapshot"]] == sorted(f"entra-{n}" for n in (1, 2, 3, 5, 6, 7, 9, 10))
    assert [row[0] for row in first["escrow"]] == ["entra-4", "entra-8"]
    assert [row[0] for row in second["snapshot"]] == sorted(f"entra-{n}" for n in (1, 2, 3, 5, 6, 7))
    assert [row[:3] for row in second["snapshot"] if row[0] in ("entra-1", "entra-2")] == [
        ("entra-1", "005000000000000001", "u1@contoso.com"),
        ("entra-2", "005000000000000002", "u2@contoso.com"),
    ]
    assert '"LastName":"Renamed"' in second["snapshot"][0][4] and second["snapshot"][1][3] in (False, 0)
    assert [row[:3] for row in second["escrow"]] == [("entra-4", "Create", 2)]
    assert [row[0] for row in second["seen"]] == ["entra-10", "entra-4", "entra-9"]


def _log_index_sql(url: str) -> list[tuple[Any, ...]]:
    if not url.startswith("sqlite"):
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'provisioning_log'"
        sql += " AND schemaname = current_schema()"
    else:
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'provisioning_log'"
    return sorted(_rows(url, sql))


def test_log_indexes_built_after_a_bulk_load_leave_the_same_rows_and_indexes(
    open_store: Callable[..., StateStore], url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync's log rows go in without the log's indexes, which are then created again from
    their own SQL (SQLite; ``deferred_indexes``): the tables end as with the indexes in place, the
    database has the same indexes, and SQLite finds them consistent with the rows."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", ROW_GROUP)
    monkeypatch.setattr(workspace, "BATCH_ROWS", ROW_GROUP)
    rebuilt: list[bool] = []
    real = deferred_indexes.should_rebuild
    monkeypatch.setattr(
        deferred_indexes, "should_rebuild", lambda adding, holding: rebuilt.append(real(adding, holding)) or rebuilt[-1]
    )
    monkeypatch.setattr(deferred_indexes, "MIN_ROWS", 10**9)
    in_place = _ten_users_two_cycles(open_store(), tmp_path / "in-place", streamed=True)
    indexes = _log_index_sql(url)
    assert len(indexes) >= 7 and not any(rebuilt)
    store = open_store()
    with create_engine(url).begin() as conn:  # the same database again, emptied
        for table in (*TABLES, "cycles", "watermark"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    monkeypatch.setattr(deferred_indexes, "MIN_ROWS", 1)
    rebuilt.clear()
    deferred = _ten_users_two_cycles(store, tmp_path / "deferred", streamed=True)
    assert deferred == in_place
    assert _log_index_sql(url) == indexes
    if store.dialect == "sqlite":
        # the first cycle (9 rows into an empty log) rebuilds; the second (4 rows into 9) does not
        assert rebuilt == [True, False]
        assert _rows(url, "PRAGMA integrity_check") == [("ok",)]
    else:  # PostgreSQL keeps its indexes (DROP INDEX would lock the page's readers out)
        assert rebuilt == []


def test_a_failed_commit_keeps_the_log_indexes(store: StateStore, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexes are dropped inside the commit's transaction: a commit that fails after the drop
    rolls them back with its rows."""
    monkeypatch.setattr(deferred_indexes, "MIN_ROWS", 1)
    indexes = _log_index_sql(url)
    stray = RecordResult("entra-9", Action.CREATE, "005000000000000009", True)  # no planned write
    with pytest.raises(StateError, match="matches no planned write"):
        _commit(store, T0, Plan(creates=[_user(1, Action.CREATE)]), [stray])
    assert _log_index_sql(url) == indexes
    assert _rows(url, "SELECT count(*) FROM provisioning_log") == [(0,)]


@pytest.mark.parametrize(
    ("adding", "holding", "rebuild"),
    [(50_000, 0, True), (49_999, 0, False), (1_000_000, 999_999, True), (100_000, 100_001, False), (0, 0, False)],
)
def test_indexes_are_rebuilt_only_for_a_load_at_least_as_large_as_the_table(
    adding: int, holding: int, rebuild: bool
) -> None:
    assert deferred_indexes.should_rebuild(adding, holding) is rebuild


def test_a_bulk_load_keeps_the_logs_sparse_indexes_in_place(store: StateStore, url: str) -> None:
    """``deferred_indexes`` drops the log's indexes but those named in ``keep`` (the partial ones,
    ``schema.LOG_SPARSE_INDEXES``), and creates the dropped ones again from their own SQL."""
    indexes = _log_index_sql(url)
    log, keep = schema.provisioning_log, schema.LOG_SPARSE_INDEXES
    with (
        store._engine.begin() as conn,
        deferred_indexes.deferred_indexes(conn, log, adding=10**6, keep=keep) as rebuilt,
    ):
        if store.dialect == "sqlite":  # what this transaction sees (other connections see the committed ones)
            sql = "SELECT name FROM sqlite_master WHERE tbl_name = 'provisioning_log' AND sql LIKE 'CREATE INDEX%'"
            assert rebuilt and {name for (name,) in conn.exec_driver_sql(sql)} == set(keep)
        else:  # PostgreSQL keeps every index
            assert not rebuilt
    assert _log_index_sql(url) == indexes and set(keep) <= {name for name, _ in indexes}
