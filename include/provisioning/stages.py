"""The stages of one cycle, each runnable on its own (README.md "The sync engine").

``begin`` opens (or resumes) a cycle; ``extract`` → ``validate`` → ``transform`` → ``plan`` →
``load`` → ``commit`` each read what earlier stages left in the cycle's :class:`Workspace` and
leave their own output there. The command line runs them one after another in one process with a
memory workspace; the Airflow DAG runs each as a task with a workspace under the run's path, so a
person sees in the grid which stage failed and can clear it and re-run from there.

Re-running a stage replaces its own outputs (quarantine entries included, one artifact per stage),
so it converges. ``load`` is the one stage with effects outside: it resumes the Bulk jobs its cycle
recorded before a crash (results are read back, rows Salesforce never processed are sent again)
rather than sending everything twice. ``commit`` is idempotent: a cycle commits once.

A stage that finds the cycle stopped (validation stop, dry run) returns ``StageOutcome.skipped``
with the reason; ``commit`` still records the stopped cycle and its report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Collection, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from include.provisioning import quarantine_rules
from include.provisioning.artifacts import LOAD_COLUMNS, LOAD_PLAN, PLAN, QUARANTINE, RESULTS, STORED_PLAN
from include.provisioning.diff import UNIQUE_FIELDS, DiffInput, plan_table
from include.provisioning.engine import Engine
from include.provisioning.errors import ProvisioningError
from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    LogEntry,
    Mode,
    PendingJob,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
    Status,
    Watermark,
    salesforce_id_key,
)
from include.provisioning.plan_table import PLAN_GROUPS, WRITE_GROUPS, PlanTable
from include.provisioning.report import EscrowBacklog, FailureReport, failure_report
from include.provisioning.salesforce.fields import SalesforceFieldError, field_origin, refused_job_fault
from include.provisioning.salesforce.profiles import resolve_profiles
from include.provisioning.shards import Shard
from include.provisioning.shares import percent, percent_of
from include.provisioning.slices import AssignmentWindow
from include.provisioning.state.codec import ListView, new_values
from include.provisioning.state.job_quarantine import JobQuarantine
from include.provisioning.state.rebuild import FullObservation, held_rows
from include.provisioning.state.recovery import describe_settled, log_from_json, log_json
from include.provisioning.validate import validate
from include.provisioning.workspace import Workspace

# The service clients are imported by the stages that talk to the service, not here: every task
# process imports this module, and httpx (Graph) or simple-salesforce, requests and PyJWT
# (Salesforce) cost each process that does not use them ~0.4 and ~0.8 CPU-s to import.
if TYPE_CHECKING:
    from include.provisioning.graph.extract import Extraction
    from include.provisioning.salesforce.client import SalesforceSession

STAGES = ("extract", "validate", "transform", "plan", "load", "commit")
QUARANTINE_STAGES = ("extract", "validate", "transform", "plan")
"""Stages that quarantine users, in the order their reasons are merged."""
SHARDED_STAGES = ("validate", "transform", "load")
"""Stages that run once per shard (shards.py); their artifacts carry the shard in the name."""
GUARDING_STAGES = ("validate", "transform")
"""Stages whose rules may guard one write only (``model.Guard``); each leaves ``blocks_<stage>``,
``{"create": {entra id: reasons}, "update": {...}}``, for the diff to apply to that write."""
RECOVERED = "recovered"
"""``begin``'s artifact: the failed rows of an interrupted cycle's Bulk jobs it settled (log
entries as JSON, filed under that cycle), for this cycle's report."""
PROFILE_NAMES = "profile_names"
"""``transform``'s artifact: ``{Profile Id: Name}`` of the org's profiles (``CycleResult.profile_names``)."""


class CycleError(ProvisioningError, RuntimeError):
    """The cycle could not finish; the message says which stage and why."""


@dataclass
class CycleContext:
    """What ``begin`` decided, read by every later stage (``context.json`` in the workspace)."""

    cycle_id: str
    requested: Mode
    mode: Mode
    """The mode decided at the start (``extract`` may still fall back to full; see extract.json)."""
    now: dt.datetime
    fingerprint: str
    dry_run: bool = False
    focus_upn: str | None = None
    approve_deactivations: bool = False
    delta_link: str | None = None
    run_key: str | None = None
    notes: list[str] = field(default_factory=list)
    window: AssignmentWindow | None = None
    """A slice of the tenant by assignment date (slices.py): an initial sync's backfill run."""
    shards: int = 1
    """How many shards the per-user stages are split into (shards.py)."""

    def all_shards(self) -> list[Shard]:
        return Shard.all(self.shards)

    @property
    def partial(self) -> bool:
        """The cycle looks at some users only (one user, or a slice): it neither saves the delta
        link nor counts as having seen everyone."""
        return self.focus_upn is not None or self.window is not None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["requested"], data["mode"], data["now"] = self.requested.value, self.mode.value, self.now.isoformat()
        data["window"] = self.window.to_json() if self.window is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleContext:
        window = data.get("window")
        return cls(
            **{
                **data,
                "requested": Mode(data["requested"]),
                "mode": Mode(data["mode"]),
                "now": dt.datetime.fromisoformat(data["now"]),
                "window": AssignmentWindow.from_json(window) if window else None,
            }
        )


@dataclass
class StageOutcome:
    """A stage's small summary (what Airflow puts in XCom): counts, never records or secrets."""

    stage: str
    cycle_id: str
    status: str = "done"
    """"done", or "skipped" when the cycle was stopped before this stage (``reason`` says why)."""
    reason: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"


@dataclass
class CycleResult:
    summary: CycleSummary
    plan: Plan
    quarantined: list[QuarantinedUser]
    results: list[RecordResult]
    log: Sequence[LogEntry]
    """The provisioning-log rows the commit wrote (a ``CommittedLog`` when it streamed the plan
    from its file: only the rows that are not a success are in memory until it is read)."""
    report: FailureReport | None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    users: pd.DataFrame | None = None
    """The USERS frame the cycle worked on (after scoping): every column for a cycle focused on one
    user, ``RESULT_COLUMNS`` for a whole cycle (who was evaluated, with roles and scope; a million
    users' other columns would take a gigabyte), None for a cycle returned as already committed."""
    job_quarantine: JobQuarantine | None = None
    """The job's quarantine after this cycle (None: not evaluated, e.g. a dry run)."""
    quarantine_notice: bool = False
    """This cycle quarantined the job for a reason the notification address has not heard yet."""
    backlog: EscrowBacklog | None = None
    """Who waits in escrow after this cycle (looked at by it or not), and the next retry."""
    recovered: list[LogEntry] = field(default_factory=list)
    """Failed rows of an interrupted cycle's Bulk jobs this cycle settled (filed under that
    cycle's id; in this cycle's report, and held in escrow rather than sent again)."""
    profile_names: dict[str, str] = field(default_factory=dict)
    """Profile Id → Name as the transform read them (empty when it did not run), so a ProfileId
    can be shown with its name (``plan_preview.describe_changes``)."""


class _Phases:
    """Times each step of a stage for the summary and tells the person watching what is happening."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress(f"[{name}] ...")
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)
            self.progress(f"[{name}] done in {seconds:.2f}s")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _context(ws: Workspace) -> CycleContext:
    return CycleContext.from_json(ws.read_json("context"))


def _enter(engine: Engine, ws: Workspace, stage: str) -> CycleContext:
    """The cycle's context, after recording in the state store that the cycle reached ``stage``
    (what a monitor shows of a running cycle; a dry run writes nothing there)."""
    context = _context(ws)
    if not context.dry_run:
        engine.state.enter_stage(context.cycle_id, stage)
    return context


def _session_requests(session: SalesforceSession | None, before: dict[str, int]) -> dict[str, int]:
    """This stage's Salesforce requests by kind (the session may be shared by several stages)."""
    if session is None:
        return {}
    now = session.requests_by_kind()
    return {f"salesforce.{k}": v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}


