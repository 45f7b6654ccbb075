"""Benchmark the Provisioning page's JSON API on a large provisioning log, SQLite and PostgreSQL.

    python scripts/benchmark_provisioning_page.py [--rows 1000000] [--cycles 2000] [--repeat 7]
        [--backends sqlite,postgresql] [--pg-url postgresql+psycopg2://postgres@127.0.0.1:5432/test]

For each back end: a fresh state store (``StateStore`` creates the schema and its indexes), filled
with ``--rows`` log rows spread over ``--cycles`` cycles 20 minutes apart (a bulk insert: SQLite's
executemany in one transaction, PostgreSQL's ``COPY``), then ``ANALYZE``. The mix is a directory's:
mostly updates and successes, a few percent of failures with Salesforce error codes, creates,
deactivations, reactivations, held-back deletions and quarantines, over a population of users with
their UPNs, display names ("Adele Vance": a dozen given names and ten surnames, so a name is
shared by about 1 % of the log, as common names are), Entra object ids and Salesforce ids; 2 % of
the rows have no display name (written before schema version 7). Every held-back deactivation and
escrowed record the overview lists is there too.

Every route and filter of the API is then called in-process through the FastAPI app
(``scripts/page_client.py``: a ``TestClient`` on ``entra_provisioning.ui.app``, Airflow's access
checks overridden to allow, the client tests/ui use too), so a time includes the query, the row shaping and the JSON;
``--repeat`` calls each, and the table gives the median in milliseconds per back end. The target
is "well under a second" for every row. PostgreSQL uses a database of its own, created from the
``--pg-url`` database and dropped at the end; the SQLite file lives in a temporary directory.
Numbers are printed as measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import orjson  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from include.provisioning.model import Action, CycleStatus, Status  # noqa: E402
from include.provisioning.state import StateStore, schema  # noqa: E402
from include.provisioning.state.store import LOG_COLUMNS  # noqa: E402
from scripts.airflow_server import airflow_environment  # noqa: E402
from scripts.page_client import page_client  # noqa: E402

TARGET = "well under 1 s"
CYCLE_SPACING = dt.timedelta(minutes=20)
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
ERROR_CODES = (
    ("DUPLICATE_USERNAME", "Duplicate Username. The username already exists in this or another Salesforce org."),
    ("INVALID_EMAIL_ADDRESS", "Email: invalid email address: {upn}"),
    ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"),
    ("FIELD_INTEGRITY_EXCEPTION", "Profile ID: id value of incorrect type"),
    ("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded"),
)
# (action, weight); statuses below. Shares of a tenant's steady state: mostly attribute updates.
ACTIONS = (
    (Action.UPDATE, 80),
    (Action.CREATE, 8),
    (Action.DISABLE, 5),
    (Action.REACTIVATE, 1),
    (Action.STAGED_DELETE, 1),
    (Action.QUARANTINE, 2),
    (Action.OTHER, 3),
)
STATUSES = ((Status.SUCCESS, 92), (Status.FAILURE, 4), (Status.SKIPPED, 3), (Status.WARNING, 1))
GIVEN = ("adele", "alex", "diego", "grady", "henrietta", "isaiah", "johanna", "joni", "lee", "lidia", "lynne", "megan")
SURNAMES = ("vance", "wilber", "siciliani", "archie", "mueller", "langer", "lauridsen", "sherman", "gu", "holt")
PROPERTIES = ("Title", "Department", "Phone", "MobilePhone", "ManagerId", "City", "FirstName", "LastName")
_SF_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SF_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
"""The three characters an 18-character id adds are a checksum of the case of the first 15, each
one of these 32 (Salesforce Help, "What are Salesforce IDs composed of?"): never lower case."""


NAMELESS_SHARE = 0.02
"""Rows without a display name: written before the log kept one (schema version 7)."""


@dataclass(frozen=True)
class Person:
    entra_id: str
    upn: str
    sf_id: str
    display_name: str


@dataclass(frozen=True)
class Filled:
    """What the queries look for: a cycle in the middle, a user, ids of the log's range."""

    middle_cycle: str
    person: Person
    min_id: int
    max_id: int
    middle_at: dt.datetime


