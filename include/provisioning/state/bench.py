"""Measure the state store at volume: ``python -m include.provisioning.state.bench --rows 100000``.

Times what a cycle asks of the store with N users: the first commit (N creates: N log rows and
N snapshot rows), reading the snapshot back as a DataFrame, a full cycle where nothing changed
(N unchanged users compared, none rewritten) and an incremental commit touching 1 % of users
(with 1 in 10 of those failing into escrow). Runs on a temporary SQLite file and, unless
``--no-postgres``, on a throwaway PostgreSQL database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    FieldChange,
    Mode,
    Plan,
    PlannedChange,
    RecordResult,
)
from include.provisioning.state.store import StateStore

SCHEDULE = (6.0, 12.0, 24.0)


def _desired(n: int) -> dict[str, Any]:
    upn = f"user{n:07d}@contoso.onmicrosoft.com"
    return {
        "Username": upn,
        "Email": upn,
        "FirstName": "Given",
        "LastName": f"Surname{n}",
        "Alias": f"u{n}"[:8],
        "CommunityNickname": f"user{n:07d}",
        "FederationIdentifier": upn,
        "ProfileId": "00e5e000000AbCdEAA",
        "TimeZoneSidKey": "Europe/Paris",
        "LocaleSidKey": "en_US",
        "LanguageLocaleKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "IsActive": True,
    }


def _sf_id(n: int) -> str:
    return f"005{n:015d}"


def _commit(store: StateStore, plan: Plan, results: list[RecordResult], now: dt.datetime) -> None:
    cycle_id = store.start_cycle(Mode.FULL, "bench", now=now)
    store.commit_cycle(
        CycleSummary(cycle_id, Mode.FULL, CycleStatus.SUCCEEDED, now),
        plan=plan,
        results=results,
        quarantined=[],
        delta_link="https://graph.microsoft.com/v1.0/users/delta?$deltatoken=bench",
        mapping_fingerprint="bench",
        now=now,
        escrow_schedule_hours=SCHEDULE,
    )


Timing = tuple[str, int, float, float | None]
"""Operation, rows, seconds, peak MB allocated by it (None unless tracemalloc is on)."""


def _timed(label: str, rows: int, timings: list[Timing], action: Callable[[], object]) -> None:
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    peak = (tracemalloc.get_traced_memory()[1] - base) / 1e6 if tracing else None
    timings.append((label, rows, seconds, peak))


def _creates(rows: int) -> tuple[list[str], list[dict[str, Any]], list[PlannedChange], list[RecordResult]]:
    """``rows`` synthetic users created in Salesforce: ids, desired fields, the plan, the results."""
    ids = [str(uuid.uuid4()) for _ in range(rows)]  # Entra object ids: random order, like the real ones
    desired = [_desired(n) for n in range(rows)]
    creates = [
        PlannedChange(
            ids[n],
            desired[n]["Username"],
            Action.CREATE,
            None,
            {k: FieldChange(None, v) for k, v in desired[n].items()},
            match_value=desired[n]["Username"],
            desired=desired[n],
            roles=["Standard User"],
            display_name=f"Given Surname{n}",  # the log's display name column and index are paid for
        )
        for n in range(rows)
    ]
    results = [RecordResult(ids[n], Action.CREATE, _sf_id(n), True) for n in range(rows)]
    return ids, desired, creates, results


def seed_managed_users(store: StateStore, rows: int, now: dt.datetime) -> None:
    """Commit one cycle that created ``rows`` synthetic users (log and snapshot rows), so a
    benchmark meets a state store at volume (their ids are random: no tenant has them)."""
    _, _, creates, results = _creates(rows)
    _commit(store, Plan(creates=creates), results, now)


def measure(url: str, rows: int) -> list[Timing]:
    """Timings of the store's heavy operations on ``url``."""
    ids, desired, creates, results = _creates(rows)
    unchanged = [
        PlannedChange(
            ids[n],
            c.user_principal_name,
            Action.OTHER,
            _sf_id(n),
            {},
            c.match_value,
            c.desired,
            c.roles,
            c.display_name,
        )
        for n, c in enumerate(creates)
    ]
    touched = range(0, rows, 100)
    updates = [
        PlannedChange(
            ids[n],
            creates[n].user_principal_name,
            Action.UPDATE,
            _sf_id(n),
            {"LastName": FieldChange(f"Surname{n}", "Renamed")},
            creates[n].match_value,
            {**desired[n], "LastName": "Renamed"},
            ["Standard User"],
            f"Given Surname{n}",
        )
        for n in touched
    ]
    update_results = [
        RecordResult(u.entra_id, Action.UPDATE, u.sf_id, i % 10 != 0, None if i % 10 else "UNABLE_TO_LOCK_ROW")
        for i, u in enumerate(updates)
    ]
    now = dt.datetime.now(dt.UTC)
    timings: list[Timing] = []
    store = StateStore(url)
    try:
        _timed(
            "commit: creates (log + snapshot)",
            rows,
            timings,
            lambda: _commit(store, Plan(creates=creates), results, now),
        )
        _timed("read snapshot as DataFrame", rows, timings, store.snapshot)
        _timed(
            "commit: full cycle, nothing changed",
            rows,
            timings,
            lambda: _commit(store, Plan(unchanged=unchanged), [], now + dt.timedelta(hours=1)),
        )
        _timed(
            "commit: 1 % updated, 10 % of those fail",
            len(updates),
            timings,
            lambda: _commit(store, Plan(updates=updates), update_results, now + dt.timedelta(hours=2)),
        )
        _timed("due escrow", len(store.escrow_entries()), timings, lambda: store.due_escrow(now + dt.timedelta(days=1)))
    finally:
        store.close()
    return timings


@contextmanager
def _postgres(admin_dsn: str) -> Iterator[str]:
    import psycopg2

    name = f"provisioning_state_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        params = admin.get_dsn_parameters()
        yield f"postgresql+psycopg2://{params['user']}@{params['host']}:{params['port']}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres-admin-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--memory", action="store_true", help="also trace peak memory per operation (slower)")
    args = parser.parse_args(argv)
    if args.memory:
        tracemalloc.start()
    results: list[tuple[str, Timing]] = []
    with tempfile.TemporaryDirectory() as folder:
        results += [("sqlite", timing) for timing in measure(f"sqlite:///{Path(folder) / 'bench.db'}", args.rows)]
    if not args.no_postgres:
        with _postgres(args.postgres_admin_dsn) as url:
            results += [("postgresql", timing) for timing in measure(url, args.rows)]
    print(f"{'backend':<11} {'operation':<42} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for backend, (label, rows, seconds, peak) in results:
        rate = f"{rows / seconds:,.0f}" if seconds > 0 else "-"
        memory = f"{peak:,.0f}" if peak is not None else "-"
        print(f"{backend:<11} {label:<42} {rows:>9,} {seconds:>8.2f} {rate:>9} {memory:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
