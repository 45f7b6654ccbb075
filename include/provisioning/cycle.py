"""One provisioning cycle, stage by stage (DESIGN.md "One cycle").

The cycle owns the order of the stages and the bookkeeping that makes the counts add up:
every user the extract returns ends in exactly one outcome (created, updated, unchanged,
deactivated, quarantined, escrowed, held back), and the state store advances (snapshot, escrow,
delta link) only in ``commit_cycle`` after Salesforce's results are in hand. A crash anywhere
before that leaves the previous state, and the next cycle redoes the work; a Bulk job left
behind by a crash is settled first and forces a full cycle, whose org query sees whatever the
crashed run managed to create, so nothing is created twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from simple_salesforce.format import format_soql

from include.provisioning.diff import DiffInput, plan_changes
from include.provisioning.graph.client import GraphClient, GraphSettings
from include.provisioning.graph.extract import Extraction, extract
from include.provisioning.graph.roles import sync_app_roles_from_profiles
from include.provisioning.mapping import MappingTable
from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    LogEntry,
    Mode,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
    Watermark,
)
from include.provisioning.report import FailureReport, failure_report
from include.provisioning.salesforce.client import SalesforceSession, SalesforceSettings, connect
from include.provisioning.salesforce.load import BulkLoader, LoadRequest
from include.provisioning.salesforce.org import fetch_profiles, fetch_users
from include.provisioning.salesforce.profiles import resolve_profiles
from include.provisioning.settings import DEFAULT_SUITE_PATH, SyncOptions
from include.provisioning.state import StateStore
from include.provisioning.validate import validate

Progress = Callable[[str], None]


class CycleError(RuntimeError):
    """The cycle could not finish; the message says which stage and why."""


@dataclass
class Engine:
    """Everything a cycle needs, built once from settings (CLI) or Airflow connections (hooks)."""

    graph: GraphSettings
    salesforce: SalesforceSettings
    state: StateStore
    table: MappingTable
    options: SyncOptions = field(default_factory=SyncOptions)
    suite_path: Path = DEFAULT_SUITE_PATH
    progress: Progress = lambda message: None


@dataclass
class CycleResult:
    summary: CycleSummary
    plan: Plan
    quarantined: list[QuarantinedUser]
    results: list[RecordResult]
    log: list[LogEntry]
    report: FailureReport | None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    users: pd.DataFrame | None = None
    """The USERS frame the cycle worked on (after scoping)."""


class _Phases:
    """Times each stage for the summary and tells the person watching what is happening."""

    def __init__(self, summary: CycleSummary, progress: Progress):
        self.summary = summary
        self.progress = progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress(f"[{name}] ...")
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.summary.phase_seconds[name] = round(self.summary.phase_seconds.get(name, 0.0) + seconds, 3)
            self.progress(f"[{name}] done in {seconds:.2f}s")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _choose_mode(
    watermark: Watermark | None, requested: Mode, fingerprint: str, forced_full: str | None
) -> tuple[Mode, str | None]:
    if requested is Mode.FULL:
        return Mode.FULL, None
    reason = forced_full
    if reason is None and (watermark is None or not watermark.delta_link):
        reason = "no saved delta link (first cycle)"
    if reason is None and watermark is not None and watermark.mapping_fingerprint != fingerprint:
        reason = "the mapping table or scoping filters changed since the last cycle"
    if reason is not None:
        return Mode.FULL, reason
    return Mode.INCREMENTAL, None


def _recover_jobs(engine: Engine, session: SalesforceSession, cycle_id: str, now: dt.datetime) -> str | None:
    """Settle Bulk jobs a crashed run left behind: what Salesforce did with them goes into the
    provisioning log, and the full cycle that follows re-plans their users against the org."""
    pending = engine.state.pending_jobs()
    if not pending:
        return None
    loader = BulkLoader(session, on_job_created=lambda *args: None, progress=engine.progress)
    for job in pending:
        results = loader.recover(job)
        done = sum(1 for r in results if r.ok)
        engine.progress(f"recovered Bulk job {job.job_id} ({job.operation}): {done}/{len(results)} rows succeeded")
        engine.state.settle_job(cycle_id, job, results, now)
    return f"{len(pending)} Bulk job(s) left by an interrupted run were settled"


def _apply_scoping(engine: Engine, users: pd.DataFrame) -> pd.DataFrame:
    if engine.table.scoping is None or users.empty:
        return users
    in_scope = engine.table.scoping.evaluate(users)
    leaving = (~in_scope) & (~users["IsSoftDeleted"].astype(bool))
    if leaving.any():
        users = users.copy()
        users.loc[leaving, "IsSoftDeleted"] = True
        users.loc[leaving, "scopeReason"] = "out-of-scope"
    return users


def _hold_escrow_not_due(engine: Engine, users: pd.DataFrame, now: dt.datetime) -> tuple[pd.DataFrame, int]:
    """Users whose last write failed wait for their escrow retry time (Entra's schedule); they
    are counted as escrowed and not written again before then. Deactivations are not held."""
    waiting = {e.entra_id for e in engine.state.escrow_entries() if e.next_attempt_at > now}
    if not waiting or users.empty:
        return users, 0
    hold = users["id"].isin(waiting) & ~users["IsSoftDeleted"].astype(bool)
    return users[~hold], int(hold.sum())


def _upn_of(users: pd.DataFrame) -> dict[str, str | None]:
    upns = users["userPrincipalName"] if "userPrincipalName" in users else pd.Series([None] * len(users))
    return {str(k): (None if pd.isna(v) else str(v)) for k, v in zip(users["id"], upns, strict=True)}


def _load(engine: Engine, session: SalesforceSession, cycle_id: str, plan: Plan) -> list[RecordResult]:
    def remember(job_id: str, operation: str, key_field: str, keys: dict[str, str]) -> None:
        engine.state.record_job(cycle_id, job_id, operation, key_field, keys)

    loader = BulkLoader(session, on_job_created=remember, progress=engine.progress)
    results: list[RecordResult] = []
    if plan.creates:
        rows = [{"_entra_id": c.entra_id, **{k: v.new for k, v in c.changes.items()}} for c in plan.creates]
        results += loader.run(LoadRequest(Action.CREATE, "insert", rows))
    updates = [*plan.updates, *plan.reactivations, *plan.deactivations]
    if updates:
        rows = [{"_entra_id": c.entra_id, "Id": c.sf_id, **{k: v.new for k, v in c.changes.items()}} for c in updates]
        actions = {c.entra_id: c.action for c in updates}
        for result in loader.run(LoadRequest(Action.UPDATE, "update", rows)):
            result.action = actions.get(result.entra_id, result.action)
            results.append(result)
    # This cycle's job records are deleted by commit_cycle, in the same transaction as the
    # results: a crash before the commit leaves them for the next run to recover.
    return results


def _count(summary: CycleSummary, plan: Plan, results: list[RecordResult], quarantined: int, *, planned: bool) -> None:
    """Outcome counts from Salesforce's results, or from the plan itself for a dry run."""
    by_action: dict[Action, int] = {}
    failed = 0
    if planned:
        results = [RecordResult(c.entra_id, c.action, c.sf_id, ok=True) for c in plan.writes()]
    for result in results:
        if result.ok:
            by_action[result.action] = by_action.get(result.action, 0) + 1
        else:
            failed += 1
    summary.created = by_action.get(Action.CREATE, 0)
    summary.updated = by_action.get(Action.UPDATE, 0) + by_action.get(Action.REACTIVATE, 0)
    summary.deactivated = by_action.get(Action.DISABLE, 0)
    summary.escrowed = failed
    summary.unchanged = len(plan.unchanged)
    summary.held_back = len(plan.held_back)
    summary.quarantined = quarantined


def run_cycle(
    engine: Engine,
    mode: Mode = Mode.AUTO,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    force: bool = False,
    focus_upn: str | None = None,
) -> CycleResult:
    """Run one cycle; with ``dry_run`` plan everything and write nothing (neither Salesforce nor state).

    ``focus_upn`` restricts the cycle to one user (provision on demand): a full read of the
    assignments decides scope and role, Salesforce is asked about that user alone, and the delta
    link is not advanced, so the scheduled cycles are unaffected."""
    if focus_upn is not None:
        mode = Mode.FULL
    cycle = _Cycle(engine, mode, dry_run=dry_run, now=now or _now(), focus_upn=focus_upn)
    if not dry_run:
        cycle.summary.cycle_id = engine.state.start_cycle(mode, cycle.fingerprint, force=force)
    try:
        return cycle.run()
    except Exception as exc:
        cycle.summary.status = CycleStatus.FAILED
        cycle.summary.reason = f"{type(exc).__name__}: {exc}"
        cycle.summary.finished_at = _now()
        if not dry_run:
            engine.state.fail_cycle(cycle.summary.cycle_id, cycle.summary.reason, cycle.summary)
        raise


class _Cycle:
    """The stages of one cycle and what they hand each other."""

    def __init__(
        self, engine: Engine, requested: Mode, *, dry_run: bool, now: dt.datetime, focus_upn: str | None = None
    ) -> None:
        self.engine = engine
        self.focus_upn = focus_upn
        self.requested = requested
        self.dry_run = dry_run
        self.now = now
        self.fingerprint = engine.table.fingerprint()
        self.summary = CycleSummary(cycle_id="dry-run", mode=requested, status=CycleStatus.RUNNING, started_at=now)
        self.phase = _Phases(self.summary, engine.progress)
        self.notes: list[str] = []
        self.quarantined: dict[str, QuarantinedUser] = {}
        self.upns: dict[str, str | None] = {}
        self.escrow_waiting = 0
        self.session: SalesforceSession | None = None
        self.users: pd.DataFrame | None = None

    def run(self) -> CycleResult:
        engine, phase = self.engine, self.phase
        with phase("connect"):
            self.session = session = connect(engine.salesforce)
            forced_full = None if self.dry_run else _recover_jobs(engine, session, self.summary.cycle_id, self.now)
        watermark = engine.state.watermark()
        mode, why_full = _choose_mode(watermark, self.requested, self.fingerprint, forced_full)
        delta_link = watermark.delta_link if watermark is not None and mode is Mode.INCREMENTAL else None
        if why_full and self.requested is not Mode.FULL:
            self.notes.append(f"full cycle: {why_full}")
        self.summary.mode = mode
        with phase("state"):
            snapshot = engine.state.snapshot()
            known = engine.state.seen_roles() if mode is Mode.INCREMENTAL else {}
            if len(snapshot):
                known.update(zip(snapshot["entra_id"], snapshot["roles"], strict=True))
            due = {entry.entra_id for entry in engine.state.due_escrow(self.now)}

        with phase("roles"):
            profiles = fetch_profiles(session)
            if engine.options.import_roles and not self.dry_run:
                outcome = asyncio.run(_import_roles(engine, list(profiles["Name"])))
                self.notes.append(f"app roles: {outcome}")

        with phase("extract"):
            extraction = asyncio.run(_extract(engine, mode, delta_link, known, due))
        if extraction.fell_back:
            self.notes.append(f"full cycle: {extraction.fell_back}")
        self.summary.mode = extraction.mode
        users = _apply_scoping(engine, extraction.users)
        if self.focus_upn is not None:
            users = users[users["userPrincipalName"].astype(str).str.lower() == self.focus_upn.lower()]
            extraction.quarantined = [q for q in extraction.quarantined if q.entra_id in set(users["id"])]
        self.users = users
        if self.focus_upn is None:
            users, self.escrow_waiting = _hold_escrow_not_due(engine, users, self.now)
        self.upns = _upn_of(users)
        for entry in extraction.quarantined:
            self.quarantined[entry.entra_id] = entry
        expected = len(users) + len({q.entra_id for q in extraction.quarantined} - set(users["id"]))

        with phase("validate"):
            validation = validate(users[~users["id"].isin(self.quarantined.keys())], engine.suite_path)
        self._quarantine({q.entra_id: q.reasons for q in validation.quarantined})
        # The share is of the population, not of this cycle's batch: an incremental cycle that
        # sees one changed user must not stop because that one user is bad.
        population = max(validation.checked, len(snapshot))
        share = len(validation.quarantined) / population if population else 0.0
        if share > engine.options.max_quarantine_share:
            self.summary.status = CycleStatus.STOPPED
            self.summary.reason = (
                f"{len(validation.quarantined)} of {population} users ({share:.0%}) failed validation "
                f"(limit {engine.options.max_quarantine_share:.0%}); nothing was written to Salesforce"
            )
            return self._finish(Plan(), [], extraction, expected, advance=False)

        with phase("transform"):
            mapping = engine.table.evaluate(validation.valid)
            in_scope_ids = set(users.loc[~users["IsSoftDeleted"].astype(bool), "id"])
            self._quarantine({k: v for k, v in mapping.errors.items() if k in in_scope_ids})
            mapped, profile_errors = resolve_profiles(mapping.mapped, profiles)
            self._quarantine({k: v for k, v in profile_errors.items() if k in in_scope_ids})
            mapped = mapped[~mapped["id"].isin(self.quarantined.keys())]

        org = None
        if self.summary.mode is Mode.FULL:
            with phase("org"):
                fields = [f.target for f in engine.table.fields if f.target != "ProfileName"]
                where = None
                if self.focus_upn is not None:
                    where = (
                        format_soql("Username = {}", str(mapped["Username"].iloc[0])) if len(mapped) else "Id = null"
                    )
                org = fetch_users(session, sorted({*fields, "ProfileId", "IsActive"} - {"Id"}), where=where)

        with phase("diff"):
            if "IsSoftDeleted" not in mapped:
                flags = users[["id", "IsSoftDeleted"]].astype({"id": object})
                mapped = mapped.astype({"id": object}).merge(flags, on="id", how="left")
            plan = plan_changes(
                DiffInput(
                    mapped=mapped,
                    users=users[~users["id"].isin(self.quarantined.keys())],
                    snapshot=snapshot,
                    org=org,
                    matching=[f.target for f in engine.table.matching_fields()],
                    defaults=engine.table.defaults(),
                    create_only=engine.table.create_only(),
                    clear_when_null=engine.table.clear_when_null(),
                    managed_count=len(snapshot),
                    options=engine.options,
                )
            )
        for entry in plan.quarantined:
            self._quarantine({entry.entra_id: entry.reasons})

        if self.dry_run:
            self.summary.status = CycleStatus.STOPPED
            self.summary.reason = "dry run: nothing was written"
            return self._finish(plan, [], extraction, expected, advance=False)

        with phase("load"):
            results = _load(engine, session, self.summary.cycle_id, plan)
        self.summary.status = CycleStatus.SUCCEEDED
        return self._finish(plan, results, extraction, expected, advance=self.focus_upn is None)

    def _seen(self) -> dict[str, list[str]]:
        """Roles of every user this cycle evaluated; the store keeps those left without a link."""
        users = self.users
        if users is None or users.empty:
            return {}
        return {str(k): list(v) for k, v in zip(users["id"], users["appRoleAssignments"], strict=True)}

    def _quarantine(self, errors: dict[str, list[str]]) -> None:
        for entra_id, reasons in errors.items():
            entry = self.quarantined.get(entra_id)
            if entry is None:
                self.quarantined[entra_id] = QuarantinedUser(entra_id, self.upns.get(entra_id), list(reasons))
            else:
                entry.reasons.extend(r for r in reasons if r not in entry.reasons)

    def _finish(
        self, plan: Plan, results: list[RecordResult], extraction: Extraction, expected: int, *, advance: bool
    ) -> CycleResult:
        summary, quarantined = self.summary, list(self.quarantined.values())
        _count(summary, plan, results, len(quarantined), planned=self.dry_run)
        summary.escrowed += self.escrow_waiting
        outcomes = len(plan.writes()) + len(plan.unchanged) + len(plan.held_back) + len(quarantined)
        if (self.dry_run or summary.status is not CycleStatus.STOPPED) and outcomes != expected:
            raise CycleError(
                f"bookkeeping: {expected} users were extracted but {outcomes} ended in an outcome "
                "(this is a bug; nothing was committed)"
            )
        summary.requests = dict(extraction.requests)
        if self.session is not None:
            summary.requests.update({f"salesforce.{k}": v for k, v in self.session.requests_by_kind().items()})
        summary.finished_at = _now()
        log: list[LogEntry] = []
        if not self.dry_run:
            log = self.engine.state.commit_cycle(
                summary,
                plan=plan,
                results=results,
                quarantined=quarantined,
                delta_link=extraction.delta_link,
                mapping_fingerprint=self.fingerprint,
                now=self.now,
                escrow_schedule_hours=self.engine.options.escrow_schedule_hours,
                advance_watermark=advance,
                seen=self._seen(),
                seen_complete=summary.mode is Mode.FULL and self.focus_upn is None,
            )
        report = failure_report(summary, log, quarantined, plan.held_back, held_back_reason=plan.held_back_reason)
        return CycleResult(
            summary, plan, quarantined, results, log, report, dry_run=self.dry_run, notes=self.notes, users=self.users
        )


async def _extract(
    engine: Engine, mode: Mode, delta_link: str | None, known: dict[str, Any], due: set[str]
) -> Extraction:
    async with GraphClient(engine.graph) as client:
        return await extract(
            client,
            service_principal_id=engine.graph.service_principal_id,
            select=engine.table.source_attributes(),
            mode=mode,
            delta_link=delta_link,
            known=known,
            also_fetch=due,
            progress=engine.progress,
        )


async def _import_roles(engine: Engine, profile_names: list[str]) -> Any:
    async with GraphClient(engine.graph) as client:
        return await sync_app_roles_from_profiles(client, engine.graph.service_principal_id, profile_names)


def planned_change_lines(plan: Plan, limit: int = 50) -> list[str]:
    """Human-readable lines of a plan, for the dry run."""
    lines: list[str] = []
    groups: list[tuple[str, list[PlannedChange]]] = [
        ("create", plan.creates),
        ("update", plan.updates),
        ("reactivate", plan.reactivations),
        ("deactivate", plan.deactivations),
        ("held back", plan.held_back),
    ]
    for label, changes in groups:
        for change in changes[:limit]:
            fields = ", ".join(f"{k}: {v.old!r} -> {v.new!r}" for k, v in change.changes.items())
            lines.append(f"{label:<10} {change.user_principal_name or change.entra_id}  {fields}")
        if len(changes) > limit:
            lines.append(f"{label:<10} ... and {len(changes) - limit} more")
    return lines