def people(count: int, rng: random.Random) -> list[Person]:
    """``count`` users with distinct UPNs (given.surname<n>@contoso.example), display names
    (``Given Surname``, shared), GUIDs and 18-character Salesforce User ids (key prefix 005)."""
    found = []
    for n in range(count):
        given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
        upn = f"{given}.{surname}{n}@contoso.example"
        key = "005" + "".join(rng.choice(_SF_ALPHABET) for _ in range(12))
        sf_id = key + "".join(rng.choice(_SF_CHECKSUM_ALPHABET) for _ in range(3))
        entra_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        found.append(Person(entra_id, upn, sf_id, f"{given.title()} {surname.title()}"))
    return found


def _weighted(choices: tuple[tuple[Any, int], ...], rng: random.Random, k: int) -> list[Any]:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices], k=k)


def cycle_id_at(at: dt.datetime, n: int) -> str:
    """A cycle id as the engine writes them: start time and a short suffix."""
    return f"{at:%Y%m%dT%H%M%SZ}-{n:04x}"


def log_rows(rows: int, cycles: int, population: list[Person], rng: random.Random) -> Iterator[dict[str, Any]]:
    """``rows`` log rows over ``cycles`` cycles in id (= time) order, as ``provisioning_log`` dicts."""
    per_cycle, extra = divmod(rows, cycles)
    for n in range(cycles):
        started = START + n * CYCLE_SPACING
        count = per_cycle + (1 if n < extra else 0)
        actions = _weighted(ACTIONS, rng, count)
        statuses = _weighted(STATUSES, rng, count)
        for i in range(count):
            person = rng.choice(population)
            action, status = actions[i], statuses[i]
            error_code, error_message = None, None
            if status is Status.FAILURE:
                error_code, message = rng.choice(ERROR_CODES)
                error_message = message.format(upn=person.upn)
            changes: dict[str, list[Any]] = {}
            if action is Action.UPDATE:
                prop = rng.choice(PROPERTIES)
                changes[prop] = [f"old {prop.lower()} {rng.randrange(100)}", f"new {prop.lower()} {rng.randrange(100)}"]
            elif action is Action.CREATE:
                changes = {"Username": [None, person.upn], "Email": [None, person.upn], "IsActive": [None, True]}
            elif action in (Action.DISABLE, Action.REACTIVATE):
                active = action is Action.REACTIVATE
                changes = {"IsActive": [not active, active]}
            yield {
                "cycle_id": cycle_id_at(started, n),
                "action": action.value,
                "status": status.value,
                "entra_id": person.entra_id,
                "upn": person.upn,
                "display_name": None if rng.random() < NAMELESS_SHARE else person.display_name,
                "sf_id": None if action is Action.CREATE and status is not Status.SUCCESS else person.sf_id,
                "changes": orjson.dumps(changes).decode(),
                "error_code": error_code,
                "error_message": error_message,
                "at": started + dt.timedelta(milliseconds=40 * i),
            }


def cycle_rows(rows: int, cycles: int) -> list[dict[str, Any]]:
    """The ``cycles`` rows, each committed, with counts of about its share of the log."""
    per_cycle = max(1, rows // cycles)
    found = []
    for n in range(cycles):
        started = START + n * CYCLE_SPACING
        finished = started + dt.timedelta(milliseconds=40 * per_cycle + 5000)
        found.append(
            {
                "id": cycle_id_at(started, n),
                "mode": "full" if n % 72 == 0 else "delta",
                "status": CycleStatus.SUCCEEDED.value,
                "started_at": started,
                "heartbeat_at": finished,
                "finished_at": finished,
                "committed_at": finished,
                "created": per_cycle * 8 // 100,
                "updated": per_cycle * 80 // 100,
                "unchanged": 40_000,
                "deactivated": per_cycle * 5 // 100,
                "quarantined": per_cycle * 2 // 100,
                "escrowed": per_cycle * 4 // 100,
                "held_back": per_cycle // 100,
                "reason": None,
                "phase_seconds": "{}",
                "requests": "{}",
                "run_key": f"airflow:entra_salesforce_provisioning:scheduled__{started.isoformat()}",
                "stage": "commit",
            }
        )
    return found


def escrow_rows(population: list[Person], count: int, now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "entra_id": person.entra_id,
            "action": Action.UPDATE.value,
            "attempts": 1 + n % 5,
            "first_failed_at": now - dt.timedelta(hours=n % 48),
            "next_attempt_at": now + dt.timedelta(minutes=n % 90),
            "error_code": ERROR_CODES[n % len(ERROR_CODES)][0],
            "error_message": ERROR_CODES[n % len(ERROR_CODES)][1],
            "last_cycle_id": None,
        }
        for n, person in enumerate(population[:count])
    ]


