"""The engine's front door: what the command line and the Airflow DAG call, so policy lives once.

Whole operations (for the CLI, and for tests):
    ``sync`` — one cycle under the writer lease;
    ``restart_provisioning``, ``reset_quarantine`` — Entra's administrator actions;
    ``restart_and_sync`` — "Restart provisioning" and the full cycle it starts, under one lease;
    ``record_failure`` — count a failed run towards Entra's quarantine;
    ``provision_user`` — Entra's "provision on demand" for one user, under the lease;
    ``plan_preview`` — a dry run's plan as a short table and a CSV;
    ``check_config`` — every configuration problem at once.

Stage by stage (for an orchestrator that runs each stage as its own task):
    ``open_cycle`` — take the writer lease and open (or resume) the run's cycle;
    ``run_stage`` — one of ``stages.STAGES`` against the cycle's workspace;
    ``close_cycle`` — close a cycle the run did not commit and give the lease back.

Every operation returns an outcome with a status; configuration problems raise
``ConfigurationError`` (fail now), a busy lease raises ``LeaseBusyError`` (a ``TransientError``:
try later), and record-level failures never raise (they are escrowed or quarantined and counted).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.provisioning import stages
from include.provisioning.cycle import run_cycle
from include.provisioning.engine import Engine
from include.provisioning.model import CycleStatus, Mode
from include.provisioning.shards import Shard
from include.provisioning.slices import AssignmentWindow
from include.provisioning.stages import CycleContext, CycleResult, StageOutcome
from include.provisioning.state.lease import LeaseBusyError, LeaseGrant
from include.provisioning.workspace import Workspace

if TYPE_CHECKING:  # provision on demand and the dry run's table are imported where they are used:
    # a DAG task's process never runs the first and only a dry run's commit the second
    from include.provisioning.on_demand import OnDemandOutcome
    from include.provisioning.plan_preview import PlanRow

StageRunner = Callable[[Engine, Workspace], StageOutcome]
_RUNNERS: dict[str, StageRunner] = {
    "extract": stages.run_extract,
    "validate": stages.run_validate,
    "transform": stages.run_transform,
    "plan": stages.run_plan,
    "load": stages.run_load,
}


def cli_holder() -> str:
    """Lease holder name of a command-line run: host and process, so a person can find it."""
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def take_lease(engine: Engine, holder: str, *, force: bool = False) -> LeaseGrant:
    """Take the writer lease once, or raise ``LeaseBusyError`` naming its holder.

    On success ``engine.lease_holder`` is set, so every stage renews the lease."""
    grant = engine.state.acquire_lease(holder, ttl=engine.lease_ttl, force=force)
    if not grant.granted:
        raise LeaseBusyError(grant.lease)
    if grant.took_over is not None:
        engine.progress(f"took over the writer lease from {grant.took_over.holder} ({grant.took_over.describe()})")
    engine.lease_holder = holder
    return grant


def give_lease_back(engine: Engine) -> None:
    if engine.lease_holder is not None:
        engine.state.release_lease(engine.lease_holder)
        engine.lease_holder = None


def sync(
    engine: Engine,
    mode: Mode = Mode.AUTO,
    *,
    dry_run: bool = False,
    force: bool = False,
    approve_deactivations: bool = False,
    holder: str | None = None,
) -> CycleResult:
    """One whole cycle (extract → commit) in this process, holding the writer lease throughout.

    A dry run writes nothing and takes no lease. ``force`` takes the lease and the cycle over from
    a holder a person has decided is dead. Raises ``LeaseBusyError`` when another run writes."""
    if dry_run:
        return run_cycle(engine, mode, dry_run=True)
    take_lease(engine, holder or cli_holder(), force=force)
    try:
        return run_cycle(engine, mode, force=True, approve_deactivations=approve_deactivations)
    finally:
        give_lease_back(engine)


def provision_user(engine: Engine, upn: str, *, dry_run: bool = False, holder: str | None = None) -> OnDemandOutcome:
    """Entra's "provision on demand": one user now, with the steps shown (see ``on_demand``)."""
    from include.provisioning.on_demand import provision_user as _provision_user

    if dry_run:
        return _provision_user(engine, upn, dry_run=True)
    take_lease(engine, holder or cli_holder())
    try:
        return _provision_user(engine, upn, force=True)
    finally:
        give_lease_back(engine)


@dataclass(frozen=True)
class DryRunPlan:
    """What a dry run shows a person (``plan_preview``): every planned action, the first as a table,
    and all of them as a CSV (``plan_preview.csv_bytes``: UTF-8 with a byte-order mark)."""

    rows: list[PlanRow]
    table: list[str]
    csv_bytes: bytes