# -- begin ---------------------------------------------------------------------------------------


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


def _keep_final(final: dict[str, tuple[RecordResult, str]], result: RecordResult, job_id: str) -> None:
    """One result per user across a cycle's Bulk jobs: a row Salesforce processed wins over a row
    it did not (an earlier attempt's aborted job whose rows were sent again in a later job)."""
    known = final.get(result.entra_id)
    if known is None or known[0].unprocessed:
        final[result.entra_id] = (result, job_id)


def _recover_other_jobs(engine: Engine, cycle_id: str, now: dt.datetime) -> tuple[str | None, list[LogEntry]]:
    """Settle Bulk jobs earlier, interrupted cycles left behind: what Salesforce did with them
    goes into the provisioning log under the cycle that sent them (``StateStore.settle_jobs``:
    one row per user, failures escrowed), and the full cycle that follows re-plans the other
    users against the org. Jobs of ``cycle_id`` itself are left to its own ``load`` stage to
    resume. Returns the note for the cycle (None: nothing to settle) and the log rows written."""
    by_cycle: dict[str, list[PendingJob]] = {}
    for job in engine.state.pending_jobs():
        if job.cycle_id != cycle_id:
            by_cycle.setdefault(job.cycle_id, []).append(job)
    if not by_cycle:
        return None, []
    from include.provisioning.salesforce.load import BulkLoader

    loader = BulkLoader(engine.salesforce_session(), on_job_created=lambda *args: None, progress=engine.progress)
    settled: list[LogEntry] = []
    for crashed, jobs in by_cycle.items():
        final: dict[str, tuple[RecordResult, str]] = {}
        for job in jobs:
            results = loader.recover(job, {e: r.action for e, r in job.records.items()})
            for result in results:
                _keep_final(final, result, job.job_id)
            done = sum(1 for r in results if r.ok)
            engine.progress(f"recovered Bulk job {job.job_id} ({job.operation}): {done}/{len(results)} rows succeeded")
        settled += engine.state.settle_jobs(
            crashed,
            jobs,
            [result for result, _ in final.values()],
            settled_by=cycle_id,
            job_of={entra_id: job_id for entra_id, (_, job_id) in final.items()},
            now=now,
            escrow_schedule_hours=engine.options.escrow_schedule_hours,
        )
    jobs_count = sum(len(jobs) for jobs in by_cycle.values())
    return (
        f"{jobs_count} Bulk job(s) left by an interrupted run were settled and logged under the cycle that "
        f"sent them ({', '.join(by_cycle)}): {describe_settled(settled)}"
    ), settled


def begin(
    engine: Engine,
    workspace_for: Callable[[str], Workspace],
    *,
    requested: Mode = Mode.AUTO,
    dry_run: bool = False,
    focus_upn: str | None = None,
    approve_deactivations: bool = False,
    run_key: str | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
    window: AssignmentWindow | None = None,
    shards: int = 1,
) -> tuple[CycleContext, Workspace]:
    """Open a cycle (or, with ``run_key``, resume that run's uncommitted cycle) and decide its mode.

    ``window``: provision one slice of the tenant by assignment date (slices.py), a full cycle
    over its users. ``shards``: split the per-user stages into that many shards (shards.py).
    Returns the context and the cycle's workspace (``workspace_for(cycle_id)``). A dry run opens
    no cycle in the state store. Raises ``StateError`` when another cycle is running and no lease
    is in use (the CLI without ``force``), ``ValueError`` for a shard count out of range."""
    now = now or _now()
    Shard(0, shards)  # a bad count fails before anything is opened
    if focus_upn is not None or window is not None:
        requested = Mode.FULL
    fingerprint = engine.table.fingerprint()
    engine.check_lease()
    resumed = False
    if dry_run:
        cycle_id = f"dry-run-{now:%Y%m%dT%H%M%SZ}"
    elif run_key is not None:
        cycle_id, resumed = engine.state.open_cycle(requested, fingerprint, run_key=run_key, now=now)
    else:
        cycle_id = engine.state.start_cycle(requested, fingerprint, force=force, now=now)
    ws = workspace_for(cycle_id)
    if resumed and ws.has_json("context"):
        context = _context(ws)
        engine.progress(f"resuming cycle {cycle_id} ({context.mode}) of {run_key}")
        return context, ws
    try:
        forced_full, settled = (None, []) if dry_run else _recover_other_jobs(engine, cycle_id, now)
        # Their failures go in this cycle's report (filed under the cycle that sent them); nobody
        # else reports them, and this cycle holds those users in escrow instead of failing them again.
        ws.write_json(RECOVERED, log_json([e for e in settled if e.status is Status.FAILURE]))
        watermark = engine.state.watermark()
        mode, why_full = _choose_mode(watermark, requested, fingerprint, forced_full)
        context = CycleContext(
            cycle_id=cycle_id,
            requested=requested,
            mode=mode,
            now=now,
            fingerprint=fingerprint,
            dry_run=dry_run,
            focus_upn=focus_upn,
            approve_deactivations=approve_deactivations,
            delta_link=watermark.delta_link if watermark is not None and mode is Mode.INCREMENTAL else None,
            run_key=run_key,
            notes=[f"full cycle: {why_full}"] if why_full and requested is not Mode.FULL else [],
            window=window,
            shards=shards,
        )
        if window is not None:
            context.notes.append(f"slice: {window.describe()}")
        ws.write_json("context", context.to_json())
    except Exception as exc:
        if not dry_run:
            engine.state.fail_cycle(cycle_id, f"{type(exc).__name__}: {exc}")
        raise
    engine.progress(f"cycle {cycle_id}: {mode} ({_why_mode(context)})")
    return context, ws


def _why_mode(context: CycleContext) -> str:
    """Why the cycle has its mode, for the progress line that opens it: a one-user run (provision
    on demand is always full, of that user only), the notes (no delta link, a slice, ...), the
    saved delta link, or the caller's request."""
    if context.focus_upn is not None:
        return f"provision on demand, one user only: {context.focus_upn}"
    if context.notes:
        return "; ".join(context.notes)
    return "from the saved delta link" if context.mode is Mode.INCREMENTAL else "as requested"


# -- extract -------------------------------------------------------------------------------------


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


def _escrow_waiting(engine: Engine, users: pd.DataFrame, now: dt.datetime) -> list[str]:
    """Users whose last write failed wait for their escrow retry time (Entra's schedule); they
    are counted as escrowed and not written again before then. Deactivations are not held."""
    waiting = {e.entra_id for e in engine.state.escrow_entries() if e.next_attempt_at > now}
    if not waiting or users.empty:
        return []
    hold = users["id"].isin(waiting) & ~users["IsSoftDeleted"].astype(bool)
    return [str(i) for i in users.loc[hold, "id"]]


def _known_roles(engine: Engine, entra_id: str) -> dict[str, Any]:
    """What the state store knows of one user (id → roles last applied; empty when it does not
    manage them): the ``known`` of a one-user read."""
    rows = engine.state.snapshot(entra_ids=[entra_id])
    return dict(zip(rows["entra_id"], rows["roles"], strict=True))


async def _extract(
    engine: Engine, context: CycleContext, known: dict[str, Any], due: set[str], evaluated: set[str]
) -> Extraction:
    """Read Graph: the tenant (full or delta), a slice of it, or one user (provision on demand,
    ``context.focus_upn``: that user's own requests only; ``UnknownUserError`` for a name Entra
    ID does not have)."""
    from include.provisioning.graph.client import GraphClient
    from include.provisioning.graph.extract import extract

    async with GraphClient(engine.graph) as client:
        return await extract(
            client,
            service_principal_id=engine.graph.service_principal_id,
            select=engine.table.source_attributes(),
            mode=context.mode,
            delta_link=context.delta_link,
            known=known,
            also_fetch=due,
            progress=engine.progress,
            window=context.window,
            evaluated=evaluated,
            user=context.focus_upn,
            known_of=lambda entra_id: _known_roles(engine, entra_id),
        )


