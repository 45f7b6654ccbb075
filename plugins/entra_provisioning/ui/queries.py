"""Read-only queries on the engine's state store, for the Provisioning page and its JSON API.

The page never writes the store: ``StateReader`` opens its own engine without creating or
migrating tables (``StateStore`` would), checks the schema version once and refuses a store of
another version with ``StateNotReadyError`` (the next cycle migrates an older one). Shapes are
JSON-ready dicts; timestamps are ISO 8601 UTC strings; durations and ages are seconds.

A cycle started by Airflow records ``run_key = "airflow:<dag_id>:<run_id>"``
(``entra_provisioning.runtime.run_key``); ``airflow_run`` splits it back into the run's ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from entra_provisioning.ui import log_query
from include.provisioning.model import Action, CycleStatus
from include.provisioning.salesforce_messages import plain_message
from include.provisioning.stages import STAGES
from include.provisioning.state import job_quarantine, schema
from include.provisioning.state.codec import loads
from include.provisioning.state.database import open_engine
from include.provisioning.state.job_quarantine import JobQuarantine

COUNTS = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
"""A cycle's outcome counts (``CycleSummary``); they add up to ``in_scope``."""
LISTED = 50
"""Rows listed per overview section (quarantined users, held back, escrow); counts are complete."""
RUN_KEY_PREFIX = "airflow:"