PLAN_CSV = "dry-run-plan.csv"
"""The dry run's CSV in a run's workspace (the DAG); the command line names it after the cycle."""


def plan_preview(result: CycleResult, *, limit: int | None = None) -> DryRunPlan:
    """The dry run's plan of ``result`` for people: a table of its first ``limit`` planned actions
    (default ``plan_preview.TABLE_LIMIT``; with "… and N more") and a CSV of them all, quarantined
    users included."""
    from include.provisioning.plan_preview import TABLE_LIMIT, csv_bytes, plan_rows, table_lines

    limit = TABLE_LIMIT if limit is None else limit
    rows = plan_rows(result.plan, result.quarantined, profile_names=result.profile_names)
    return DryRunPlan(rows, table_lines(rows, limit), csv_bytes(rows))


@dataclass
class ConfigCheck:
    """``check_config``'s outcome: problems (each says what to fix) and what was found."""

    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "valid" if not self.problems else "invalid"


def check_config(
    environ: Mapping[str, str], mapping_path: Path, suite_path: Path, *, connect: bool = False
) -> ConfigCheck:
    """Check the mapping table, suite, options and connections; with ``connect`` also log in."""
    from include.provisioning.config_check import check_config as _check

    problems, info = _check(environ, mapping_path, suite_path, connect=connect)
    return ConfigCheck(problems, info)


# -- stage by stage ------------------------------------------------------------------------------


def restart_provisioning(engine: Engine) -> str:
    """Entra's "Restart provisioning": forget the delta link (the next cycle is full), the escrow
    (failed records start afresh) and the job's quarantine. What this product applied (snapshot)
    and the provisioning log are kept, so users it manages are still recognised. Hold the lease."""
    engine.state.reset(watermark=True, escrow=True)
    lifted = engine.state.lift_job_quarantine()
    done = "delta link and escrow cleared; the next cycle is full"
    return done + (f"; quarantine lifted ({lifted.describe()})" if lifted.active else "")


@dataclass
class RestartOutcome:
    """``restart_and_sync``'s outcome: what the restart cleared, and the full cycle that followed."""

    cleared: str
    result: CycleResult


def restart_and_sync(
    engine: Engine, *, force: bool = False, approve_deactivations: bool = False, holder: str | None = None
) -> RestartOutcome:
    """Entra's "Restart provisioning" then a full cycle, both under one writer lease (no other run
    can start an incremental cycle from the cleared state in between). The full cycle rebuilds
    the snapshot, links, "seen" users and escrow from what it observes (``state/rebuild.py``).
    Raises ``LeaseBusyError`` when another run writes (``force`` takes the lease over)."""
    take_lease(engine, holder or cli_holder(), force=force)
    try:
        cleared = restart_provisioning(engine)
        engine.progress(f"restart provisioning: {cleared}")
        result = run_cycle(engine, Mode.FULL, force=True, approve_deactivations=approve_deactivations)
    finally:
        give_lease_back(engine)
    return RestartOutcome(cleared, result)


def reset_quarantine(engine: Engine) -> str:
    """Lift the job's quarantine now (a person fixed the cause)."""
    lifted = engine.state.lift_job_quarantine()
    return f"quarantine lifted ({lifted.describe()})" if lifted.active else "the job was not quarantined"


@dataclass
class FailureVerdict:
    """What a failed run means for the job's quarantine (see ``record_failure``)."""

    auth_failures: int
    quarantine: Any = None
    """The job's ``JobQuarantine`` when this failure quarantined it."""
    notify: bool = False
    """The notification address has not heard about this quarantine reason yet."""


def record_failure(engine: Engine, exc: BaseException) -> FailureVerdict | None:
    """Count a run that failed to authenticate (Entra quarantines a job whose credentials keep
    failing); None for any other failure. Needs only the state store, not the lease."""
    from include.provisioning import quarantine_rules
    from include.provisioning.errors import AuthenticationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, AuthenticationError):
        cause = cause.__cause__
    if cause is None:
        return None
    count = engine.state.record_auth_failure()
    verdict = quarantine_rules.after_auth_failure(count, str(cause), engine.options)
    if verdict is None:
        return FailureVerdict(count)
    backoff = dt.timedelta(hours=engine.options.quarantine_backoff_hours)
    notify = engine.state.quarantine_job(verdict.code, verdict.reason, backoff=backoff)
    return FailureVerdict(count, engine.state.job_quarantine(), notify)


