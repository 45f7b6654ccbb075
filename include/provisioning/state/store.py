"""The state store: everything that must survive between cycles, behind one small API.

One SQL database (SQLite file by default, PostgreSQL by URL) holds the delta link
(watermark), the snapshot of what this product applied, escrow, quarantine, the cycles and
the provisioning log, and the Bulk jobs a crashed run may have left open. ``commit_cycle`` is
the single commit point of a cycle: the log, snapshot, escrow, quarantine and the watermark
change together in one transaction, so a crash before it leaves the previous state whole and
the next cycle redoes the work, and a crash inside it changes nothing.

Large tables are written in batches straight through the driver (``bulk.Bulk``) and the
snapshot is read through a plain cursor into columns, because a full cycle may touch a
million users; everything else goes through SQLAlchemy Core.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Container, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import OperationalError

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    EscrowEntry,
    LogEntry,
    Mode,
    PendingJob,
    Plan,
    QuarantinedUser,
    RecordResult,
    Status,
    Watermark,
)
from include.provisioning.state import job_quarantine, lease, schema
from include.provisioning.state.bulk import Bulk
from include.provisioning.state.codec import StateError, changes_json, dumps, loads, utc
from include.provisioning.state.commit import (
    CommitBuilder,
    CommitRows,
    PriorSnapshot,
    SnapshotRow,
    affected_ids,
)
from include.provisioning.state.database import ensure_schema, open_engine
from include.provisioning.state.deferred_indexes import deferred_indexes
from include.provisioning.state.escrow import check_schedule
from include.provisioning.state.job_quarantine import JobQuarantine
from include.provisioning.state.lease import DEFAULT_LEASE_TTL, WRITER_LEASE, Lease, LeaseGrant
from include.provisioning.state.owner import current_owner, owner_gone
from include.provisioning.state.rebuild import FullObservation, held_roles, not_evaluated, stale_rows
from include.provisioning.state.recovery import (
    JobRecordLike,
    describe_settled,
    log_entry,
    records_from_json,
    records_json,
    settle_rows,
)

CHUNK = 20_000
"""Rows encoded and handed to the driver at a time (bounds memory at a million rows)."""

SNAPSHOT_COLUMNS = ["entra_id", "sf_id", "match_value", "is_active", "fields", "roles"]
LOG_COLUMNS = [
    "cycle_id",
    "action",
    "status",
    "entra_id",
    "upn",
    "sf_id",
    "changes",
    "error_code",
    "error_message",
    "at",
    "display_name",
]
ESCROW_COLUMNS = [
    "entra_id",
    "action",
    "attempts",
    "first_failed_at",
    "next_attempt_at",
    "error_code",
    "error_message",
    "last_cycle_id",
]
DEFAULT_STALE_AFTER = dt.timedelta(hours=2)
CYCLE_COUNTS = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back", "reactivated")
"""``CycleSummary``'s counts, each a column of ``cycles`` (``reactivated`` is a part of ``updated``)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def new_cycle_id(now: dt.datetime) -> str:
    """Sortable by start time, unique enough for two starts in the same second."""
    return f"{utc(now):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