class StateNotReadyError(RuntimeError):
    """The state store has no schema yet, or one of another version than this code reads."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def airflow_run(run_key: str | None) -> dict[str, str] | None:
    """``{"dag_id", "run_id"}`` of a cycle Airflow started, or None (the CLI, or no key)."""
    if not run_key or not run_key.startswith(RUN_KEY_PREFIX):
        return None
    dag_id, sep, run_id = run_key[len(RUN_KEY_PREFIX) :].partition(":")
    return {"dag_id": dag_id, "run_id": run_id} if sep and dag_id and run_id else None


def cycle_row(row: Any, now: dt.datetime) -> dict[str, Any]:
    """One cycle: ids, ``mode``, ``status``, times, ``duration_seconds`` (so far, while running),
    ``stage`` reached and ``progress`` (``{"stage", "done", "total", "percent"}``; 100 when the
    cycle ended), the ``COUNTS`` and ``in_scope``, ``reactivated`` (of ``updated``, not in the sum),
    ``phase_seconds`` and the ``airflow_run``."""
    counts = {name: int(row[name]) for name in COUNTS}
    end = row["finished_at"] or now
    running = row["status"] == CycleStatus.RUNNING.value
    stage = row["stage"]
    # A running cycle has finished the stages before the one it is in; an ended one, all of them.
    done = (STAGES.index(stage) if stage in STAGES else 0) if running else len(STAGES)
    return {
        "cycle_id": row["id"],
        "mode": row["mode"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "heartbeat_at": _iso(row["heartbeat_at"]),
        "committed": row["committed_at"] is not None,
        "duration_seconds": round((end - row["started_at"]).total_seconds(), 3),
        "stage": stage,
        "progress": {
            "stage": stage,
            "done": done,
            "total": len(STAGES),
            "percent": round(100 * done / len(STAGES)),
            "stages": list(STAGES),
        },
        **counts,
        "in_scope": sum(counts.values()),
        "reactivated": int(row["reactivated"]),
        "reason": row["reason"],
        "phase_seconds": loads(row["phase_seconds"]) or {},
        "airflow_run": airflow_run(row["run_key"]),
    }


class StateReader:
    """Read-only access to one state store (``url``: a SQLAlchemy URL, as the engine takes)."""

    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._engine: Engine | None = None
        self._version_checked = False

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _opened(self) -> Engine:
        if self._engine is None:
            # Connecting to a SQLite file that is not there would create it: say so instead.
            database = self._url.database or ""
            a_file = database and not database.startswith(("file:", ":memory:"))
            if self._url.get_backend_name() == "sqlite" and a_file and not Path(database).expanduser().exists():
                raise StateNotReadyError(f"no state store at {database} yet: no provisioning cycle has run")
            self._engine = open_engine(self._url.render_as_string(hide_password=False))
        return self._engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection, after the one-time schema check; raises ``StateNotReadyError`` (also when
        the database does not answer: the message names the error's kind, never the URL)."""
        try:
            opened = self._opened().connect()
        except OperationalError as exc:
            raise StateNotReadyError(f"the state store does not answer ({type(exc.orig).__name__})") from exc
        with opened as conn:
            if not self._version_checked:
                self._check_version(conn)
            yield conn

    def check(self) -> None:
        """Raise ``StateNotReadyError`` unless the store can be read (see ``connect``)."""
        with self.connect():
            pass

    def _check_version(self, conn: Connection) -> None:
        try:
            found = conn.execute(select(schema.state_schema.c.version)).scalar()
        except Exception as exc:  # no table yet: the store was never used
            raise StateNotReadyError(f"the state store has no tables yet ({type(exc).__name__})") from exc
        if found != schema.SCHEMA_VERSION:
            raise StateNotReadyError(
                f"the state store has schema version {found}; this page reads version {schema.SCHEMA_VERSION} "
                "(the next provisioning cycle migrates an older store; a newer one needs this code upgraded)"
            )
        self._version_checked = True

    # -- cycles ----------------------------------------------------------------------------------

    def cycles(self, limit: int = 30, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """The latest ``limit`` cycles (1..500), oldest first (the order a chart draws them)."""
        now = now or dt.datetime.now(dt.UTC)
        table = schema.cycles
        query = select(table).order_by(table.c.started_at.desc(), table.c.id.desc()).limit(max(1, min(limit, 500)))
        with self.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [cycle_row(row, now) for row in reversed(rows)]

    def cycle_of_run(self, dag_id: str, run_id: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
        """The cycle an Airflow DAG run opened (its newest, should a run have opened several)."""
        table = schema.cycles
        key = f"{RUN_KEY_PREFIX}{dag_id}:{run_id}"
        query = select(table).where(table.c.run_key == key).order_by(table.c.started_at.desc()).limit(1)
        with self.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else cycle_row(row, now or dt.datetime.now(dt.UTC))

    # -- the overview ----------------------------------------------------------------------------

    def overview(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """What the overview shows.

        ``{"now", "cycle": the newest cycle (running or not) | None, "last_committed": the newest
        committed cycle | None, "job_quarantine": {...}, "quarantined_users": {"cycle_id", "count",
        "items"}, "held_back": {"cycle_id", "count", "items"}, "escrow": {"count", "due", "items"}
        (an item: ``entra_id``, ``user_principal_name`` and ``display_name`` of the user's newest log
        row, ``action``, ``attempts``, ``first_failed_at``, ``next_attempt_at``, ``error_code``,
        ``error_message``),
        "delta_link": {"present", "updated_at", "age_seconds"}}``. Lists hold at most ``LISTED``
        items, newest or soonest first. A quarantined user is ``{"entra_id", "user_principal_name",
        "display_name", "reasons"}``; a held-back one a log row (``log_query.summary_row``), which
        names its user the same way. The delta link itself is never given (it carries Graph's
        state token)."""
        now = now or dt.datetime.now(dt.UTC)
        cycles = schema.cycles
        with self.connect() as conn:
            newest = (
                conn.execute(select(cycles).order_by(cycles.c.started_at.desc(), cycles.c.id.desc()).limit(1))
                .mappings()
                .first()
            )
            committed = (
                conn.execute(
                    select(cycles)
                    .where(cycles.c.committed_at.is_not(None))
                    .order_by(cycles.c.committed_at.desc(), cycles.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            committed_id = committed["id"] if committed is not None else None
            return {
                "now": now.isoformat(),
                "cycle": cycle_row(newest, now) if newest is not None else None,
                "last_committed": cycle_row(committed, now) if committed is not None else None,
                "job_quarantine": _job_quarantine(job_quarantine.read(conn), now),
                "quarantined_users": _quarantined(conn, committed_id),
                "held_back": _held_back(conn, committed),
                "escrow": _escrow(conn, now),
                "delta_link": _delta_link(conn, now),
            }


def _job_quarantine(state: JobQuarantine, now: dt.datetime) -> dict[str, Any]:
    return {
        "active": state.active,
        "holds_runs": state.holds(now),
        "reason_code": state.reason_code,
        "reason": state.reason,
        "since": _iso(state.since),
        "next_attempt_at": _iso(state.next_attempt_at),
        "auth_failures": state.auth_failures,
        "description": state.describe(),
    }


def _quarantined(conn: Connection, cycle_id: str | None) -> dict[str, Any]:
    table = schema.quarantine
    if cycle_id is None:
        return {"cycle_id": None, "count": 0, "items": []}
    count = conn.execute(select(func.count()).select_from(table).where(table.c.cycle_id == cycle_id)).scalar_one()
    rows = conn.execute(select(table).where(table.c.cycle_id == cycle_id).order_by(table.c.id).limit(LISTED))
    items = [
        {
            "entra_id": row.entra_id,
            "user_principal_name": row.upn,
            "display_name": row.display_name,  # None in rows before schema version 7
            "reasons": loads(row.reasons) or [],
        }
        for row in rows
    ]
    return {"cycle_id": cycle_id, "count": int(count), "items": items}


def _held_back(conn: Connection, cycle: Any | None) -> dict[str, Any]:
    """The deactivations the last committed cycle held back (log action ``StagedDelete``): they
    wait for a run with ``approve_deactivations``. The count is the cycle's own; the log is read
    only when there is something to list (a full cycle's rows are many)."""
    if cycle is None:
        return {"cycle_id": None, "count": 0, "items": []}
    count = int(cycle["held_back"])
    log_filter = log_query.LogFilter(cycle_id=cycle["id"], action=Action.STAGED_DELETE.value)
    items = log_query.page(conn, log_filter, limit=LISTED)["rows"] if count else []
    return {"cycle_id": cycle["id"], "count": count, "items": items}


def _escrow(conn: Connection, now: dt.datetime) -> dict[str, Any]:
    table = schema.escrow
    count = conn.execute(select(func.count()).select_from(table)).scalar_one()
    due = conn.execute(select(func.count()).select_from(table).where(table.c.next_attempt_at <= now)).scalar_one()
    query = select(table).order_by(table.c.next_attempt_at, table.c.entra_id).limit(LISTED)
    rows = conn.execute(query).mappings().all()
    names = _logged_names(conn, [row["entra_id"] for row in rows])
    items = [
        {
            "entra_id": row["entra_id"],
            "user_principal_name": names.get(row["entra_id"], (None, None))[0],
            "display_name": names.get(row["entra_id"], (None, None))[1],
            "action": row["action"],
            "attempts": row["attempts"],
            "first_failed_at": _iso(row["first_failed_at"]),
            "next_attempt_at": _iso(row["next_attempt_at"]),
            "error_code": row["error_code"],
            "error_message": plain_message(row["error_message"]),  # stored before the loader did it
        }
        for row in rows
    ]
    return {"count": int(count), "due": int(due), "items": items}


def _logged_names(conn: Connection, entra_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """``(userPrincipalName, display name)`` of each user's newest provisioning-log row: the escrow
    table keeps neither, and an escrowed record was logged (its failure) when it was escrowed. One
    query over the log's ``(entra_id, id)`` index for the ``LISTED`` users at most."""
    if not entra_ids:
        return {}
    log = schema.provisioning_log
    newest = select(func.max(log.c.id)).where(log.c.entra_id.in_(entra_ids)).group_by(log.c.entra_id)
    rows = conn.execute(select(log.c.entra_id, log.c.upn, log.c.display_name).where(log.c.id.in_(newest)))
    return {row.entra_id: (row.upn, row.display_name) for row in rows}


def _delta_link(conn: Connection, now: dt.datetime) -> dict[str, Any]:
    table = schema.watermark
    row = conn.execute(select(table.c.delta_link, table.c.updated_at).where(table.c.id == 1)).first()
    if row is None:
        return {"present": False, "updated_at": None, "age_seconds": None}
    return {
        "present": row.delta_link is not None,
        "updated_at": _iso(row.updated_at),
        "age_seconds": round((now - row.updated_at).total_seconds(), 3),
    }
