"""One provisioning cycle, all stages in one process (the command line and the tests).

The stages themselves live in ``stages.py`` (the Airflow DAG runs each as a task); this module
runs them in order against a memory workspace. The cycle owns the bookkeeping that makes the
counts add up: every user the extract returns ends in exactly one outcome (created, updated,
unchanged, deactivated, quarantined, escrowed, held back), and the state store advances
(snapshot, escrow, delta link) only in the commit, after Salesforce's results are in hand. A crash
anywhere before that leaves the previous state, and the next cycle redoes the work; a Bulk job
left behind by a crash is settled first and forces a full cycle, whose org query sees whatever
the crashed run managed to create, so nothing is created twice.
"""

from __future__ import annotations

import datetime as dt

from include.provisioning.engine import Engine, Progress
from include.provisioning.errors import failure_kind
from include.provisioning.model import Mode
from include.provisioning.slices import AssignmentWindow
from include.provisioning.stages import (
    CycleError,
    CycleResult,
    begin,
    run_commit,
    run_extract,
    run_load,
    run_plan,
    run_transform,
    run_validate,
)
from include.provisioning.workspace import MemoryWorkspace

__all__ = ["CycleError", "CycleResult", "Engine", "Progress", "run_cycle"]


def run_cycle(
    engine: Engine,
    mode: Mode = Mode.AUTO,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    force: bool = False,
    focus_upn: str | None = None,
    approve_deactivations: bool = False,
    run_key: str | None = None,
    window: AssignmentWindow | None = None,
) -> CycleResult:
    """Run one cycle; with ``dry_run`` plan everything and write nothing (neither Salesforce nor state).

    ``focus_upn`` restricts the cycle to one user (provision on demand): a full read of the
    assignments decides scope and role, Salesforce is asked about that user alone, and the delta
    link is not advanced, so the scheduled cycles are unaffected. ``window`` restricts it to one
    slice of the tenant by assignment date (``slices``), likewise. Raises whatever a stage raised,
    after closing the cycle as failed in the state store."""
    workspace = MemoryWorkspace()
    context, ws = begin(
        engine,
        lambda cycle_id: workspace,
        requested=mode,
        dry_run=dry_run,
        focus_upn=focus_upn,
        approve_deactivations=approve_deactivations,
        run_key=run_key,
        force=force,
        now=now,
        window=window,
    )
    try:
        for stage in (run_extract, run_validate, run_transform, run_plan, run_load):
            stage(engine, ws)
        return run_commit(engine, ws)
    except Exception as exc:
        if not dry_run:
            # The kind too, so the Provisioning page says what to do about it (as for Airflow's runs).
            engine.state.record_failure(context.cycle_id, failure_kind(exc), f"{type(exc).__name__}: {exc}")
            engine.state.fail_cycle(context.cycle_id, f"{type(exc).__name__}: {exc}")
        raise