async def _import_roles(engine: Engine, profile_names: list[str]) -> Any:
    from include.provisioning.graph.client import GraphClient
    from include.provisioning.graph.roles import sync_app_roles_from_profiles

    async with GraphClient(engine.graph) as client:
        return await sync_app_roles_from_profiles(client, engine.graph.service_principal_id, profile_names)


def run_extract(engine: Engine, ws: Workspace) -> StageOutcome:
    """Read the assigned users from Graph (full or delta) into ``users.parquet``.

    Writes ``users`` (USERS frame after scoping, before escrow holds), ``quarantine_extract``
    (users whose app roles cannot be resolved) and ``extract.json`` (mode as done, delta link to
    save, escrow-waiting ids, the number of users that must end in an outcome, requests)."""
    import asyncio  # only this stage runs a loop (Graph's client); ~0.06 CPU-s for the others

    context = _enter(engine, ws, "extract")
    engine.check_lease()
    phase = _Phases(engine.progress)
    notes: list[str] = []
    session = engine.salesforce_session() if engine.options.import_roles and not context.dry_run else None
    before = session.requests_by_kind() if session else {}
    with phase("state"):
        if context.focus_upn is not None:  # one user: the store is asked about that user only
            managed, known = engine.state.snapshot_size(), {}
        else:
            snapshot = engine.state.snapshot()
            managed = len(snapshot)
            known = engine.state.seen_roles() if context.mode is Mode.INCREMENTAL else {}
            if len(snapshot):
                known.update(zip(snapshot["entra_id"], snapshot["roles"], strict=True))
        due = {entry.entra_id for entry in engine.state.due_escrow(context.now)}
        evaluated: set[str] = set()
        if context.window is not None:  # a slice also takes older users no cycle has seen yet
            evaluated = {*engine.state.seen_roles(), *known}
    if session is not None:
        from include.provisioning.salesforce.org import fetch_profiles

        with phase("roles"):
            profiles = fetch_profiles(session)
            outcome = asyncio.run(_import_roles(engine, list(profiles["Name"])))
            notes.append(f"app roles from Salesforce Profiles: {outcome.describe()}")
    with phase("extract"):
        extraction = asyncio.run(_extract(engine, context, known, due, evaluated))
    if extraction.fell_back:
        notes.append(f"full cycle: {extraction.fell_back}")
    users = _apply_scoping(engine, extraction.users)
    quarantined = extraction.quarantined
    waiting = [] if context.focus_upn is not None else _escrow_waiting(engine, users, context.now)
    held_ids = set(users["id"]) - set(waiting)
    expected = len(held_ids) + len({q.entra_id for q in quarantined} - held_ids)
    ws.write_frame("users", users.reset_index(drop=True))
    ws.put("quarantine_extract", quarantined, QUARANTINE)
    ws.write_json(
        "extract",
        {
            "mode": extraction.mode.value,
            "delta_link": extraction.delta_link,
            "escrow_waiting": waiting,
            "expected": expected,
            "managed_count": managed,
            "notes": notes,
            "phases": phase.seconds,
            "requests": {**extraction.requests, **_session_requests(session, before)},
        },
    )
    return StageOutcome(
        "extract",
        context.cycle_id,
        counts={"mode": extraction.mode.value, "users": len(users), "quarantined": len(quarantined)},
    )


# -- validate ------------------------------------------------------------------------------------


def _quarantined_so_far(ws: Workspace, upto: str) -> list[QuarantinedUser]:
    """Quarantine entries of the stages before ``upto``, merged per user in stage order."""
    merged: dict[str, QuarantinedUser] = {}
    names: list[str] = []
    for stage in QUARANTINE_STAGES:
        if stage == upto:
            break
        names += _artifact_names(ws, stage, f"quarantine_{stage}")
    for name in names:
        if not ws.has_frame(name):
            continue
        for entry in ws.get(name, QUARANTINE):
            known = merged.get(entry.entra_id)
            if known is None:
                merged[entry.entra_id] = QuarantinedUser(
                    entry.entra_id, entry.user_principal_name, list(entry.reasons), entry.display_name
                )
            else:
                known.reasons.extend(r for r in entry.reasons if r not in known.reasons)
    return list(merged.values())


def _held_users(ws: Workspace, columns: Sequence[str] | None = None, shard: Shard | None = None) -> pd.DataFrame:
    """USERS frame (``columns`` of it, when given; the rows of ``shard``, when given) without the
    users waiting for their escrow retry. A shard's rows are cut before pandas builds the frame
    (``Workspace.read_frame(rows=)``): each of 4 shards of a million users would otherwise build all
    million rows to keep a quarter."""
    rows = None if shard is None or shard.whole else ("id", shard.keep)
    users = ws.read_frame("users", columns, rows=rows)
    waiting = ws.read_json("extract")["escrow_waiting"]
    return users[~users["id"].isin(waiting)] if waiting else users


def _read_shards(ws: Workspace, stage: str, base: str) -> pd.DataFrame:
    """Every shard's ``base`` frame, one after the other (one frame when the cycle is whole), its
    Arrow-backed columns each one chunk (``_one_chunk_columns``)."""
    frames = [ws.read_frame(name) for name in _artifact_names(ws, stage, base)]
    if len(frames) == 1:
        return frames[0]
    stacked = pd.concat(frames, ignore_index=True)
    del frames  # the shards' chunks are freed as each column is made one chunk
    return _one_chunk_columns(stacked)