class StateStore:
    """The engine's memory between cycles. Safe for one writer and any number of readers."""

    def __init__(self, url: str, *, stale_after: dt.timedelta = DEFAULT_STALE_AFTER) -> None:
        self.url = url
        self.stale_after = stale_after
        """A ``running`` cycle with no sign of life for this long is taken to be dead."""
        self._engine = open_engine(url)
        try:
            ensure_schema(self._engine)
        except Exception:
            self._engine.dispose()
            raise

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- cycles --------------------------------------------------------------------------------

    def start_cycle(
        self,
        mode: Mode,
        mapping_fingerprint: str,
        *,
        force: bool = False,
        now: dt.datetime | None = None,
        run_key: str | None = None,
        force_reason: str = "forced",
    ) -> str:
        """Open a cycle and return its id. Refuses while another cycle is running (one writer),
        unless that one is dead — its process on this host has exited, or no sign of life for
        ``stale_after`` — or ``force`` is given; a cycle taken over is marked failed, abandoned."""
        now = utc(now or _now())
        cycle_id = new_cycle_id(now)
        cycles = schema.cycles
        try:
            with self._engine.begin() as conn:
                self._lock(conn, now)
                running = conn.execute(
                    select(cycles.c.id, cycles.c.started_at, cycles.c.heartbeat_at, cycles.c.owner).where(
                        cycles.c.status == CycleStatus.RUNNING.value
                    )
                ).all()
                for other_id, started_at, heartbeat_at, owner in running:
                    alive_at = max(started_at, heartbeat_at or started_at)
                    gone = owner_gone(owner)
                    stale = now - alive_at >= self.stale_after
                    if not (gone or stale or force):
                        raise StateError(
                            f"cycle {other_id} (started {started_at:%Y-%m-%d %H:%M:%S} UTC by {owner}, last sign "
                            f"of life {alive_at:%H:%M:%S}) is still running; only one cycle may write at a time. "
                            f"Wait for it, or force a new one if it is dead (it is treated as dead after "
                            f"{self.stale_after}, or at once when its process on this host has exited)"
                        )
                    why = gone or (f"no sign of life for {now - alive_at}" if stale else force_reason)
                    conn.execute(
                        update(cycles)
                        .where(cycles.c.id == other_id)
                        .values(
                            status=CycleStatus.FAILED.value,
                            finished_at=now,
                            reason=f"abandoned: taken over by cycle {cycle_id} ({why})",
                        )
                    )
                conn.execute(
                    insert(cycles).values(
                        id=cycle_id,
                        mode=Mode(mode).value,
                        status=CycleStatus.RUNNING.value,
                        started_at=now,
                        heartbeat_at=now,
                        owner=current_owner(),
                        mapping_fingerprint=mapping_fingerprint,
                        run_key=run_key,
                        **dict.fromkeys(CYCLE_COUNTS, 0),
                        phase_seconds="{}",
                        requests="{}",
                    )
                )
        except OperationalError as exc:
            raise StateError(f"could not lock the state database to start a cycle: {exc.orig}") from exc
        return cycle_id

    def open_cycle(
        self, mode: Mode, mapping_fingerprint: str, *, run_key: str, now: dt.datetime | None = None
    ) -> tuple[str, bool]:
        """Under the writer lease: ``(cycle_id, resumed)``. Resumes ``run_key``'s cycle when it is
        the newest cycle and was never committed (a cleared or retried Airflow task carries on
        with the same cycle and its recorded Bulk jobs); otherwise starts a new cycle. A cycle
        still marked running is abandoned: whoever ran it no longer holds the lease."""
        now = utc(now or _now())
        cycles = schema.cycles
        with self._engine.begin() as conn:
            self._lock(conn, now)
            newest = conn.execute(
                select(cycles.c.id, cycles.c.run_key, cycles.c.committed_at)
                .order_by(cycles.c.started_at.desc(), cycles.c.id.desc())
                .limit(1)
            ).first()
            if newest is not None and newest.run_key == run_key and newest.committed_at is None:
                conn.execute(
                    update(cycles)
                    .where(cycles.c.id == newest.id)
                    .values(status=CycleStatus.RUNNING.value, heartbeat_at=now, finished_at=None, reason=None)
                )
                return newest.id, True
        cycle_id = self.start_cycle(
            mode,
            mapping_fingerprint,
            force=True,
            now=now,
            run_key=run_key,
            force_reason="its writer no longer holds the lease",
        )
        return cycle_id, False

    def cycle(self, cycle_id: str) -> CycleSummary | None:
        """One cycle's summary row, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(schema.cycles).where(schema.cycles.c.id == cycle_id)).mappings().first()
        return None if row is None else self._summary_from_row(row)

    def is_committed(self, cycle_id: str) -> bool:
        with self._engine.connect() as conn:
            row = conn.execute(select(schema.cycles.c.committed_at).where(schema.cycles.c.id == cycle_id)).first()
        return row is not None and row.committed_at is not None

    # -- the writer lease ----------------------------------------------------------------------

    def acquire_lease(
        self,
        holder: str,
        *,
        ttl: dt.timedelta = DEFAULT_LEASE_TTL,
        name: str = WRITER_LEASE,
        now: dt.datetime | None = None,
        force: bool = False,
    ) -> LeaseGrant:
        """Try once to take the writer lease (see ``lease.py``); never waits. ``force`` takes it
        from a live holder (``sync --force``: a person decided that holder is dead)."""
        now = utc(now or _now())
        with self._engine.begin() as conn:
            self._lock(conn, now)
            return lease.acquire(conn, name, holder, ttl, now, force=force)

    def renew_lease(
        self,
        holder: str,
        *,
        ttl: dt.timedelta = DEFAULT_LEASE_TTL,
        name: str = WRITER_LEASE,
        now: dt.datetime | None = None,
    ) -> Lease:
        """Extend ``holder``'s lease; raises ``LeaseLostError`` when it is not theirs any more."""
        now = utc(now or _now())
        with self._engine.begin() as conn:
            self._lock(conn, now)
            return lease.renew(conn, name, holder, ttl, now)

    def release_lease(self, holder: str, *, name: str = WRITER_LEASE) -> bool:
        with self._engine.begin() as conn:
            self._lock(conn, _now())
            return lease.release(conn, name, holder)

    def lease(self, name: str = WRITER_LEASE) -> Lease | None:
        with self._engine.connect() as conn:
            return lease.current(conn, name)

    # -- the job's quarantine (Entra's) ----------------------------------------------------------

    def job_quarantine(self) -> JobQuarantine:
        with self._engine.connect() as conn:
            return job_quarantine.read(conn)

    def quarantine_job(self, code: str, reason: str, *, backoff: dt.timedelta, now: dt.datetime | None = None) -> bool:
        """Quarantine the job (or extend it) until ``now + backoff``. Returns True when the
        notification address should hear about it: the job was not quarantined for this reason yet
        (Entra e-mails once, and again when the reason changes)."""
        now = utc(now or _now())
        with self._engine.begin() as conn:
            self._lock(conn, now)
            current = job_quarantine.read(conn)
            since = current.since if current.active and current.reason_code == code else now
            job_quarantine.write(conn, now, reason_code=code, reason=reason, since=since, next_attempt_at=now + backoff)
            return current.notified_code != code

    def job_quarantine_notified(self, code: str) -> None:
        with self._engine.begin() as conn:
            job_quarantine.write(conn, _now(), notified_code=code)

    def lift_job_quarantine(self, now: dt.datetime | None = None) -> JobQuarantine:
        """End the quarantine and forget authentication failures (a cycle succeeded, or a person
        reset it). Returns what was lifted."""
        now = utc(now or _now())
        with self._engine.begin() as conn:
            self._lock(conn, now)
            current = job_quarantine.read(conn)
            if current.active or current.auth_failures:
                job_quarantine.write(
                    conn,
                    now,
                    reason_code=None,
                    reason=None,
                    since=None,
                    next_attempt_at=None,
                    notified_code=None,
                    auth_failures=0,
                )
            return current

    def record_auth_failure(self, now: dt.datetime | None = None) -> int:
        """Count one more run that failed to authenticate; returns the consecutive count."""
        now = utc(now or _now())
        with self._engine.begin() as conn:
            self._lock(conn, now)
            count = job_quarantine.read(conn).auth_failures + 1
            job_quarantine.write(conn, now, auth_failures=count)
            return count

    def heartbeat(self, cycle_id: str, now: dt.datetime | None = None) -> None:
        """Tell other processes the cycle is alive (long loads call it through ``record_job``)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(schema.cycles).where(schema.cycles.c.id == cycle_id).values(heartbeat_at=utc(now or _now()))
            )

    def enter_stage(self, cycle_id: str, stage: str, now: dt.datetime | None = None) -> None:
        """Record that ``cycle_id`` entered ``stage`` (``stages.STAGES``), which is also a sign of
        life: what a monitor shows of a running cycle. An unknown cycle id changes nothing."""
        with self._engine.begin() as conn:
            conn.execute(
                update(schema.cycles)
                .where(schema.cycles.c.id == cycle_id)
                # A stage entered again (a retry) clears the failure the last try recorded.
                .values(stage=stage, heartbeat_at=utc(now or _now()), failure_kind=None)
            )

    def record_failure(self, cycle_id: str, kind: str, message: str) -> None:
        """Record why ``cycle_id`` stopped in the stage it last entered: ``kind`` is one of
        ``errors.FAILURE_KINDS``, ``message`` the engine's error (kept as the cycle's ``reason``,
        which ``fail_cycle`` then keeps). Cleared when a stage is entered again (a retry); a
        committed or unknown cycle is left as it is."""
        cycles = schema.cycles
        with self._engine.begin() as conn:
            conn.execute(
                update(cycles)
                .where(cycles.c.id == cycle_id, cycles.c.committed_at.is_(None))
                .values(failure_kind=kind, reason=message)
            )

    def fail_cycle(self, cycle_id: str, reason: str, summary: CycleSummary | None = None) -> None:
        """Close a cycle that did not commit (failed, or stopped on purpose); state is untouched.
        A failure a stage recorded (``record_failure``) keeps its message: ``reason`` is only used
        when none was recorded."""
        status = CycleStatus.FAILED
        if summary is not None and summary.status in (CycleStatus.FAILED, CycleStatus.STOPPED):
            status = summary.status
        if summary is not None:
            values: dict[str, Any] = self._summary_values(summary)
        else:
            values = {}
        recorded = schema.cycles.c.failure_kind.is_not(None)
        values["status"] = status.value
        values["reason"] = case((recorded, schema.cycles.c.reason), else_=reason)
        values["finished_at"] = utc(summary.finished_at) if summary and summary.finished_at else _now()
        with self._engine.begin() as conn:
            done = conn.execute(update(schema.cycles).where(schema.cycles.c.id == cycle_id).values(**values))
            if done.rowcount == 0:
                raise StateError(f"no cycle {cycle_id!r} in the state database")

    def cycles(self, limit: int = 20) -> list[CycleSummary]:
        """The latest cycles, newest first."""
        cycles = schema.cycles
        with self._engine.connect() as conn:
            newest_first = (cycles.c.started_at.desc(), cycles.c.id.desc())
            rows = conn.execute(select(cycles).order_by(*newest_first).limit(limit)).mappings().all()
        return [self._summary_from_row(row) for row in rows]

    @staticmethod
    def _summary_values(summary: CycleSummary) -> dict[str, Any]:
        return {
            "mode": Mode(summary.mode).value,
            "status": CycleStatus(summary.status).value,
            **{name: int(getattr(summary, name)) for name in CYCLE_COUNTS},
            "reason": summary.reason,
            "phase_seconds": dumps(summary.phase_seconds, what=f"cycle {summary.cycle_id} phase_seconds"),
            "requests": dumps(summary.requests, what=f"cycle {summary.cycle_id} requests"),
        }

    @staticmethod
    def _summary_from_row(row: Any) -> CycleSummary:
        return CycleSummary(
            cycle_id=row["id"],
            mode=Mode(row["mode"]),
            status=CycleStatus(row["status"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            **{name: row[name] for name in CYCLE_COUNTS},
            reason=row["reason"],
            phase_seconds=loads(row["phase_seconds"]) or {},
            requests=loads(row["requests"]) or {},
        )

    @staticmethod
    def _lock(conn: Connection, now: dt.datetime) -> None:
        """Write the lock row first, so this transaction holds the write lock from its start
        (SQLite: the database's; PostgreSQL: the row's) and writers queue instead of interleaving."""
        conn.execute(update(schema.state_schema).where(schema.state_schema.c.id == 1).values(writer_lock_at=now))

    # -- reads the cycle needs -----------------------------------------------------------------

    def watermark(self) -> Watermark | None:
        table = schema.watermark
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == 1)).mappings().first()
        if row is None:
            return None
        return Watermark(row["delta_link"], row["mapping_fingerprint"], row["updated_at"])

    def snapshot(self, *, entra_ids: Sequence[str] | None = None, sf_ids: Sequence[str] = ()) -> pd.DataFrame:
        """The SNAPSHOT frame (model.py) plus ``roles``: one row per user this product manages,
        in ``entra_id`` order.

        With ``entra_ids`` only the rows of those users and of the Salesforce users ``sf_ids``
        (ids as stored: give both the 15- and 18-character forms), which is what a cycle of one
        user needs (provision on demand); the whole table otherwise."""
        columns: list[list[Any]] = [[] for _ in SNAPSHOT_COLUMNS]
        entra, sf_id_list, match_values, actives, fields, roles = columns
        with self._engine.connect() as conn:
            bulk = Bulk(conn)
            if entra_ids is None:
                rows: Iterable[tuple[Any, ...]] = bulk.stream(schema.snapshot, SNAPSHOT_COLUMNS, order_by="entra_id")
            else:
                found = [
                    *bulk.select_in(schema.snapshot, SNAPSHOT_COLUMNS, "entra_id", sorted(set(entra_ids))),
                    *bulk.select_in(schema.snapshot, SNAPSHOT_COLUMNS, "sf_id", sorted(set(sf_ids))),
                ]
                rows = sorted({row[0]: row for row in found}.values(), key=itemgetter(0))  # a row found twice once
            for row in rows:
                entra.append(row[0])
                sf_id_list.append(row[1])
                match_values.append(row[2])
                actives.append(bool(row[3]))
                fields.append(loads(row[4]))
                roles.append(loads(row[5]))
        return pd.DataFrame(
            {
                "entra_id": pd.Series(entra, dtype="str"),
                "sf_id": pd.Series(sf_id_list, dtype="str"),
                "match_value": pd.Series(match_values, dtype="str"),
                "is_active": pd.Series(actives, dtype=bool),
                "fields": pd.Series(fields, dtype=object),
                "roles": pd.Series(roles, dtype=object),
            }
        )

    def snapshot_size(self) -> int:
        """How many users this product manages (the snapshot's rows), without reading them."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.snapshot)).scalar_one())

    def due_escrow(self, now: dt.datetime) -> list[EscrowEntry]:
        """Escrowed users whose next retry time has come."""
        table = schema.escrow
        return self._escrow(select(table).where(table.c.next_attempt_at <= utc(now)))

    def escrow_entries(self) -> list[EscrowEntry]:
        return self._escrow(select(schema.escrow))

    def _escrow(self, query: Any) -> list[EscrowEntry]:
        table = schema.escrow
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.next_attempt_at, table.c.entra_id)).mappings().all()
        return [_escrow_entry(row) for row in rows]

    # -- Bulk jobs (crash recovery) ------------------------------------------------------------

    def record_job(
        self,
        cycle_id: str,
        job_id: str,
        operation: str,
        key_field: str,
        keys: dict[str, str],
        *,
        state: str = "Open",
        records: Mapping[str, JobRecordLike] | None = None,
    ) -> None:
        """Remember a Bulk job BEFORE its data is uploaded, so a crash leaves a trace to settle.

        ``records`` (Entra id → UPN and action) is who each row is: what the provisioning log
        needs if a later cycle has to settle the job."""
        now = _now()
        row = {
            "job_id": job_id,
            "cycle_id": cycle_id,
            "operation": operation,
            "key_field": key_field,
            "keys": dumps(keys, what=f"Bulk job {job_id} keys"),
            "records": dumps(records_json(records or {}), what=f"Bulk job {job_id} records"),
            "state": state,
            "created_at": now,
        }
        with self._engine.begin() as conn:
            conn.execute(delete(schema.bulk_jobs).where(schema.bulk_jobs.c.job_id == job_id))
            conn.execute(insert(schema.bulk_jobs).values(**row))
            conn.execute(update(schema.cycles).where(schema.cycles.c.id == cycle_id).values(heartbeat_at=now))

    def mark_job(self, job_id: str, state: str) -> None:
        """Note a recorded job's latest known state (e.g. ``UploadComplete``), for people and recovery."""
        with self._engine.begin() as conn:
            conn.execute(update(schema.bulk_jobs).where(schema.bulk_jobs.c.job_id == job_id).values(state=state))

    def pending_jobs(self, cycle_id: str | None = None, *, users: Container[str] | None = None) -> list[PendingJob]:
        """Jobs recorded by cycles whose results were never committed (oldest first); only
        ``cycle_id``'s when given, and only jobs with a row of one of ``users`` (Entra ids) when
        given: a shard's load resumes its own jobs, and another shard's job is skipped before its
        records are decoded (a million users' records took 3.7 CPU-s per resume, 1.6 now)."""
        table = schema.bulk_jobs
        query = select(table).order_by(table.c.created_at, table.c.job_id)
        if cycle_id is not None:
            query = query.where(table.c.cycle_id == cycle_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        jobs = []
        for row in rows:
            keys = loads(row["keys"]) or {}
            if users is not None and not any(entra_id in users for entra_id in keys.values()):
                continue
            jobs.append(
                PendingJob(
                    job_id=row["job_id"],
                    cycle_id=row["cycle_id"],
                    operation=row["operation"],
                    key_field=row["key_field"],
                    keys=keys,
                    state=row["state"],
                    created_at=row["created_at"],
                    records=records_from_json(loads(row["records"]) if row["records"] else None),
                )
            )
        return jobs

    def forget_job(self, job_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(schema.bulk_jobs).where(schema.bulk_jobs.c.job_id == job_id))

    def settle_jobs(
        self,
        crashed_cycle_id: str,
        jobs: Sequence[PendingJob],
        results: Sequence[RecordResult],
        *,
        settled_by: str,
        job_of: Mapping[str, str],
        now: dt.datetime,
        escrow_schedule_hours: Sequence[float],
    ) -> list[LogEntry]:
        """File what Salesforce did with an interrupted cycle's Bulk ``jobs`` (``results``: one
        per user, across the jobs) under that cycle, escrow its failures, and forget the jobs, in
        one transaction (``recovery.settle_rows`` has the rules). Returns the log entries written."""
        ids = sorted({r.entra_id for r in results})
        named = {
            entra_id
            for job in jobs
            for entra_id, record in job.records.items()
            if record.user_principal_name and record.display_name
        }
        known_names = self.last_names([i for i in ids if i not in named])
        with self._engine.begin() as conn:
            rows = settle_rows(
                crashed_cycle_id,
                jobs,
                results,
                settled_by=settled_by,
                job_of=job_of,
                now=now,
                schedule_hours=check_schedule(escrow_schedule_hours),
                prior_escrow=self._prior_escrow(conn, ids),
                known_names=known_names,
            )
            self._write_log(conn, rows.log)
            self._write_escrow(conn, rows)
            conn.execute(delete(schema.bulk_jobs).where(schema.bulk_jobs.c.job_id.in_([j.job_id for j in jobs])))
            self._note_settled(conn, crashed_cycle_id, settled_by, rows.log)
        return rows.log

    @staticmethod
    def _note_settled(conn: Connection, cycle_id: str, settled_by: str, entries: Sequence[LogEntry]) -> None:
        """Say on the crashed cycle's row what its settled jobs did, so its history reads with its
        log rows (its counts stay 0: it never got to count its users)."""
        cycles = schema.cycles
        reason = conn.execute(select(cycles.c.reason).where(cycles.c.id == cycle_id)).scalar()
        note = f"its Bulk jobs were settled by cycle {settled_by}: {describe_settled(entries)}"
        reason = f"{reason}; {note}" if reason else note
        conn.execute(update(cycles).where(cycles.c.id == cycle_id).values(reason=reason))

    # -- the commit point ----------------------------------------------------------------------

    def commit_cycle(
        self,
        summary: CycleSummary,
        *,
        plan: Plan | Iterable[Plan],
        results: list[RecordResult],
        quarantined: list[QuarantinedUser],
        delta_link: str | None,
        mapping_fingerprint: str,
        now: dt.datetime,
        escrow_schedule_hours: Sequence[float],
        advance_watermark: bool = True,
        seen: Mapping[str, Sequence[str]] | None = None,
        seen_complete: bool = False,
        observed: FullObservation | None = None,
        keep_successes: bool = True,
    ) -> list[LogEntry]:
        """Store a cycle's outcome in one transaction and return the log entries written (without
        ``keep_successes``, only those that are not a success: a million users' ``Success`` rows
        need not stay in memory once written; ``log_entries`` reads them back).

        ``plan``: the plan, or its parts one after the other (a plan file's row groups,
        ``Workspace.stream``): each part's log, snapshot and escrow rows are written before the
        next part is read, so only one part's rows are in memory.

        Order inside the transaction: log, snapshot, escrow (part by part), the quarantined
        users' log rows, quarantine, the cycle's Bulk job records, then the watermark and the
        cycle row — results are stored before the state that lets the next cycle skip them. Any
        exception rolls everything back.

        ``observed``: the cycle was a complete full cycle; the snapshot and escrow are then
        replaced from what it saw, not merged with what earlier cycles left (``rebuild.py``)."""
        now = utc(now)
        schedule = check_schedule(escrow_schedule_hours)
        cycle_id = summary.cycle_id
        parts = [plan] if isinstance(plan, Plan) else plan
        # Millions of small objects, none in a cycle: the collector would rescan them for nothing.
        with collector_paused(), self._engine.begin() as conn:
            self._lock(conn, now)
            self._check_committable(conn, cycle_id)
            builder = CommitBuilder(
                cycle_id,
                results=results,
                quarantined=quarantined,
                now=now,
                schedule_hours=schedule,
                full=observed is not None,
            )
            # Nothing to look up on a first sync (asked before this commit writes any row).
            fresh = _is_empty(conn, schema.snapshot) and _is_empty(conn, schema.escrow)
            log: list[LogEntry] = []
            written: set[str] = set()  # users whose snapshot row this commit wrote or found right as stored
            # A first sync's million log rows: the log's indexes are built once after them, not row by row.
            adding = len(results) + len(quarantined)
            with deferred_indexes(conn, schema.provisioning_log, adding=adding, keep=schema.LOG_SPARSE_INDEXES):
                for part in parts:
                    prior_snapshot, prior_escrow = ({}, {}) if fresh else self._priors(conn, part)
                    rows = builder.part(part, prior_snapshot=prior_snapshot, prior_escrow=prior_escrow)
                    del prior_snapshot, prior_escrow
                    self._write_log(conn, rows.log)
                    self._write_snapshot(conn, rows, cycle_id, now)
                    self._write_escrow(conn, rows)
                    log += rows.log if keep_successes else [e for e in rows.log if e.status is not Status.SUCCESS]
                    written.update(row.entra_id for row in rows.snapshot_writes)
                    written |= rows.snapshot_kept
                    del rows, part
                last = builder.finish()
                self._write_log(conn, last.log)
            log += last.log
            if observed is not None:
                self._rebuild(conn, written, observed, roles=seen or {}, cycle_id=cycle_id, now=now)
            self._write_quarantine(conn, cycle_id, last.quarantine)
            if seen is not None:
                self._write_seen(conn, cycle_id, seen, complete=seen_complete, linked=written)
            conn.execute(delete(schema.bulk_jobs).where(schema.bulk_jobs.c.cycle_id == cycle_id))
            if advance_watermark:
                self._write_watermark(conn, delta_link, mapping_fingerprint, now)
            self._finish_cycle(conn, summary, now)
        return log

    def _check_committable(self, conn: Connection, cycle_id: str) -> None:
        cycles = schema.cycles
        row = conn.execute(select(cycles.c.committed_at).where(cycles.c.id == cycle_id)).first()
        if row is None:
            raise StateError(f"no cycle {cycle_id!r} in the state database (start_cycle gives the id to commit)")
        if row.committed_at is not None:
            raise StateError(f"cycle {cycle_id} was already committed at {row.committed_at:%Y-%m-%d %H:%M:%S} UTC")

    def _priors(self, conn: Connection, plan: Plan) -> tuple[dict[str, PriorSnapshot], dict[str, EscrowEntry]]:
        """What the snapshot and escrow hold for the plan's users."""
        full, digest_only = affected_ids(plan)
        return self._prior_snapshot(conn, full, digest_only), self._prior_escrow(conn, full | digest_only)

    def _prior_snapshot(self, conn: Connection, full: set[str], digest_only: set[str]) -> dict[str, PriorSnapshot]:
        if not (full or digest_only) or _is_empty(conn, schema.snapshot):
            return {}
        rows = _rows_with_keys(Bulk(conn), schema.snapshot, SNAPSHOT_COLUMNS, full | digest_only)
        found: dict[str, PriorSnapshot] = {}
        for raw in rows:
            row = SnapshotRow(raw[0], raw[1], raw[2], bool(raw[3]), raw[4], raw[5])
            if row.entra_id in full:
                found[row.entra_id] = PriorSnapshot.of(row, keep_json=True)
            elif row.entra_id in digest_only:
                found[row.entra_id] = PriorSnapshot.of(row, keep_json=False)
        return found

    def _prior_escrow(self, conn: Connection, ids: set[str]) -> dict[str, EscrowEntry]:
        table = schema.escrow
        if not ids or _is_empty(conn, table):
            return {}
        present = [row[0] for row in Bulk(conn).select_in(table, ["entra_id"], "entra_id", sorted(ids))]
        found: dict[str, EscrowEntry] = {}
        for chunk in _chunks(present):
            for row in conn.execute(select(table).where(table.c.entra_id.in_(chunk))).mappings():
                found[row["entra_id"]] = _escrow_entry(row)
        return found

    def _write_log(self, conn: Connection, entries: Sequence[LogEntry]) -> None:
        bulk = Bulk(conn)
        table = schema.provisioning_log
        at: dt.datetime | None = None
        stamp: Any = None
        for chunk in _chunks(entries):  # encode a batch at a time: a million rows never sit encoded at once
            rows = []
            for entry in chunk:
                if entry.at is not at:  # one cycle, one timestamp: bound once
                    at, stamp = entry.at, bulk.bind(table.c.at, entry.at)
                rows.append(
                    (
                        entry.cycle_id,
                        entry.action._value_,  # the enum's value without its descriptor (a million rows)
                        entry.status._value_,
                        entry.entra_id,
                        entry.user_principal_name,
                        entry.sf_id,
                        changes_json(entry.changes, what=f"log row of user {entry.entra_id}"),
                        entry.error_code,
                        entry.error_message,
                        stamp,
                        entry.display_name,
                    )
                )
            bulk.insert(table, LOG_COLUMNS, rows)

    def _write_snapshot(self, conn: Connection, rows: CommitRows, cycle_id: str, now: dt.datetime) -> None:
        bulk = Bulk(conn)
        updated_at = bulk.bind(schema.snapshot.c.updated_at, now)
        rows.snapshot_writes.sort(key=itemgetter(0))  # key order: kind to the B-tree
        columns = [*SNAPSHOT_COLUMNS, "last_cycle_id", "updated_at"]
        for chunk in _chunks(rows.snapshot_writes):  # encoded a batch at a time, like the log
            bulk.upsert(schema.snapshot, "entra_id", columns, [row.stored(cycle_id, updated_at) for row in chunk])

    def _write_escrow(self, conn: Connection, rows: CommitRows) -> None:
        bulk = Bulk(conn)
        table = schema.escrow
        bulk.delete_in(table, "entra_id", rows.escrow_deletes)
        values = [
            (
                entry.entra_id,
                Action(entry.action).value,
                entry.attempts,
                bulk.bind(table.c.first_failed_at, entry.first_failed_at),
                bulk.bind(table.c.next_attempt_at, entry.next_attempt_at),
                entry.error_code,
                entry.error_message,
                entry.last_cycle_id,
            )
            for entry in rows.escrow_upserts
        ]
        bulk.upsert(table, "entra_id", ESCROW_COLUMNS, values)

    def _rebuild(
        self,
        conn: Connection,
        written: Collection[str],
        observed: FullObservation,
        *,
        roles: Mapping[str, Sequence[str]],
        cycle_id: str,
        now: dt.datetime,
    ) -> None:
        """After a complete full cycle's rows are written: delete the snapshot rows it neither
        wrote nor confirmed (``written``: the users whose rows it wrote or found right), give the
        held users' confirmed rows the org's values and the roles just read, and drop escrow
        entries of users it did not extract (see ``rebuild.py``)."""
        bulk = Bulk(conn)
        table = schema.snapshot
        kept = {*written, *observed.held}
        stored = (row[0] for row in bulk.stream(table, ["entra_id"]))
        bulk.delete_in(table, "entra_id", stale_rows(stored, kept))
        del kept
        new_roles = held_roles(observed.held, roles)
        # One executemany per shape (with or without new roles), not one UPDATE per held user.
        batches: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for entra_id, held in observed.held.items():
            what = f"snapshot of user {entra_id}"
            values: dict[str, Any] = {
                "b_entra_id": entra_id,
                "b_sf_id": held.sf_id,
                "b_is_active": held.is_active,
                "b_fields": dumps(dict(held.fields), what=what),
            }
            if entra_id in new_roles:
                values["b_roles"] = dumps(new_roles[entra_id], what=what)
            batches[entra_id in new_roles].append(values)
        for with_roles, batch in batches.items():
            if not batch:
                continue
            columns: dict[str, Any] = {
                "sf_id": bindparam("b_sf_id"),
                "is_active": bindparam("b_is_active"),
                "fields": bindparam("b_fields"),
                "last_cycle_id": cycle_id,
                "updated_at": now,
            }
            if with_roles:
                columns["roles"] = bindparam("b_roles")
            conn.execute(update(table).where(table.c.entra_id == bindparam("b_entra_id")).values(**columns), batch)
        escrowed = (row[0] for row in bulk.stream(schema.escrow, ["entra_id"]))
        bulk.delete_in(schema.escrow, "entra_id", not_evaluated(escrowed, observed.evaluated))

    def seen_roles(self) -> dict[str, list[str]]:
        """Roles of the evaluated users without a Salesforce link (see ``schema.seen``)."""
        with self._engine.connect() as conn:
            return {row[0]: loads(row[1]) for row in Bulk(conn).stream(schema.seen, ["entra_id", "roles"])}

    def _write_seen(
        self,
        conn: Connection,
        cycle_id: str,
        seen: Mapping[str, Sequence[str]],
        *,
        complete: bool,
        linked: Collection[str] = (),
    ) -> None:
        """Record this cycle's evaluated users that ended without a link (after the snapshot is
        written, in the same transaction); ``complete`` replaces the table (a full cycle saw everyone).
        The users of ``linked`` (this commit's snapshot rows) are linked without asking."""
        bulk = Bulk(conn)
        if complete:
            conn.execute(delete(schema.seen))
        else:
            bulk.delete_in(schema.seen, "entra_id", sorted(seen))
        unknown = {entra_id for entra_id in seen if entra_id not in linked}
        stored = {row[0] for row in _rows_with_keys(bulk, schema.snapshot, ["entra_id"], unknown)}
        values = [
            (entra_id, dumps(list(seen[entra_id]), what=f"roles of user {entra_id}"), cycle_id)
            for entra_id in sorted(unknown - stored)
        ]
        bulk.insert(schema.seen, ["entra_id", "roles", "last_cycle_id"], values)

    def _write_quarantine(self, conn: Connection, cycle_id: str, users: Sequence[QuarantinedUser]) -> None:
        values = [
            (
                cycle_id,
                user.entra_id,
                user.user_principal_name,
                dumps(list(user.reasons), what=f"quarantine reasons of user {user.entra_id}"),
                user.display_name,
            )
            for user in users
        ]
        Bulk(conn).insert(schema.quarantine, ["cycle_id", "entra_id", "upn", "reasons", "display_name"], values)

    def _write_watermark(
        self, conn: Connection, delta_link: str | None, mapping_fingerprint: str, now: dt.datetime
    ) -> None:
        conn.execute(delete(schema.watermark))
        conn.execute(
            insert(schema.watermark).values(
                id=1, delta_link=delta_link, mapping_fingerprint=mapping_fingerprint, updated_at=now
            )
        )

    def _finish_cycle(self, conn: Connection, summary: CycleSummary, now: dt.datetime) -> None:
        values = self._summary_values(summary)
        if summary.status is CycleStatus.RUNNING:
            values["status"] = CycleStatus.SUCCEEDED.value
        values["finished_at"] = utc(summary.finished_at) if summary.finished_at else now
        values["committed_at"] = _now()
        values["failure_kind"] = None  # a failed try that a retry got past is no longer the story
        conn.execute(update(schema.cycles).where(schema.cycles.c.id == summary.cycle_id).values(**values))

    # -- history -------------------------------------------------------------------------------

    def log_entries(
        self, *, cycle_id: str | None = None, entra_id: str | None = None, limit: int = 1000
    ) -> list[LogEntry]:
        """The latest ``limit`` provisioning-log rows matching the filters, oldest first."""
        table = schema.provisioning_log
        query = select(table)
        if cycle_id is not None:
            query = query.where(table.c.cycle_id == cycle_id)
        if entra_id is not None:
            query = query.where(table.c.entra_id == entra_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit)).mappings().all()
        return [log_entry(row) for row in reversed(rows)]

    def last_names(self, entra_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """``(userPrincipalName, display name)`` the provisioning log last recorded for each of
        ``entra_ids``, each the latest row that had one (a user Entra has since deleted is named by
        id alone; rows before schema version 7 have no display name); ids never logged with either
        are absent."""
        table = schema.provisioning_log
        upns: dict[str, str] = {}
        names: dict[str, str] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(sorted(set(entra_ids)), 1_000):
                query = (
                    select(table.c.entra_id, table.c.upn, table.c.display_name)
                    .where(
                        table.c.entra_id.in_(chunk), or_(table.c.upn.is_not(None), table.c.display_name.is_not(None))
                    )
                    .order_by(table.c.id)
                )
                for entra_id, upn, name in conn.execute(query):  # oldest first: the latest value stays
                    if upn is not None:
                        upns[entra_id] = upn
                    if name is not None:
                        names[entra_id] = name
        return {entra_id: (upns.get(entra_id), names.get(entra_id)) for entra_id in upns.keys() | names.keys()}

    def quarantine_entries(self, cycle_id: str | None = None) -> list[QuarantinedUser]:
        """Quarantined users of ``cycle_id``, or the current quarantine: the latest committed cycle's."""
        table, cycles = schema.quarantine, schema.cycles
        with self._engine.connect() as conn:
            if cycle_id is None:
                cycle_id = conn.execute(
                    select(cycles.c.id)
                    .where(cycles.c.committed_at.is_not(None))
                    .order_by(cycles.c.committed_at.desc(), cycles.c.id.desc())
                    .limit(1)
                ).scalar()
                if cycle_id is None:
                    return []
            rows = conn.execute(select(table).where(table.c.cycle_id == cycle_id).order_by(table.c.id)).mappings()
            return [
                QuarantinedUser(row["entra_id"], row["upn"], loads(row["reasons"]) or [], row["display_name"])
                for row in rows
            ]

    def reset(
        self, *, watermark: bool = False, escrow: bool = False, snapshot: bool = False, quarantine: bool = False
    ) -> None:
        """Entra's "restart provisioning": forget the delta link (the next cycle is full), the
        escrow (failed records are no longer retried), the snapshot or the quarantine. The
        provisioning log and cycle history are kept."""
        with self._engine.begin() as conn:
            self._lock(conn, _now())
            if watermark:
                conn.execute(delete(schema.watermark))
            if escrow:
                conn.execute(delete(schema.escrow))
            if snapshot:
                conn.execute(delete(schema.snapshot))
                conn.execute(delete(schema.seen))
            if quarantine:
                conn.execute(delete(schema.quarantine))


def _is_empty(conn: Connection, table: Table) -> bool:
    return conn.execute(select(table.c[table.primary_key.columns.keys()[0]]).limit(1)).first() is None


def _rows_with_keys(
    bulk: Bulk, table: Table, columns: Sequence[str], keys: Collection[str]
) -> Iterable[tuple[Any, ...]]:
    """The rows of ``table`` whose primary key is one of ``keys``, with the rows of other keys when
    that is cheaper: when ``keys`` are most of the table, one scan beats many ``IN`` lists."""
    if not keys:
        return ()
    key = table.primary_key.columns.keys()[0]
    stored = bulk.conn.execute(select(func.count()).select_from(table)).scalar_one()
    if len(keys) * 4 >= stored:
        return bulk.stream(table, columns)
    return bulk.select_in(table, columns, key, sorted(keys))


def _escrow_entry(row: Any) -> EscrowEntry:
    return EscrowEntry(
        entra_id=row["entra_id"],
        action=Action(row["action"]),
        attempts=row["attempts"],
        first_failed_at=row["first_failed_at"],
        next_attempt_at=row["next_attempt_at"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        last_cycle_id=row["last_cycle_id"],
    )
