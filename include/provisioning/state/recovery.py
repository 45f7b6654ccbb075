"""What settling a crashed run's Bulk jobs writes, worked out without touching the database.

A cycle that dies after submitting Bulk API 2.0 jobs leaves their records (``bulk_jobs``); the
next cycle reads what Salesforce did with them (``BulkLoader.recover``) and files the rows here.
They belong to the cycle that sent them, so each provisioning-log row carries the crashed cycle's
id and the user it is about (UPN and action as recorded when the job was submitted, the
Salesforce id from the results), and they are settled by the commit's own rules
(``commit.build_commit``): a failure is escrowed with its attempt counted, so the cycle that
follows holds the user until the retry time instead of sending the same record again and
logging the same failure a second time; a row Salesforce never processed is due at once. The
snapshot is left alone: the full cycle that follows a recovery reads the org and records what it
finds there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from include.provisioning.model import (
    Action,
    EscrowEntry,
    JobRecord,
    LogEntry,
    PendingJob,
    Plan,
    PlannedChange,
    RecordResult,
    Status,
)
from include.provisioning.state.codec import changes_from_json, utc
from include.provisioning.state.commit import CommitRows, build_commit

_GROUP_OF = {
    Action.CREATE: "creates",
    Action.DISABLE: "deactivations",
    Action.REACTIVATE: "reactivations",
}


class JobRecordLike(Protocol):
    """Who a Bulk job's row is: a ``JobRecord``, or the ``PlannedChange`` it is made from."""

    @property
    def user_principal_name(self) -> str | None: ...
    @property
    def action(self) -> Action: ...
    @property
    def display_name(self) -> str | None: ...


def records_json(records: Mapping[str, JobRecordLike]) -> dict[str, list[str | None]]:
    """``{entra id: [UPN, action, display name]}``, as ``bulk_jobs.records`` keeps it."""
    return {entra_id: [r.user_principal_name, str(r.action), r.display_name] for entra_id, r in records.items()}


def records_from_json(value: Any) -> dict[str, JobRecord]:
    """The inverse of :func:`records_json`; a job recorded before schema v4 has none (``{}``),
    one recorded before v7 ``[UPN, action]`` without the display name."""
    action_of = _ACTION_OF  # a dict lookup, not the Enum's constructor: a million rows per resume
    return {
        str(k): JobRecord(v[0], action_of.get(v[1]) or Action(v[1]), v[2] if len(v) > 2 else None)
        for k, v in (value or {}).items()
    }


_ACTION_OF: dict[str, Action] = {str(action): action for action in Action}
"""``Action`` by its stored text (``records_json`` writes ``str(action)``)."""


def settle_rows(
    crashed_cycle_id: str,
    jobs: Sequence[PendingJob],
    results: Sequence[RecordResult],
    *,
    settled_by: str,
    job_of: Mapping[str, str],
    now: dt.datetime,
    schedule_hours: Sequence[float],
    prior_escrow: Mapping[str, EscrowEntry],
    known_names: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> CommitRows:
    """Log rows and escrow changes for ``results`` (one per user) of ``crashed_cycle_id``'s ``jobs``.

    ``job_of`` maps each result's Entra id to the job that reported it (named in the row's
    message, with ``settled_by``, the cycle that settled it). ``known_names`` (Entra id → UPN and
    display name, ``StateStore.last_names``) names users the jobs' records do not (a job recorded
    before schema v4, or v7 for the display name), from the provisioning log. Raises ``StateError`` as
    ``build_commit`` does (e.g. a success without a Salesforce id). ``rows.snapshot_writes`` is empty."""
    records: dict[str, JobRecord] = {}
    for job in jobs:
        records.update(job.records)
    plan = Plan()
    for result in results:
        record = records.get(result.entra_id)
        action = record.action if record is not None else result.action
        upn = record.user_principal_name if record is not None else None
        display_name = record.display_name if record is not None else None
        known_upn, known_name = (known_names or {}).get(result.entra_id, (None, None))
        change = PlannedChange(result.entra_id, upn or known_upn, action, result.sf_id, {})
        change.display_name = display_name or known_name
        getattr(plan, _GROUP_OF.get(action, "updates")).append(change)
    rows = build_commit(
        crashed_cycle_id,
        plan=plan,
        results=results,
        quarantined=[],
        now=utc(now),
        schedule_hours=schedule_hours,
        prior_snapshot={},
        prior_escrow=prior_escrow,
    )
    rows.snapshot_writes = []
    for entry in rows.log:
        note = f"settled by cycle {settled_by} from Bulk job {job_of.get(entry.entra_id, '?')}"
        entry.error_message = f"{entry.error_message} ({note})" if entry.error_message else note
    return rows


def describe_settled(entries: Sequence[LogEntry]) -> str:
    """``3 succeeded, 1 failed (escrowed), 0 not processed (sent again)`` of settled log rows."""
    done = {status: sum(1 for e in entries if e.status is status) for status in Status}
    return (
        f"{done[Status.SUCCESS]} succeeded, {done[Status.FAILURE]} failed (escrowed), "
        f"{done[Status.WARNING]} not processed (sent again)"
    )


def log_json(entries: Sequence[LogEntry]) -> list[dict[str, Any]]:
    """Log entries as JSON values (a workspace artifact); changes are not kept."""
    return [
        {
            "cycle_id": e.cycle_id,
            "action": str(e.action),
            "status": str(e.status),
            "entra_id": e.entra_id,
            "upn": e.user_principal_name,
            "display_name": e.display_name,
            "sf_id": e.sf_id,
            "error_code": e.error_code,
            "error_message": e.error_message,
            "at": e.at.isoformat(),
        }
        for e in entries
    ]


def log_entry(row: Mapping[str, Any]) -> LogEntry:
    """A log entry from a ``provisioning_log`` row or a :func:`log_json` value (``changes``, the
    JSON text of the changes, may be absent; ``at`` a datetime or its ISO text)."""
    at = row["at"]
    return LogEntry(
        cycle_id=row["cycle_id"],
        action=Action(row["action"]),
        status=Status(row["status"]),
        entra_id=row["entra_id"],
        user_principal_name=row["upn"],
        sf_id=row["sf_id"],
        changes=changes_from_json(row.get("changes")),
        error_code=row["error_code"],
        error_message=row["error_message"],
        at=dt.datetime.fromisoformat(at) if isinstance(at, str) else at,
        display_name=row.get("display_name"),  # absent from a log artifact written before v7
    )


def log_from_json(values: Sequence[Mapping[str, Any]]) -> list[LogEntry]:
    """The inverse of :func:`log_json`."""
    return [log_entry(v) for v in values]