def record_stage_failure(
    engine: Engine, cycle_id: str | None, exc: BaseException, *, kind: str | None = None
) -> str | None:
    """Record on the cycle why the stage it is in failed, so the page and its API can say so
    (``StateStore.record_failure``): ``kind`` (default ``errors.failure_kind(exc)``; the caller
    knows better for its own errors, e.g. an undefined connection) and ``str(exc)``. Returns the
    kind; None for no cycle or a dry run's (a dry run writes nothing to the store)."""
    from include.provisioning.errors import failure_kind

    if not cycle_id or cycle_id.startswith("dry-run-"):
        return None
    kind = kind or failure_kind(exc)
    engine.state.record_failure(cycle_id, kind, str(exc) or type(exc).__name__)
    return kind


def open_cycle(
    engine: Engine,
    workspace_for: Callable[[str], Workspace],
    *,
    holder: str,
    run_key: str,
    mode: Mode = Mode.AUTO,
    dry_run: bool = False,
    focus_upn: str | None = None,
    approve_deactivations: bool = False,
    automatic: bool = False,
    restart: bool = False,
    lift_quarantine: bool = False,
    window: AssignmentWindow | None = None,
    shards: int = 1,
    now: dt.datetime | None = None,
) -> tuple[CycleContext, Workspace]:
    """Take the writer lease for ``holder`` and open or resume ``run_key``'s cycle.

    ``window``: the cycle provisions one slice of the tenant by assignment date (an initial
    sync's backfill run; see ``slices``). ``shards``: how many shards ``validate``, ``transform`` and
    ``load`` are split into (``shards``), each run by its own ``run_stage`` call.

    ``restart`` runs Entra's "Restart provisioning" first (then the cycle is full); ``lift_quarantine``
    lifts the job's quarantine. An ``automatic`` run (scheduled, backfill) of a quarantined job raises
    ``JobQuarantinedError`` until the quarantine's next attempt, and gives the lease back. Raises
    ``LeaseBusyError`` (retry later) when another run holds the lease. A dry run still takes the
    lease, so what it plans is what a real run at that moment would do."""
    from include.provisioning.errors import JobQuarantinedError

    take_lease(engine, holder)
    if restart:
        engine.progress(f"restart provisioning: {restart_provisioning(engine)}")
        mode = Mode.FULL
    elif lift_quarantine:
        engine.progress(f"reset quarantine: {reset_quarantine(engine)}")
    quarantine = engine.state.job_quarantine()
    if automatic and quarantine.holds(now or dt.datetime.now(dt.UTC)):
        give_lease_back(engine)
        raise JobQuarantinedError(quarantine)
    return stages.begin(
        engine,
        workspace_for,
        requested=mode,
        dry_run=dry_run,
        focus_upn=focus_upn,
        approve_deactivations=approve_deactivations,
        run_key=run_key,
        now=now,
        window=window,
        shards=shards,
    )


def run_stage(
    engine: Engine, name: str, ws: Workspace, *, shard: Shard | None = None, **options: Any
) -> StageOutcome | CycleResult:
    """Run one stage of the cycle whose workspace is ``ws`` (``commit`` returns the ``CycleResult``).

    ``shard``: for a sharded stage (``stages.SHARDED_STAGES``), the one shard to run (None: every
    shard in turn). ``options`` go to the stage (``validate`` takes ``write_docs``). Raises
    ``MissingArtifactError`` when an earlier stage's output is missing for this cycle."""
    if name == "commit":
        return stages.run_commit(engine, ws)
    if name not in _RUNNERS:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(stages.STAGES)}")
    if name in stages.SHARDED_STAGES:
        options["shard"] = shard
    elif shard is not None and not shard.whole:
        raise ValueError(f"stage {name!r} is not sharded; sharded stages are {', '.join(stages.SHARDED_STAGES)}")
    return _RUNNERS[name](engine, ws, **options)


def close_cycle(engine: Engine, *, holder: str, cycle_id: str | None, reason: str) -> str:
    """End of a run: a cycle it opened but did not commit is closed as failed with ``reason``
    (its recorded Bulk jobs stay for the next cycle to settle), and the lease is given back.
    Returns what was done, for the log."""
    done: list[str] = []
    if cycle_id and not cycle_id.startswith("dry-run-"):
        summary = engine.state.cycle(cycle_id)
        if summary is not None and not engine.state.is_committed(cycle_id):
            status = summary.status if summary.status is not CycleStatus.RUNNING else CycleStatus.FAILED
            summary.status = status
            engine.state.fail_cycle(cycle_id, reason, summary if status is CycleStatus.STOPPED else None)
            done.append(f"cycle {cycle_id} closed as {status}: {reason}")
    released = engine.state.release_lease(holder)
    done.append("writer lease released" if released else "the writer lease was not held by this run")
    return "; ".join(done)