BATCH = 50_000
COPY_LOG = f"COPY provisioning_log ({', '.join(LOG_COLUMNS)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy_csv(batch: list[dict[str, Any]]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in batch:
        writer.writerow(["\\N" if row[name] is None else _pg_text(row[name]) for name in LOG_COLUMNS])
    buffer.seek(0)
    return buffer


def _pg_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def fill(url: str, rows: int, cycles: int, seed: int) -> Filled:
    """A fresh store at ``url`` with ``rows`` log rows over ``cycles`` cycles (see the module)."""
    rng = random.Random(seed)
    population = people(max(1_000, min(rows // 20, 100_000)), rng)
    StateStore(url).close()  # the schema, its indexes and its version
    engine = create_engine(url)
    now = START + cycles * CYCLE_SPACING
    try:
        with engine.begin() as conn:
            conn.execute(insert(schema.cycles), cycle_rows(rows, cycles))
            conn.execute(insert(schema.escrow), escrow_rows(population, 200, now))
        started = time.perf_counter()
        written = 0
        for batch in _batches(log_rows(rows, cycles, population, rng)):
            if engine.dialect.name == "postgresql":
                raw = engine.raw_connection()
                try:
                    with raw.cursor() as cursor:
                        cursor.copy_expert(COPY_LOG, _copy_csv(batch))
                    raw.commit()
                finally:
                    raw.close()
            else:
                with engine.begin() as conn:
                    conn.execute(insert(schema.provisioning_log), batch)
            written += len(batch)
            print(f"  {engine.dialect.name}: {written:,} rows ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            low, high = conn.execute(text("SELECT min(id), max(id) FROM provisioning_log")).one()
    finally:
        engine.dispose()
    middle = START + (cycles // 2) * CYCLE_SPACING
    return Filled(cycle_id_at(middle, cycles // 2), rng.choice(population), int(low), int(high), middle)


def queries(filled: Filled) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, path, params) of every page and filter the benchmark times."""
    person, middle, early = filled.person, filled.middle_at, START + dt.timedelta(days=1)
    window = {"since": middle.isoformat(), "until": (middle + dt.timedelta(hours=1)).isoformat()}
    early_window = {"since": early.isoformat(), "until": (early + dt.timedelta(hours=1)).isoformat()}
    week = {"since": (middle - dt.timedelta(days=7)).isoformat(), "until": middle.isoformat()}
    first_name = person.upn.split(".")[0] + "."  # one of a dozen given names: ~8 % of the log
    given = person.upn.split(".")[0]  # the start of the UPN and of the display name: both indexes
    mixed = person.display_name[:-2].swapcase()  # "aDELE vAN": ~1 % of the log (a shared name)
    deep = filled.min_id + (filled.max_id - filled.min_id) // 100  # 99 % of the log is newer
    return [
        ("overview", "/api/overview", {}),
        ("cycles (chart, last 30)", "/api/cycles", {"limit": 30}),
        ("log: first page", "/api/log", {}),
        ("log: next page 99 % deep", "/api/log", {"before": deep}),
        ("search: UPN prefix", "/api/log", {"q": person.upn.split("@")[0][:-1]}),
        ("search: UPN prefix, next page 99 % deep", "/api/log", {"q": person.upn[:4], "before": deep}),
        ("search: display name prefix, mixed case", "/api/log", {"q": mixed}),
        ("search: display name prefix, next page 99 % deep", "/api/log", {"q": mixed, "before": deep}),
        ("search: given name (UPN or display name)", "/api/log", {"q": given}),
        ("search: name nobody has", "/api/log", {"q": "Nobody Here"}),
        ("search: Entra id", "/api/log", {"q": person.entra_id}),
        ("search: Salesforce id (18)", "/api/log", {"q": person.sf_id}),
        ("search: Salesforce id (15)", "/api/log", {"q": person.sf_id[:15]}),
        ("filter: cycle", "/api/log", {"cycle_id": filled.middle_cycle}),
        ("filter: action Update", "/api/log", {"action": "Update"}),
        ("filter: action Reactivate", "/api/log", {"action": "Reactivate"}),
        ("filter: action StagedDelete, next page 99 % deep", "/api/log", {"action": "StagedDelete", "before": deep}),
        ("filter: status Failure", "/api/log", {"status": "Failure"}),
        ("filter: status Success", "/api/log", {"status": "Success"}),
        ("filter: error code", "/api/log", {"error_code": "LICENSE_LIMIT_EXCEEDED"}),
        ("filter: time range (1 h, mid-log)", "/api/log", window),
        ("filter: time range (1 h, 99 % deep)", "/api/log", early_window),
        ("filter: until (99 % deep)", "/api/log", {"until": early.isoformat()}),
        ("filter: since (99 % deep)", "/api/log", {"since": early.isoformat()}),
        ("filter: time range (7 days, mid-log)", "/api/log", week),
        ("combined: cycle + status Failure", "/api/log", {"cycle_id": filled.middle_cycle, "status": "Failure"}),
        ("combined: action Disable + status Failure", "/api/log", {"action": "Disable", "status": "Failure"}),
        ("combined: first name + action Update", "/api/log", {"q": first_name, "action": "Update"}),
        ("combined: display name + action Update", "/api/log", {"q": person.display_name, "action": "Update"}),
        (
            "combined: given name + Reactivate + Failure",
            "/api/log",
            {"q": given, "action": "Reactivate", "status": "Failure"},
        ),
        (
            "combined: first name + Reactivate + Failure",
            "/api/log",
            {"q": first_name, "action": "Reactivate", "status": "Failure"},
        ),
        ("combined: 1 h + action Create + Success", "/api/log", {**window, "action": "Create", "status": "Success"}),
        ("combined: 7 days + error code", "/api/log", {**week, "error_code": "DUPLICATE_USERNAME"}),
        ("details: one row", f"/api/log/{filled.min_id + (filled.max_id - filled.min_id) // 2}", {}),
        ("CSV export: one cycle", "/api/log.csv", {"cycle_id": filled.middle_cycle}),
        ("CSV export: one cycle's failures", "/api/log.csv", {"cycle_id": filled.middle_cycle, "status": "Failure"}),
        ("CSV export: a display name, 1 week", "/api/log.csv", {**week, "q": person.display_name}),
    ]


def time_queries(url: str, filled: Filled, repeat: int) -> dict[str, tuple[float, str]]:
    """Median milliseconds and what came back (rows, bytes) for each of ``queries``."""
    measured: dict[str, tuple[float, str]] = {}
    with page_client(url) as client:
        for label, path, params in queries(filled):
            times, answer = [], None
            for _ in range(repeat):
                started = time.perf_counter()
                answer = client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"{label}: {answer.status_code} {answer.text[:300]}")
            measured[label] = (statistics.median(times), _shape(answer))
    return measured


def _shape(answer: Any) -> str:
    if answer.headers["content-type"].startswith("text/csv"):
        return f"{answer.text.count(chr(10)) - 1} rows"
    body = answer.json()
    if "rows" in body:
        return f"{len(body['rows'])} rows"
    if "cycles" in body:
        return f"{len(body['cycles'])} cycles"
    return f"{len(answer.content):,} bytes"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of its own next to ``admin_url``'s, dropped afterwards."""
    name = f"bench_page_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, tuple[float, str]]:
    def measure(url: str) -> dict[str, tuple[float, str]]:
        started = time.perf_counter()
        filled = fill(url, args.rows, args.cycles, args.seed)
        print(f"  {backend}: filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return time_queries(url, filled, args.repeat)

    if backend == "sqlite":
        return measure(f"sqlite:///{workdir / 'state.db'}")
    with postgres_database(args.pg_url) as url:
        return measure(url)


def print_table(rows: int, results: dict[str, dict[str, tuple[float, str]]]) -> None:
    backends = list(results)
    labels = list(next(iter(results.values())))
    header = ["query", *(f"{name} median ms" for name in backends), "answer"]
    widths = [48, *([20] * len(backends)), 12]
    print(f"\nProvisioning page API at {rows:,} log rows (in-process TestClient, median of each)")
    print("  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=False)) + "  target")
    for label in labels:
        cells = [label, *(f"{results[name][label][0]:10.1f}" for name in backends), results[backends[0]][label][1]]
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)) + f"  {TARGET}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="provisioning-log rows (default 1,000,000)")
    parser.add_argument("--cycles", type=int, default=2_000, help="cycles the rows are spread over")
    parser.add_argument("--repeat", type=int, default=7, help="calls per query; the median is printed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    if args.rows < args.cycles:
        parser.error("--rows must be at least --cycles")
    os.environ.update(airflow_environment(Path(tempfile.mkdtemp(prefix="airflow-home-bench-"))))
    results: dict[str, dict[str, tuple[float, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-page-") as workdir:
        for backend in [name.strip() for name in args.backends.split(",") if name.strip()]:
            results[backend] = run_backend(backend, args, Path(workdir))
    print_table(args.rows, results)


if __name__ == "__main__":
    main()