def _one_chunk_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each Arrow-backed column that holds several chunks (a concat of shards)
    made one chunk, the same values and dtype.

    Arrow's ``take`` from a chunked column concatenates all its chunks first: the plan file's
    creates take their values from the MAPPED columns a batch at a time, so each batch copied
    every column of a million users: 20,000 rows of a 4-shard column 13.7 → 2.1 ms, the creates'
    ``_Creates.frame`` 2.9 → 1.2 CPU-s at 1,000,000 users (measured)."""
    for name in frame.columns:
        column = frame[name]
        chunked = getattr(column.array, "__arrow_array__", None)
        if chunked is None or not isinstance(name, str):
            continue
        arrow = chunked()
        if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
            whole = pa.chunked_array([arrow.combine_chunks()], type=arrow.type)
            frame[name] = pd.Series(pd.array(whole, dtype=column.dtype), index=frame.index, name=name)
    return frame


def _names(users: pd.DataFrame, ids: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
    """Entra id → (userPrincipalName, displayName) of the USERS frame's rows whose id is in ``ids``
    (None where absent; the last row of an id wins).

    Only the quarantined users' names are needed: building them for every row of a shard took
    about 0.7 CPU-s per 250,000 users (pandas yields an Arrow string column's cells one by one)."""
    keys = [str(k) for k in users["id"].tolist()]
    wanted = [i for i, k in enumerate(keys) if k in ids]
    absent = [None] * len(wanted)
    upns = users["userPrincipalName"].to_numpy(dtype=object)[wanted] if "userPrincipalName" in users else absent
    names = users["displayName"].to_numpy(dtype=object)[wanted] if "displayName" in users else absent
    return {
        keys[i]: (None if pd.isna(upn) else str(upn), None if pd.isna(name) else str(name))
        for i, upn, name in zip(wanted, upns, names, strict=True)
    }


def _quarantined(
    names: Mapping[str, tuple[str | None, str | None]], entra_id: str, reasons: list[str]
) -> QuarantinedUser:
    upn, display_name = names.get(entra_id, (None, None))
    return QuarantinedUser(entra_id, upn, reasons, display_name)


def _artifact_names(ws: Workspace, stage: str, base: str) -> list[str]:
    """The names of ``base`` in the workspace: one per shard for a sharded stage."""
    if stage not in SHARDED_STAGES:
        return [base]
    return [shard.name(base) for shard in _context(ws).all_shards()]


def _validation_stop(ws: Workspace) -> str | None:
    """Why validation stopped the cycle (too large a share of the population failed), judged over
    every shard's counts; None while it goes on (or before every shard has been validated)."""
    context = _context(ws)
    if context.focus_upn is not None:
        # One user is never a mass failure: provision on demand quarantines them with the reason,
        # as a cycle of the whole tenant would, instead of stopping (1 of 1 is 100 %).
        return None
    documents = [ws.read_json(name) for name in _artifact_names(ws, "validate", "validate") if ws.has_json(name)]
    if not documents or len(documents) < context.shards:
        return None
    quarantined = sum(int(d["quarantined"]) for d in documents)
    checked = sum(int(d["checked"]) for d in documents)
    limit = float(documents[0]["limit"])
    extracted = ws.read_json("extract")
    # The share is of the population, not of this cycle's batch: an incremental cycle that
    # sees one changed user must not stop because that one user is bad.
    managed = int(extracted["managed_count"])
    population = max(checked, managed)
    share = quarantined / population if population else 0.0
    if share <= limit:
        return None
    of_whom = f"the {population:,} users validated" if population == checked else f"the {population:,} managed users"
    return (
        f"{quarantined:,} of {of_whom} ({percent_of(share, limit)}) failed validation (limit {percent(limit)})"
        f"{_not_validated(ws, checked, int(extracted['expected']), len(extracted['escrow_waiting']))}; "
        "nothing was written to Salesforce"
    )


def _not_validated(ws: Workspace, checked: int, expected: int, waiting: int) -> str:
    """Why the users in scope outnumber the users validated, for a validation stop's reason:
    ``"; 1,784 users in scope, 34 not validated (30 waiting for their escrow retry, 3 quarantined
    when read, 1 leaving the scope)"``, or "" when every user in scope was validated. ``expected``:
    the extract's users that end in an outcome this cycle (all but the ``waiting`` ones). Users
    leaving the scope (to be deactivated) are not validated: nothing of theirs is written but
    ``IsActive`` (``validate.validate``)."""
    in_scope = expected + waiting
    if in_scope <= checked:
        return ""
    read_quarantined = len(_quarantined_so_far(ws, "validate"))
    leaving = max(in_scope - checked - waiting - read_quarantined, 0)
    parts = (
        (waiting, "waiting for their escrow retry"),
        (read_quarantined, "quarantined when read"),
        (leaving, "leaving the scope"),
    )
    held = ", ".join(f"{count:,} {what}" for count, what in parts if count)
    return f"; {in_scope:,} users in scope, {in_scope - checked:,} not validated ({held})"


def _stopped(ws: Workspace) -> str | None:
    """Why the cycle stopped before writing (validation share, dry run), or None."""
    stopped = _validation_stop(ws)
    if stopped is None and ws.has_json("plan_status"):
        stopped = ws.read_json("plan_status").get("stopped")
    return str(stopped) if stopped else None


def _each_shard(ws: Workspace, shard: Shard | None, run: Callable[[Shard], StageOutcome], stage: str) -> StageOutcome:
    """Run ``run`` for ``shard``, or for every shard in turn (counts summed) when none is given."""
    if shard is not None:
        return run(shard)
    outcomes = [run(each) for each in _context(ws).all_shards()]
    if len(outcomes) == 1:
        return outcomes[0]
    counts: dict[str, Any] = {}
    for outcome in outcomes:
        _merge_numbers(counts, {k: v for k, v in outcome.counts.items() if isinstance(v, int | float)})
    first = outcomes[0]
    return StageOutcome(stage, first.cycle_id, status=first.status, reason=first.reason, counts=counts)


def run_validate(
    engine: Engine,
    ws: Workspace,
    *,
    write_docs: Callable[[Any], None] | None = None,
    shard: Shard | None = None,
) -> StageOutcome:
    """Run the expectation suite on the in-scope users of ``shard`` (every shard in turn when
    None); quarantine the rows that break it.

    Writes ``valid`` (rows that passed plus out-of-scope rows, and rows that broke only rules
    guarding one write), ``quarantine_validate``, ``blocks_validate.json`` (those rules' reasons,
    applied by the diff) and ``validate.json`` (counts; once every shard is validated,
    ``_validation_stop`` stops the cycle when the failure share crosses ``max_quarantine_share``:
    then nothing is written to Salesforce), each under the shard's name. ``write_docs`` receives
    GX's result to keep it."""
    return _each_shard(ws, shard, lambda one: _validate(engine, ws, one, write_docs), "validate")


def _validate(engine: Engine, ws: Workspace, shard: Shard, write_docs: Callable[[Any], None] | None) -> StageOutcome:
    context = _enter(engine, ws, "validate")
    engine.check_lease()
    phase = _Phases(engine.progress)
    users = _held_users(ws, shard=shard)
    already = {q.entra_id for q in _quarantined_so_far(ws, "validate")}
    with phase("validate"):
        validation = validate(users[~users["id"].isin(already)] if already else users, engine.suite_path)
    if write_docs is not None:
        write_docs(validation)
    names = _names(users, {q.entra_id for q in validation.quarantined})
    quarantined = [_quarantined(names, q.entra_id, list(q.reasons)) for q in validation.quarantined]
    ws.write_frame(shard.name("valid"), validation.valid.reset_index(drop=True))
    ws.put(shard.name("quarantine_validate"), quarantined, QUARANTINE)
    ws.write_json(
        shard.name("blocks_validate"), {"create": validation.blocks_create, "update": validation.blocks_update}
    )
    ws.write_json(
        shard.name("validate"),
        {
            "checked": validation.checked,
            "quarantined": len(quarantined),
            "failed_expectations": validation.failed_expectations,
            "limit": engine.options.max_quarantine_share,
            "phases": phase.seconds,
        },
    )
    counts = {"checked": validation.checked, "quarantined": len(quarantined)}
    stopped = _validation_stop(ws)  # known once the last shard is validated
    if stopped:
        return StageOutcome("validate", context.cycle_id, status="stopped", reason=stopped, counts=counts)
    return StageOutcome("validate", context.cycle_id, counts=counts)


# -- transform -----------------------------------------------------------------------------------


_TRANSFORM_USER_COLUMNS = ("id", "userPrincipalName", "displayName", "IsSoftDeleted")
"""What the transform reads of USERS (the mapping reads ``valid``): who is in scope, and the
names of the users it quarantines."""


def run_transform(engine: Engine, ws: Workspace, *, shard: Shard | None = None) -> StageOutcome:
    """Evaluate the mapping table and resolve profile names to ``ProfileId`` for ``shard`` (every
    shard in turn when None).

    Writes ``mapped`` (MAPPED frame without any quarantined user), ``quarantine_transform``
    (expression errors and unknown profiles of in-scope users) and ``blocks_transform.json``
    (errors of ``apply: on_create`` fields, which hold a create only) under the shard's names."""
    return _each_shard(ws, shard, lambda one: _transform(engine, ws, one), "transform")


def _transform(engine: Engine, ws: Workspace, shard: Shard) -> StageOutcome:
    from include.provisioning.salesforce.org import fetch_profiles

    context = _enter(engine, ws, "transform")
    stopped = _stopped(ws)
    if stopped:
        return StageOutcome("transform", context.cycle_id, status="skipped", reason=stopped)
    engine.check_lease()
    phase = _Phases(engine.progress)
    session = engine.salesforce_session()
    before = session.requests_by_kind()
    users = _held_users(ws, _TRANSFORM_USER_COLUMNS, shard)
    valid = ws.read_frame(shard.name("valid"), engine.table.evaluated_columns())
    errors: dict[str, list[str]] = {}
    with phase("transform"):
        mapping = engine.table.evaluate(valid)
        in_scope_ids = set(users.loc[~users["IsSoftDeleted"].astype(bool), "id"].tolist())
        errors.update({k: list(v) for k, v in mapping.errors.items() if k in in_scope_ids})
        profiles = fetch_profiles(session)
        mapped, profile_errors = resolve_profiles(mapping.mapped, profiles)
        ws.write_json(PROFILE_NAMES, {str(i): str(n) for i, n in zip(profiles["Id"], profiles["Name"], strict=True)})
        for entra_id, reasons in profile_errors.items():
            if entra_id in in_scope_ids:
                errors.setdefault(entra_id, []).extend(r for r in reasons if r not in errors.get(entra_id, []))
        excluded = {q.entra_id for q in _quarantined_so_far(ws, "transform")} | set(errors)
        mapped = mapped[~mapped["id"].isin(excluded)]
    names = _names(users, errors)
    quarantined = [_quarantined(names, k, v) for k, v in errors.items()]
    ws.write_frame(shard.name("mapped"), mapped.reset_index(drop=True))
    ws.put(shard.name("quarantine_transform"), quarantined, QUARANTINE)
    blocks_create = {k: v for k, v in mapping.blocks_create.items() if k in in_scope_ids and k not in excluded}
    ws.write_json(shard.name("blocks_transform"), {"create": blocks_create, "update": {}})
    ws.write_json(shard.name("transform"), {"phases": phase.seconds, "requests": _session_requests(session, before)})
    return StageOutcome("transform", context.cycle_id, counts={"mapped": len(mapped), "quarantined": len(quarantined)})


# -- plan ----------------------------------------------------------------------------------------


def _guarded_blocks(ws: Workspace) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every shard's reasons that stop only a create, and only an update (``GUARDING_STAGES``),
    merged per user in stage order."""
    merged: dict[str, dict[str, list[str]]] = {"create": {}, "update": {}}
    for stage in GUARDING_STAGES:
        for name in _artifact_names(ws, stage, f"blocks_{stage}"):
            if not ws.has_json(name):
                continue
            for write, by_user in ws.read_json(name).items():
                for entra_id, reasons in by_user.items():
                    known = merged[write].setdefault(entra_id, [])
                    known.extend(r for r in reasons if r not in known)
    return merged["create"], merged["update"]


DIFF_USER_COLUMNS = ("id", "userPrincipalName", "displayName", "appRoleAssignments", "IsSoftDeleted")
"""The USERS columns the diff reads (``diff._People``); the others stay in the file."""


def run_plan(engine: Engine, ws: Workspace) -> StageOutcome:
    """Diff the desired users against the org (full) or the snapshot (incremental).

    Writes ``plan`` (creates, updates, deactivations, reactivations, held back, unchanged) and
    ``quarantine_plan`` (conflicts the diff holds out). With ``approve_deactivations`` the
    accidental-deletion threshold does not hold this cycle's deactivations back. A dry run stops
    here (``plan_status.json``)."""
    context = _enter(engine, ws, "plan")
    stopped = _validation_stop(ws)  # not _stopped(): a dry run's re-plan is fine
    if stopped:
        return StageOutcome("plan", context.cycle_id, status="skipped", reason=stopped)
    engine.check_lease()
    phase = _Phases(engine.progress)
    extracted = ws.read_json("extract")
    mode = Mode(extracted["mode"])
    users = _held_users(ws, DIFF_USER_COLUMNS)
    mapped = _read_shards(ws, "transform", "mapped")
    quarantined_ids = {q.entra_id for q in _quarantined_so_far(ws, "plan")}
    blocks_create, blocks_update = _guarded_blocks(ws)
    session = engine.salesforce_session() if mode is Mode.FULL else None
    before = session.requests_by_kind() if session else {}
    focus = context.focus_upn is not None
    people = sorted({*map(str, users["id"]), *map(str, mapped["id"])}) if focus else []
    with phase("state"):
        # One user (provision on demand): their own snapshot row, not the whole table.
        snapshot = engine.state.snapshot(entra_ids=people) if focus else engine.state.snapshot()
        managed = engine.state.snapshot_size() if focus else len(snapshot)
    org = None
    if session is not None:
        from include.provisioning.salesforce.org import fetch_users, linked_or_matching

        with phase("org"):
            fields = [f.target for f in engine.table.fields if f.target != "ProfileName"]
            where = None
            if focus:  # the Salesforce users linked to them or holding one of their match keys or
                # unique values (what the diff matches on, or holds a create back for)
                keys = dict.fromkeys([*(f.target for f in engine.table.matching_fields()), *UNIQUE_FIELDS])
                where = linked_or_matching(
                    list(snapshot["sf_id"]), {name: list(mapped[name]) for name in keys if name in mapped}
                )
            try:
                org = fetch_users(session, sorted({*fields, "ProfileId", "IsActive"} - {"Id"}), where=where)
            except SalesforceFieldError as exc:  # name the mapping row that sends the field
                raise exc.at(field_origin(engine.table, exc.field)) from None
        if focus:  # and whoever else is linked to those Salesforce users (they keep them)
            with phase("state"):
                snapshot = engine.state.snapshot(entra_ids=people, sf_ids=_stored_id_forms(org["Id"]))
    options = engine.options
    if context.approve_deactivations:
        # Approval of held-back deactivations for this run (Entra: re-enable after review).
        options = dataclasses.replace(options, deletion_threshold_count=2**62, deletion_threshold_share=float("inf"))
    with phase("diff"):
        if "IsSoftDeleted" not in mapped:  # a column added (copy on write), not a merge that copied every column
            soft = pd.Series(users["IsSoftDeleted"].to_numpy(), index=pd.Index(users["id"].to_numpy(dtype=object)))
            mapped = mapped.assign(IsSoftDeleted=mapped["id"].astype(object).map(soft[~soft.index.duplicated()]))
            del soft
        if quarantined_ids:  # the copy replaces the frame as read (both held through the diff: ~100 MB at 1M)
            users = users[~users["id"].isin(quarantined_ids)]
        plan = plan_table(
            DiffInput(
                mapped=mapped,
                users=users,
                snapshot=snapshot,
                org=org,
                matching=[f.target for f in engine.table.matching_fields()],
                defaults=engine.table.defaults(),
                create_only=engine.table.create_only(),
                clear_when_null=engine.table.clear_when_null(),
                managed_count=managed,
                options=options,
                blocks_create=blocks_create,
                blocks_update=blocks_update,
            )
        )
    _name_the_gone(engine, plan)
    if org is not None and not context.partial:
        ws.write_json("observed", _observe(ws, plan, snapshot, org, quarantined_ids).to_json())
    # The plan's changes are built from the diff's frames as the file is written, a batch at a
    # time, and each load task's part is cut from the encoded batches' columns.
    with phase("write"):
        ws.put("plan", plan, PLAN, parts=PLAN.parts(context.all_shards()))
    ws.put("quarantine_plan", plan.quarantined, QUARANTINE)
    stopped = "dry run: nothing was written" if context.dry_run else None
    ws.write_json(
        "plan_status",
        {
            "stopped": stopped,
            "phases": phase.seconds,
            "requests": _session_requests(session, before),
            "counts": {group: plan.count(group) for group in PLAN_GROUPS},
        },
    )
    counts = {
        "create": plan.count("creates"),
        "update": plan.count("updates"),
        "deactivate": plan.count("deactivations"),
        "reactivate": plan.count("reactivations"),
        "held_back": plan.count("held_back"),
        "unchanged": plan.count("unchanged"),
    }
    return StageOutcome(
        "plan", context.cycle_id, status="stopped" if stopped else "done", reason=stopped, counts=counts
    )


def _stored_id_forms(sf_ids: pd.Series) -> list[str]:
    """Salesforce ids as the snapshot may hold them: the 18-character form and its 15-character
    prefix (the diff links on the 15-character key)."""
    present = [str(i) for i in sf_ids if isinstance(i, str) and i]
    return sorted({*present, *map(salesforce_id_key, present)})


def _observe(
    ws: Workspace, plan: PlanTable, snapshot: pd.DataFrame, org: pd.DataFrame, quarantined_ids: set[str]
) -> FullObservation:
    """What this complete full cycle saw of the org besides its plan, for the commit to rebuild
    the state from (rebuild.py): the users it held out whose link the org confirms, with the
    values the org holds for them."""
    held = {
        *quarantined_ids,
        *ws.read_json("extract")["escrow_waiting"],
        *(q.entra_id for q in plan.quarantined),
        *plan.ids("held_back"),
    }
    links = zip(snapshot["entra_id"].astype(object), snapshot["sf_id"].astype(object), strict=True)
    return FullObservation(held_rows(held, links, org))


def _name_the_gone(engine: Engine, plan: PlanTable) -> None:
    """Give a planned change without a UPN or display name the one the provisioning log last
    knew: Graph's delta names a deleted user by id alone, and a deactivation must not reach the
    log (or the report) without saying who it is. A display name the log never had (a user last
    logged before schema version 7) is the Salesforce user's, ``FirstName LastName`` as the change
    found them (a deactivation's ``desired`` is the Salesforce record; ``PlanTable.name``)."""
    nameless = plan.nameless()
    if nameless:
        plan.name(engine.state.last_names(nameless))


# -- load ----------------------------------------------------------------------------------------


def _unsent(plan: Plan, done: Collection[str]) -> Plan:
    """The writes of ``plan`` whose users are not in ``done`` (Entra ids an earlier attempt's jobs
    settled); ``plan`` itself when nothing was: a fresh load makes no pass over its writes
    before the first job."""
    if not done:
        return plan
    return _restrict(plan, {c.entra_id for c in plan.writes()} - set(done))


def _restrict(plan: Plan, ids: set[str]) -> Plan:
    """The plan's writes for ``ids`` only (what a resumed load still has to send)."""
    return Plan(
        creates=[c for c in plan.creates if c.entra_id in ids],
        updates=[c for c in plan.updates if c.entra_id in ids],
        deactivations=[c for c in plan.deactivations if c.entra_id in ids],
        reactivations=[c for c in plan.reactivations if c.entra_id in ids],
    )


WRITE_ORDER = (
    ("deactivations", Action.UPDATE, "update"),
    ("creates", Action.CREATE, "insert"),
    ("updates", Action.UPDATE, "update"),
)
"""The order of a load's Bulk API 2.0 jobs: deactivations first, so the licences (and other
per-org capacity) they free are there for this cycle's creates and reactivations (a joiner must
not fail ``LICENSE_LIMIT_EXCEEDED`` for a seat a leaver gives back in the same cycle); then creates
(insert); then updates and reactivations (update). docs/decisions.md, "Write order"."""


def bulk_rows(changes: list[PlannedChange], *, keyed: bool) -> list[dict[str, Any]]:
    """The ``LoadRequest`` rows of planned changes: ``_entra_id``, ``Id`` when ``keyed`` (an
    update names the Salesforce user; an insert makes one) and each changed field's new value.
    A clear's new value is None, the typed null the CSV writer sends as Bulk's ``#N/A``.

    Each row is the dict ``new_values`` gives, completed in place (a changed field named
    ``_entra_id`` or ``Id`` keeps its new value, as a merge with the values last would): no
    second dict per row. Before the first job of a million users' load only this and the plan's
    decoding run (``ordered_columns`` needs every row); the key order of a row is not read."""
    rows: list[dict[str, Any]] = []
    append = rows.append
    for change in changes:
        row = new_values(change.changes)
        row.setdefault("_entra_id", change.entra_id)
        if keyed:
            row.setdefault("Id", change.sf_id)
        append(row)
    return rows


def _send(engine: Engine, session: SalesforceSession, cycle_id: str, plan: Plan) -> list[RecordResult]:
    """The groups of ``WRITE_ORDER`` in order, each finished before the next; a group's Bulk API
    2.0 ingest jobs (``BulkLoader.run``: ``JOB_ROWS`` rows each) are all sent, then awaited."""

    from include.provisioning.salesforce.load import BulkLoader, LoadRequest

    # The changes themselves name each row's user (UPN, action, display name: a ``JobRecord``'s
    # attributes), so no record per user is built for the job records. A job's rows are all of
    # the group being sent, so the look-up holds that group's changes only (built per group:
    # not a pass over every write before the first job).
    who: dict[str, PlannedChange] = {}

    def remember(job_id: str, operation: str, key_field: str, keys: dict[str, str]) -> None:
        records = {entra_id: who[entra_id] for entra_id in keys.values() if entra_id in who}
        engine.state.record_job(cycle_id, job_id, operation, key_field, keys, records=records)

    jobs: list[str] = []

    def remember_job(job_id: str, operation: str, key_field: str, keys: dict[str, str]) -> None:
        jobs.append(job_id)
        remember(job_id, operation, key_field, keys)

    loader = BulkLoader(session, on_job_created=remember_job, progress=engine.progress)
    groups = {
        "deactivations": plan.deactivations,
        "creates": plan.creates,
        "updates": [*plan.updates, *plan.reactivations],
    }
    results: list[RecordResult] = []
    for name, action, operation in WRITE_ORDER:
        changes = groups[name]
        if not changes:
            continue
        who = {c.entra_id: c for c in changes}
        del jobs[:]
        # The request alone holds the rows, so the loader can let go of them once formatted.
        sent = loader.run(LoadRequest(action, operation, bulk_rows(changes, keyed=operation == "update")))
        fault = refused_job_fault(sent)
        if fault is not None:
            # A column User lacks and nothing of this group written: escrowing its users would
            # retry the same refusal for 28 days. Its job records go (nothing to settle); earlier
            # groups' jobs stay recorded for the next attempt to resume, as after a crash.
            for job_id in jobs:
                engine.state.forget_job(job_id)
            raise fault.at(field_origin(engine.table, fault.field))
        for result in sent:
            change = who.get(result.entra_id)
            if change is not None:
                result.action = change.action
            results.append(result)
    # This cycle's job records are deleted by commit, in the same transaction as the results:
    # a crash before the commit leaves them for the next attempt to resume.
    return results


class _WriteActions(Container[str]):
    """The action of each of ``plan``'s writes by Entra id, gathered on the first ``in`` (or
    ``actions``) and then kept: a load with no recorded job never asks, so a million users' look-up
    is not built before its first job, and a resumed one builds it once."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._actions: dict[str, Action] | None = None

    def actions(self) -> dict[str, Action]:
        if self._actions is None:
            self._actions = {c.entra_id: c.action for c in self._plan.writes()}
        return self._actions

    def __contains__(self, entra_id: object) -> bool:
        return entra_id in self.actions()


def _resume_jobs(engine: Engine, session: SalesforceSession, cycle_id: str, plan: Plan) -> dict[str, RecordResult]:
    """Results of the Bulk jobs an earlier attempt of this cycle's load recorded, by Entra id.

    A processed row (succeeded or failed) is final; a row Salesforce never processed (its job was
    left open and is aborted now) is sent again. A row of a job Salesforce no longer has keeps
    its "outcome unknown" result (escrowed; the next full cycle's org query settles it). Only
    jobs of users in ``plan`` are read (another shard's load resumes its own)."""
    from include.provisioning.salesforce.load import UNPROCESSED, BulkLoader

    writes = _WriteActions(plan)
    jobs = engine.state.pending_jobs(cycle_id, users=writes)
    if not jobs:  # a fresh load: no look-up of every write before its first job
        return {}
    actions = writes.actions()
    loader = BulkLoader(session, on_job_created=lambda *args: None, progress=engine.progress)
    final: dict[str, tuple[RecordResult, str]] = {}
    for job in jobs:
        for result in loader.recover(job, actions):
            resend = result.unprocessed and result.error_code == UNPROCESSED
            # Another shard's row (never in this shard's jobs, but a result counted by two load
            # tasks would be counted twice) or a row to send again is not final here.
            if not resend and result.entra_id in actions:
                _keep_final(final, result, job.job_id)
    return {entra_id: result for entra_id, (result, _) in final.items()}


def run_load(engine: Engine, ws: Workspace, *, shard: Shard | None = None) -> StageOutcome:
    """Send the plan's writes of ``shard`` (every shard in turn when None) to Salesforce through
    Bulk API 2.0 and keep its per-record results.

    Resumable: Bulk jobs recorded by an earlier attempt of this cycle are read back first and only
    what Salesforce has not processed is sent. Writes ``results`` under the shard's name."""
    return _each_shard(ws, shard, lambda one: _load(engine, ws, one), "load")


def load_plan(ws: Workspace, shard: Shard) -> Plan:
    """The plan part ``shard``'s load sends, as ``LOAD_PLAN`` reads it: each change's ``changes``
    stay the file's JSON text (``JsonChanges``); its ``desired`` values, roles and match value are
    not read (empty, None: ``artifacts.COMMIT_FIELDS``). The load reads only the new values
    (``bulk_rows``) and who each user is; decoding the values into objects cost a quarter of a
    load task's CPU at a million users (and their memory), and all of it runs before the first
    Bulk job, which the sandbox (Salesforce) waits for."""
    return ws.get(shard.name("plan"), LOAD_PLAN, columns=LOAD_COLUMNS)


def _load(engine: Engine, ws: Workspace, shard: Shard) -> StageOutcome:
    # A shard's rows, CSV lines and results (hundreds of thousands of small objects, none in a
    # cycle): the collector would rescan them over and over (14.5 -> 12.6 CPU-s per load task).
    with collector_paused():
        return _load_shard(engine, ws, shard)


def _load_shard(engine: Engine, ws: Workspace, shard: Shard) -> StageOutcome:
    context = _enter(engine, ws, "load")
    stopped = _stopped(ws)
    if stopped:
        return StageOutcome("load", context.cycle_id, status="skipped", reason=stopped)
    engine.check_lease()
    phase = _Phases(engine.progress)
    plan = load_plan(ws, shard)
    session = engine.salesforce_session()
    before = session.requests_by_kind()
    with phase("load"):
        done = _resume_jobs(engine, session, context.cycle_id, plan)
        if done:
            engine.progress(f"resumed: {len(done)} record(s) already processed by an earlier attempt")
        results = [*done.values(), *_send(engine, session, context.cycle_id, _unsent(plan, done))]
    ws.put(shard.name("results"), results, RESULTS)
    ws.write_json(shard.name("load"), {"phases": phase.seconds, "requests": _session_requests(session, before)})
    failed = sum(1 for r in results if not r.ok)
    return StageOutcome(
        "load",
        context.cycle_id,
        counts={"sent": len(results), "succeeded": len(results) - failed, "failed": failed, "resumed": len(done)},
    )


# -- commit --------------------------------------------------------------------------------------


def _count(summary: CycleSummary, counts: Mapping[str, int], results: list[RecordResult], quarantined: int) -> None:
    """Outcome counts from Salesforce's results (for a dry run, the planned writes as if they
    succeeded) and the plan's ``counts`` (``PLAN_GROUPS`` → changes)."""
    by_action: dict[Action, int] = {}
    failed = 0
    for result in results:
        if result.ok:
            by_action[result.action] = by_action.get(result.action, 0) + 1
        else:
            failed += 1
    summary.created = by_action.get(Action.CREATE, 0)
    summary.updated = by_action.get(Action.UPDATE, 0) + by_action.get(Action.REACTIVATE, 0)
    summary.reactivated = by_action.get(Action.REACTIVATE, 0)
    summary.deactivated = by_action.get(Action.DISABLE, 0)
    summary.escrowed = failed
    summary.unchanged = counts["unchanged"]
    summary.held_back = counts["held_back"]
    summary.quarantined = quarantined


def _plan_counts(plan: Plan) -> dict[str, int]:
    return {group: len(getattr(plan, group)) for group in PLAN_GROUPS}


class _CommittedPlan(Plan):
    """The plan in the result of a commit that streamed it from the plan file: the held-back
    users (and reason) as the commit read them; the other lists are decoded from the file when
    first read (no task reads them; a million users' changes are not kept for nothing)."""

    def __init__(self, ws: Workspace, held_back: list[PlannedChange], held_back_reason: str | None) -> None:
        self._ws = ws
        self._whole: Plan | None = None
        self.held_back = held_back
        self.held_back_reason = held_back_reason

    def _plan(self) -> Plan:
        if self._whole is None:
            self._whole = self._ws.get("plan", STORED_PLAN)
        return self._whole

    creates = property(lambda self: self._plan().creates)
    updates = property(lambda self: self._plan().updates)
    deactivations = property(lambda self: self._plan().deactivations)
    reactivations = property(lambda self: self._plan().reactivations)
    unchanged = property(lambda self: self._plan().unchanged)
    quarantined = property(lambda self: self._plan().quarantined)


class CommittedLog(ListView[LogEntry]):
    """The provisioning-log rows a commit wrote, as ``CycleResult.log``: those that are not a
    success (what the report shows) in memory, every row read back from the state store when
    the whole log is first asked for. A commit that streamed a million users' plan from its file
    keeps their ``Success`` rows in the database only."""

    def __init__(self, notable: list[LogEntry], load: Callable[[], list[LogEntry]]) -> None:
        self.notable = notable
        self._load = load
        self._entries: list[LogEntry] | None = None

    def _list(self) -> list[LogEntry]:
        if self._entries is None:
            self._entries = self._load()
        return self._entries


def _notable(log: Sequence[LogEntry]) -> list[LogEntry]:
    """The entries of ``log`` a report shows (the rest are successes)."""
    if isinstance(log, CommittedLog):
        return log.notable
    return [entry for entry in log if entry.status is not Status.SUCCESS]


class _PlanReader:
    """The plan as the commit reads it: whole, or (``streamed``) a row group at a time through
    ``parts``, with ``counts`` (from the plan stage's status) known before the first part."""

    def __init__(self, ws: Workspace, *, present: bool, whole: bool) -> None:
        self.ws = ws
        status = ws.read_json("plan_status") if present and ws.has_json("plan_status") else {}
        self.streamed = present and not whole and status.get("counts") is not None
        self.held_back: list[PlannedChange] = []
        self.held_back_reason: str | None = None
        if self.streamed:
            self.whole = Plan()
            self.counts = {group: int(status["counts"].get(group, 0)) for group in PLAN_GROUPS}
        else:
            # The plan's values as their JSON text: stored again as they are.
            self.whole = ws.get("plan", STORED_PLAN) if present else Plan()
            self.counts = _plan_counts(self.whole)

    def parts(self) -> Iterator[Plan]:
        """The plan's row groups (or the whole plan), keeping the held-back users for the report."""
        if not self.streamed:
            yield self.whole
            return
        for part in self.ws.stream("plan", STORED_PLAN):
            self.held_back += part.held_back
            self.held_back_reason = part.held_back_reason
            yield part

    def result(self) -> Plan:
        """The plan a ``CycleResult`` holds (after ``parts`` was read)."""
        return _CommittedPlan(self.ws, self.held_back, self.held_back_reason) if self.streamed else self.whole


def _merge_numbers(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        target[key] = round(target.get(key, 0) + value, 3)


def _results(ws: Workspace, context: CycleContext) -> list[RecordResult]:
    """Every shard's load results. A shard whose part of the plan has writes but no results was
    never loaded: ``MissingArtifactError`` (the commit must not count its users as done)."""
    results: list[RecordResult] = []
    for shard in context.all_shards():
        name = shard.name("results")
        if ws.has_frame(name):
            results += ws.get(name, RESULTS)
        elif ws.has_frame(shard.name("plan")) and ws.get(shard.name("plan"), PLAN).writes():
            ws.get(name, RESULTS)  # raises, naming what is missing
    return results


SEEN_COLUMNS = ("id", "appRoleAssignments")
"""The USERS columns ``_seen`` reads."""
RESULT_COLUMNS = (*SEEN_COLUMNS, "scopeReason")
"""The USERS columns a whole cycle's ``CycleResult.users`` holds."""


def _seen(users: pd.DataFrame) -> dict[str, list[str]]:
    """Roles of every user this cycle evaluated; the store keeps those left without a link.

    A roles cell read from Parquet is a NumPy array: ``tolist`` builds its list in C (``list``
    iterated it: 2.8 of 3.5 CPU-s for 895,252 users)."""
    if users.empty:
        return {}
    ids = users["id"].astype(str).tolist()
    roles = [v.tolist() if type(v) is np.ndarray else list(v) for v in users["appRoleAssignments"].to_numpy()]
    return dict(zip(ids, roles, strict=True))


def _observed(
    ws: Workspace, seen: Mapping[str, Sequence[str]], quarantined: list[QuarantinedUser]
) -> FullObservation | None:
    """What a complete full cycle observed (the plan stage's links, every user it extracted:
    ``seen``'s keys and the quarantined), or None for any other cycle (see ``_observe``)."""
    if not ws.has_json("observed"):
        return None
    observed = FullObservation.from_json(ws.read_json("observed"))
    evaluated = frozenset(seen) | {q.entra_id for q in quarantined}
    return dataclasses.replace(observed, evaluated=evaluated)


def run_commit(engine: Engine, ws: Workspace) -> CycleResult:
    """Count the outcomes, check that every extracted user ended in exactly one, and store the
    cycle in one transaction (log, snapshot, escrow, quarantine, seen users, the delta link).

    Idempotent: a cycle already committed is returned as stored. Raises ``CycleError`` when the
    counts do not add up (a bug; nothing is committed then)."""
    context = _enter(engine, ws, "commit")
    # A million users' roles, results and log rows, none in a cycle: the collector would rescan
    # them over and over while they are read (a tenth of the task's CPU at 1,000,000 users).
    with collector_paused():
        return _commit(engine, ws, context)


def _commit(engine: Engine, ws: Workspace, context: CycleContext) -> CycleResult:
    if not context.dry_run and engine.state.is_committed(context.cycle_id):
        stored = engine.state.cycle(context.cycle_id)
        assert stored is not None
        engine.progress(f"cycle {context.cycle_id} was already committed; nothing to do")
        return CycleResult(stored, Plan(), [], [], [], None, notes=["already committed"])
    engine.check_lease()
    extracted = ws.read_json("extract")
    # A focused cycle's result describes its user (on_demand); a whole cycle's says who was
    # evaluated, with roles and scope (a million users' other columns would take a gigabyte here).
    users = ws.read_frame("users", None if context.focus_upn is not None else RESULT_COLUMNS)
    seen = _seen(users)
    stopped = _stopped(ws)
    validation_stop = _validation_stop(ws)
    # The plan is committed a row group at a time as it is read (a million users' changes would
    # take gigabytes here); a dry run writes nothing and shows every planned change: whole.
    reader = _PlanReader(ws, present=ws.has_frame("plan") and not validation_stop, whole=context.dry_run)
    counts = reader.counts
    results = [] if stopped else _results(ws, context)
    quarantined = _quarantined_so_far(ws, "")  # every stage's entries
    summary = CycleSummary(
        cycle_id=context.cycle_id,
        mode=Mode(extracted["mode"]),
        status=CycleStatus.STOPPED if stopped else CycleStatus.SUCCEEDED,
        started_at=context.now,
        reason=stopped,
    )
    if context.dry_run:  # nothing was sent: the planned writes count as if they succeeded
        planned = [RecordResult(c.entra_id, c.action, c.sf_id, ok=True) for c in reader.whole.writes()]
        _count(summary, counts, planned, len(quarantined))
    else:
        _count(summary, counts, results, len(quarantined))
    summary.escrowed += len(extracted["escrow_waiting"])
    outcomes = sum(counts[group] for group in WRITE_GROUPS) + counts["unchanged"] + counts["held_back"]
    outcomes += len(quarantined)
    if not validation_stop and outcomes != extracted["expected"]:  # a validation stop planned nothing
        raise CycleError(
            f"bookkeeping: {extracted['expected']} users were extracted but {outcomes} ended in an outcome "
            "(this is a bug; nothing was committed)"
        )
    names = [
        name
        for stage in ("extract", "validate", "transform", "plan_status", "load")
        for name in (_artifact_names(ws, stage, stage))
    ]
    for name in names:
        if ws.has_json(name):
            stage = ws.read_json(name)
            _merge_numbers(summary.phase_seconds, stage.get("phases", {}))
            _merge_numbers(summary.requests, stage.get("requests", {}))
    summary.finished_at = _now()
    notes = [*context.notes, *extracted.get("notes", [])]
    log: Sequence[LogEntry] = []
    # Read from files a row group at a time, the plan's Success rows are not kept (read back on demand).
    lean = reader.streamed and not ws.holds_objects
    if not context.dry_run:
        log = engine.state.commit_cycle(
            summary,
            plan=reader.parts(),
            results=results,
            quarantined=quarantined,
            delta_link=extracted["delta_link"],
            mapping_fingerprint=context.fingerprint,
            now=context.now,
            escrow_schedule_hours=engine.options.escrow_schedule_hours,
            advance_watermark=not stopped and not context.partial,
            seen=seen,
            seen_complete=summary.mode is Mode.FULL and not context.partial,
            observed=None if stopped else _observed(ws, seen, quarantined),
            keep_successes=not lean,
        )
        if lean:
            cycle_id = context.cycle_id
            log = CommittedLog(list(log), lambda: engine.state.log_entries(cycle_id=cycle_id, limit=outcomes))
    recovered = log_from_json(ws.read_json(RECOVERED)) if ws.has_json(RECOVERED) else []
    plan = reader.result()
    report = failure_report(
        summary,
        [*recovered, *_notable(log)],
        quarantined,
        plan.held_back,
        held_back_reason=plan.held_back_reason,
        dry_run=context.dry_run,
    )
    result = CycleResult(
        summary,
        plan,
        quarantined,
        results,
        log,
        report,
        dry_run=context.dry_run,
        notes=notes,
        users=users,
        recovered=recovered,
        profile_names=ws.read_json(PROFILE_NAMES) if ws.has_json(PROFILE_NAMES) else {},
    )
    if not context.dry_run and context.focus_upn is None:
        _judge_job(engine, result)
    result.backlog = EscrowBacklog.of(engine.state.escrow_entries(), context.now)
    return result


def _judge_job(engine: Engine, result: CycleResult) -> None:
    """Entra's quarantine after a committed cycle: mass failures quarantine the job; a cycle that
    succeeded without them lifts any quarantine (see ``quarantine_rules``)."""
    failed = sum(1 for r in result.results if not r.ok)
    verdict = quarantine_rules.after_cycle(result.summary, failed, len(result.results), engine.options)
    if verdict is not None:
        backoff = dt.timedelta(hours=engine.options.quarantine_backoff_hours)
        result.quarantine_notice = engine.state.quarantine_job(verdict.code, verdict.reason, backoff=backoff)
        engine.progress(f"the job is quarantined: {verdict.reason}")
    elif result.summary.status is CycleStatus.SUCCEEDED:
        lifted = engine.state.lift_job_quarantine()
        if lifted.active:
            engine.progress(f"quarantine lifted: cycle {result.summary.cycle_id} succeeded ({lifted.describe()})")
    result.job_quarantine = engine.state.job_quarantine()
