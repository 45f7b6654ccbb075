"""What a cycle's commit writes, worked out without touching the database.

``build_commit`` turns the plan, Salesforce's per-record results and the quarantine into the
rows ``StateStore.commit_cycle`` then writes in one transaction: provisioning-log entries,
snapshot rows, escrow changes and quarantine rows. Keeping it pure makes every rule (what a
failure does to escrow, what a deactivation does to the snapshot) testable on its own, and
keeps the transaction short: all decisions are made before it writes. ``CommitBuilder`` does
the same a part of the plan at a time (the commit stage streams a million users' plan file row
group by row group, writing each part's rows before it reads the next).

Rules, one user at a time:

* a write that succeeded → ``Success`` log row; the snapshot takes the planned ``desired``
  values (or, when the plan carried none, the previous fields with the change applied); any
  escrow entry is cleared;
* a write that failed → ``Failure`` log row with Salesforce's error; escrow gets the user with
  one more attempt and the next retry time from the schedule, or drops it with a final note
  once the schedule is used up; the snapshot keeps what was applied before;
* a write Salesforce never processed (or that came back without any result) → ``Warning`` log
  row; escrow keeps the user due immediately without counting an attempt;
* a held-back deactivation → ``Skipped`` ``StagedDelete`` row with the threshold's reason;
* a quarantined user → ``Skipped`` ``Quarantine`` row with the reasons, and a quarantine row;
* an unchanged user → no log row; the snapshot learns it when it has a Salesforce id (so a
  first full cycle records the users it matched), and any escrow entry is cleared.

A full cycle (``full=True``) saw the org, so its plan's links are the only true ones: an
unchanged user the plan links to no Salesforce user does not fall back to the snapshot's old
link, and a failed or unprocessed write to a linked user stores what the org holds now (the
plan's values before the change) rather than keeping a row from before; ``snapshot_kept`` names
the rows that are right as stored, so the store can delete the rest (see ``rebuild.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from include.provisioning.model import (
    Action,
    EscrowEntry,
    LogEntry,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
    Status,
)
from include.provisioning.state import codec
from include.provisioning.state.codec import JsonArray, JsonObject, StateError, dumps, loads, plain, to_bool
from include.provisioning.state.escrow import give_up_note, next_attempt_at

UNPROCESSED_CODE = "UNPROCESSED"
NO_RESULT_MESSAGE = "Salesforce returned no result for this record; it is retried in the next cycle"
UNPROCESSED_MESSAGE = "Salesforce did not process this record (its job stopped first); it is retried in the next cycle"
HELD_BACK_MESSAGE = "held back by the accidental-deletion threshold"

_json = functools.partial(orjson.dumps, default=codec._default, option=codec._OPTIONS)
"""``codec.dumps`` without its wrapper, for the two documents of every snapshot row (a million
rows: the wrapper cost a second); a value it refuses goes through ``codec.dumps`` for the error."""


class SnapshotRow(NamedTuple):
    """A snapshot row as stored, JSON encoded (a tuple: a million of them stay small)."""

    entra_id: str
    sf_id: str | None
    match_value: str | None
    is_active: bool
    fields: str
    roles: str

    def digest(self) -> int:
        return hash(self[1:])

    def encoded(self) -> SnapshotRow:
        return self

    def stored(self, *extra: Any) -> tuple[Any, ...]:
        return (*self, *extra)


class SnapshotWrite(NamedTuple):
    """A snapshot row the commit writes, its fields and roles not encoded yet: the store encodes
    them a batch at a time as it writes (a million users' JSON held at once was the commit's
    largest allocation, some 600 MB)."""

    entra_id: str
    sf_id: str | None
    match_value: str | None
    is_active: bool
    fields: Mapping[str, Any]
    roles: Sequence[Any]

    def encoded(self) -> SnapshotRow:
        """The row as stored; raises ``StateError`` naming the user for a value JSON cannot hold."""
        return SnapshotRow(*self.stored())

    def stored(self, *extra: Any) -> tuple[Any, ...]:
        """``encoded`` as a plain tuple, followed by ``extra`` (the store's own columns): what the
        store writes, without a ``SnapshotRow`` built per row only to be unpacked again."""
        try:
            # The plan's desired values as the plan file held them: that text already.
            fields = self.fields.text if type(self.fields) is JsonObject else _json(self.fields).decode()
            roles = self.roles.text if type(self.roles) is JsonArray else _json(list(self.roles)).decode()
        except TypeError:  # dumps raises the same error, naming the user
            what = f"snapshot of user {self.entra_id}"
            fields, roles = dumps(self.fields, what=what), dumps(list(self.roles), what=what)
        return (self.entra_id, self.sf_id, self.match_value, self.is_active, fields, roles, *extra)


@dataclass(slots=True)
class PriorSnapshot:
    """What the snapshot holds for a user before this commit.

    For users the commit may merge into (writes, unchanged users without desired values) the
    JSON is kept; for the rest (a full cycle's many unchanged users) only a digest of the row,
    which is all the "is it the same?" check needs, so a million-user cycle does not hold the
    whole table's JSON twice."""

    sf_id: str | None
    match_value: str | None
    is_active: bool
    digest: int
    fields_json: str | None = None
    roles_json: str | None = None

    @classmethod
    def of(cls, row: SnapshotRow, *, keep_json: bool) -> PriorSnapshot:
        if keep_json:
            return cls(row.sf_id, row.match_value, row.is_active, row.digest(), row.fields, row.roles)
        return cls(row.sf_id, row.match_value, row.is_active, row.digest())

    def fields(self) -> dict[str, Any]:
        if self.fields_json is None:
            raise StateError("internal: the snapshot row was read without its fields")
        return loads(self.fields_json) or {}


@dataclass
class CommitRows:
    log: list[LogEntry] = field(default_factory=list)
    snapshot_writes: list[SnapshotWrite | SnapshotRow] = field(default_factory=list)
    """Rows to upsert (``encoded()`` gives each as stored)."""
    escrow_upserts: list[EscrowEntry] = field(default_factory=list)
    escrow_deletes: list[str] = field(default_factory=list)
    quarantine: list[QuarantinedUser] = field(default_factory=list)
    snapshot_kept: set[str] = field(default_factory=set)
    """Users whose stored snapshot row is already right (not rewritten, not to be deleted)."""

    @property
    def snapshot(self) -> list[SnapshotRow]:
        """The rows to upsert as stored, all encoded at once (the store encodes a batch at a time)."""
        return [row.encoded() for row in self.snapshot_writes]


def affected_ids(plan: Plan) -> tuple[set[str], set[str]]:
    """Users whose snapshot rows the commit reads first: (with their JSON, digest only)."""
    full = {change.entra_id for change in plan.writes()}
    digest_only: set[str] = set()
    for change in plan.unchanged:
        (digest_only if change.desired else full).add(change.entra_id)
    return full, digest_only - full


def _is_active(change: PlannedChange, prior: PriorSnapshot | None) -> bool:
    if change.action is Action.DISABLE:
        return False
    if change.action is Action.REACTIVATE:
        return True
    desired = change.desired
    # The plan file's text (``STORED_PLAN``): a plain boolean is read off it without decoding it.
    value = desired.flag("IsActive") if type(desired) is JsonObject else None
    if value is None:
        value = desired.get("IsActive")
    if value is True or value is False:  # the usual case, as to_bool would read it
        return value
    return to_bool(value, default=prior.is_active if prior is not None else True)


def _applied_fields(change: PlannedChange, prior: PriorSnapshot | None) -> dict[str, Any]:
    """What Salesforce now holds for the fields this product manages."""
    if change.desired:
        return change.desired  # stored as the diff will compare it next cycle (JSON turns NaN into null)
    fields = prior.fields() if prior is not None else {}
    fields.update({name: plain(c.new) for name, c in change.changes.items()})
    return fields


def _snapshot_row(
    change: PlannedChange, sf_id: str | None, fields: Mapping[str, Any], is_active: bool, prior: PriorSnapshot | None
) -> SnapshotWrite:
    match_value = change.match_value
    if match_value is None and prior is not None:
        match_value = prior.match_value
    return SnapshotWrite(change.entra_id, sf_id, match_value, is_active, fields, change.roles)


def _log(
    cycle_id: str,
    change: PlannedChange,
    status: Status,
    now: dt.datetime,
    *,
    action: Action | None = None,
    sf_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> LogEntry:
    return LogEntry(  # positional: a million of them
        cycle_id,
        action or change.action,
        status,
        change.entra_id,
        change.user_principal_name,
        sf_id if sf_id is not None else change.sf_id,
        change.changes,
        error_code,
        error_message,
        now,
        change.display_name,
    )


PLAN_OUTCOMES = ("creates", "updates", "deactivations", "reactivations", "held_back", "unchanged")
"""The plan's lists, in the order a clash between two of them is reported."""


class CommitBuilder:
    """``build_commit`` a part of the plan at a time (a plan file's row groups), for a commit
    that writes each part's rows before reading the next: only one part's rows are in memory.

    ``part`` gives the rows of one part; ``finish`` those of the quarantined users, after the
    last part, and raises for a result no planned write had. A user in two outcomes raises as
    soon as the second is read (the caller's transaction then commits nothing)."""

    def __init__(
        self,
        cycle_id: str,
        *,
        results: Sequence[RecordResult],
        quarantined: Sequence[QuarantinedUser],
        now: dt.datetime,
        schedule_hours: Sequence[float],
        full: bool = False,
    ) -> None:
        self.cycle_id, self.now, self.schedule_hours, self.full = cycle_id, now, schedule_hours, full
        self.results = results
        self.quarantined = quarantined
        self._unused = _results_by_id(results)
        """Results not yet matched to a planned write (all of them must be, by ``finish``)."""
        self._outcome: dict[str, str] = {}
        """Entra id → the outcome it was read in (``PLAN_OUTCOMES``), to find a user in two."""

    def part(
        self,
        plan: Plan,
        *,
        prior_snapshot: Mapping[str, PriorSnapshot],
        prior_escrow: Mapping[str, EscrowEntry],
    ) -> CommitRows:
        """The rows of ``plan``'s changes (its quarantined users are ``finish``'s)."""
        for name in PLAN_OUTCOMES:
            self._check_new(name, getattr(plan, name))
        cycle_id, now, full = self.cycle_id, self.now, self.full
        rows = CommitRows()
        for change in plan.writes():
            entra_id = change.entra_id
            prior = prior_snapshot.get(entra_id)
            escrowed = prior_escrow.get(entra_id)
            result = self._unused.pop(entra_id, None)
            if result is not None and result.ok:
                _succeeded(cycle_id, change, result=result, prior=prior, escrowed=escrowed, now=now, rows=rows)
            elif result is not None and not result.unprocessed:
                _failed(
                    cycle_id,
                    change,
                    result=result,
                    escrowed=escrowed,
                    now=now,
                    schedule_hours=self.schedule_hours,
                    rows=rows,
                )
            else:
                _unprocessed(cycle_id, change, result=result, escrowed=escrowed, now=now, rows=rows)
            if full and not (result is not None and result.ok) and change.sf_id is not None:
                rows.snapshot_writes.append(_observed_row(change))

        for change in plan.held_back:
            rows.log.append(
                _log(
                    cycle_id,
                    change,
                    Status.SKIPPED,
                    now,
                    action=Action.STAGED_DELETE,
                    error_message=plan.held_back_reason or HELD_BACK_MESSAGE,
                )
            )

        for change in plan.unchanged:
            if change.entra_id in prior_escrow:
                rows.escrow_deletes.append(change.entra_id)
            prior = prior_snapshot.get(change.entra_id)
            sf_id = change.sf_id
            if sf_id is None and not full:  # an incremental plan does not see the org: keep the link
                sf_id = prior.sf_id if prior is not None else None
            if sf_id is None:
                continue
            fields = change.desired if change.desired else (prior.fields() if prior is not None else {})
            default_active = prior.is_active if prior is not None else False
            is_active = to_bool(fields.get("IsActive"), default=default_active)
            row: SnapshotWrite | SnapshotRow = _snapshot_row(change, sf_id, fields, is_active, prior)
            if prior is not None:  # compared as stored, and kept encoded
                row = row.encoded()
                if prior.digest == row.digest():
                    rows.snapshot_kept.add(change.entra_id)
                    continue
            rows.snapshot_writes.append(row)
        return rows

    def finish(self) -> CommitRows:
        """The quarantined users' rows; raises ``StateError`` for a result that matched no write."""
        self._check_new("quarantined", self.quarantined)
        if self._unused:
            stray = next(r for r in self.results if r.entra_id in self._unused)
            raise StateError(
                f"Salesforce result for user {stray.entra_id} ({stray.action}) matches no planned write "
                "(nothing was committed)"
            )
        rows = CommitRows()
        for user in self.quarantined:
            rows.quarantine.append(user)
            rows.log.append(
                LogEntry(
                    cycle_id=self.cycle_id,
                    action=Action.QUARANTINE,
                    status=Status.SKIPPED,
                    entra_id=user.entra_id,
                    user_principal_name=user.user_principal_name,
                    sf_id=None,
                    changes={},
                    error_code=None,
                    error_message="; ".join(user.reasons) or "quarantined (no reason given)",
                    at=self.now,
                    display_name=user.display_name,
                )
            )
        return rows

    def _check_new(self, name: str, items: Sequence[PlannedChange] | Sequence[QuarantinedUser]) -> None:
        """Each user ends a cycle in exactly one outcome (repeated within one is harmless)."""
        outcome = self._outcome
        for item in items:
            other = outcome.setdefault(item.entra_id, name)
            if other != name:
                raise StateError(
                    f"user {item.entra_id} appears in both plan.{other} and {name}; each user must end a "
                    "cycle in exactly one outcome (nothing was committed)"
                )


def _results_by_id(results: Sequence[RecordResult]) -> dict[str, RecordResult]:
    by_id = {result.entra_id: result for result in results}
    if len(by_id) != len(results):
        seen: set[str] = set()
        for result in results:
            if result.entra_id in seen:
                raise StateError(f"two Salesforce results for user {result.entra_id} (nothing was committed)")
            seen.add(result.entra_id)
    return by_id


def build_commit(
    cycle_id: str,
    *,
    plan: Plan,
    results: Sequence[RecordResult],
    quarantined: Sequence[QuarantinedUser],
    now: dt.datetime,
    schedule_hours: Sequence[float],
    prior_snapshot: Mapping[str, PriorSnapshot],
    prior_escrow: Mapping[str, EscrowEntry],
    full: bool = False,
) -> CommitRows:
    """Every row the commit writes; raises ``StateError`` (naming the user) on inconsistent input.

    ``full``: the plan was made against the org by a complete full cycle (see the module notes)."""
    builder = CommitBuilder(
        cycle_id, results=results, quarantined=quarantined, now=now, schedule_hours=schedule_hours, full=full
    )
    rows = builder.part(plan, prior_snapshot=prior_snapshot, prior_escrow=prior_escrow)
    last = builder.finish()
    rows.log += last.log
    rows.quarantine += last.quarantine
    return rows


def _observed_row(change: PlannedChange) -> SnapshotRow:
    """The snapshot row of a linked user whose write did not happen, from a full cycle's plan:
    the values the org holds now are the planned ones with each change undone."""
    fields = dict(change.desired)
    fields.update({name: plain(c.old) for name, c in change.changes.items()})
    is_active = to_bool(fields.get("IsActive"), default=change.action is not Action.REACTIVATE)
    return _snapshot_row(change, change.sf_id, fields, is_active, None)


def _succeeded(
    cycle_id: str,
    change: PlannedChange,
    *,
    result: RecordResult,
    prior: PriorSnapshot | None,
    escrowed: EscrowEntry | None,
    now: dt.datetime,
    rows: CommitRows,
) -> None:
    sf_id = result.sf_id or change.sf_id or (prior.sf_id if prior is not None else None)
    if sf_id is None:
        raise StateError(
            f"user {change.entra_id}: Salesforce reported {change.action} succeeded but gave no record Id "
            "(nothing was committed)"
        )
    fields = change.desired or _applied_fields(change, prior)
    rows.snapshot_writes.append(_snapshot_row(change, sf_id, fields, _is_active(change, prior), prior))
    if escrowed is not None:
        rows.escrow_deletes.append(change.entra_id)
    rows.log.append(_log(cycle_id, change, Status.SUCCESS, now, sf_id=sf_id))


def _failed(
    cycle_id: str,
    change: PlannedChange,
    *,
    result: RecordResult,
    escrowed: EscrowEntry | None,
    now: dt.datetime,
    schedule_hours: Sequence[float],
    rows: CommitRows,
) -> None:
    attempts = (escrowed.attempts if escrowed is not None else 0) + 1
    first = escrowed.first_failed_at if escrowed is not None else now
    retry_at = next_attempt_at(attempts, now, schedule_hours)
    message = result.error_message or "Salesforce rejected the record without a message"
    if retry_at is None:
        message = f"{message} {give_up_note(attempts, first)}"
        if escrowed is not None:
            rows.escrow_deletes.append(change.entra_id)
    else:
        rows.escrow_upserts.append(
            EscrowEntry(
                entra_id=change.entra_id,
                action=change.action,
                attempts=attempts,
                first_failed_at=first,
                next_attempt_at=retry_at,
                error_code=result.error_code,
                error_message=result.error_message,
                last_cycle_id=cycle_id,
            )
        )
    rows.log.append(
        _log(
            cycle_id,
            change,
            Status.FAILURE,
            now,
            sf_id=result.sf_id,
            error_code=result.error_code or "UNKNOWN_ERROR",
            error_message=message,
        )
    )


def _unprocessed(
    cycle_id: str,
    change: PlannedChange,
    *,
    result: RecordResult | None,
    escrowed: EscrowEntry | None,
    now: dt.datetime,
    rows: CommitRows,
) -> None:
    code = (result.error_code if result is not None else None) or UNPROCESSED_CODE
    message = (result.error_message if result is not None else None) or (
        UNPROCESSED_MESSAGE if result is not None else NO_RESULT_MESSAGE
    )
    rows.escrow_upserts.append(
        EscrowEntry(
            entra_id=change.entra_id,
            action=change.action,
            attempts=escrowed.attempts if escrowed is not None else 0,
            first_failed_at=escrowed.first_failed_at if escrowed is not None else now,
            next_attempt_at=now,
            error_code=code,
            error_message=message,
            last_cycle_id=cycle_id,
        )
    )
    rows.log.append(_log(cycle_id, change, Status.WARNING, now, error_code=code, error_message=message))
