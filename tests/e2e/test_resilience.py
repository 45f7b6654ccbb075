"""A run killed during the load, 429 storms and 503s: the outcome is the same, only slower."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.model import Action, CycleStatus, Status
from tests.e2e.conftest import org_users
from tests.sandbox_process import REPO_ROOT, SandboxProcess

IDENTITY = {"Id", "CreatedDate", "CreatedById", "LastModifiedById"}
EXPECTED_CREATED = {"adele.vance@contoso.example", "zoe.muller@contoso.example", "no.surname@contoso.example"}


def _outcome(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """The org's users without the values that differ between two equally correct runs."""
    return {name: {k: v for k, v in user.items() if k not in IDENTITY} for name, user in org_users(sandbox).items()}


def _usernames(sandbox: SandboxProcess) -> list[str]:
    return [u["Username"].lower() for u in sandbox.salesforce.get("/_sandbox/state").json()["users"]]


def _sync_killed_when(sandbox: SandboxProcess, state_db: Path, reached: Callable[[], bool]) -> None:
    """Run ``sync`` in a child process and SIGKILL it once ``reached()`` (the sandbox's faults hold it there)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.provisioning",
            "sync",
            "--env-file",
            str(sandbox.env_file),
            "--state-url",
            f"sqlite:///{state_db}",
            "--quiet",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while not reached():
            assert time.monotonic() < deadline, "the run never reached the point where it is killed"
            assert child.poll() is None, "the run ended before it was killed"
            time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    sandbox.salesforce.delete("/_sandbox/faults").raise_for_status()


def _recorded_jobs(state_db: Path) -> list[tuple[str]]:
    if not state_db.exists():
        return []
    with sqlite3.connect(state_db) as db:
        try:
            return db.execute("SELECT job_id FROM bulk_jobs").fetchall()
        except sqlite3.OperationalError:
            return []


def test_run_killed_during_the_load_is_recovered_without_duplicates_or_loss(
    sandbox: SandboxProcess, tmp_path: Path, make_engine: Callable[..., Engine]
) -> None:
    state_db = tmp_path / "killed.db"
    # Job status polls hang, so the run is certainly inside the load when it is killed.
    sandbox.salesforce.put(
        "/_sandbox/faults", json=[{"method": "GET", "path_regex": r"/jobs/ingest/[^/]+/?$", "latency_ms": 60_000}]
    ).raise_for_status()
    recorded_at: list[float] = []

    def submitted() -> bool:  # recorded, then half a second for the upload and close to go through
        if not recorded_at and _recorded_jobs(state_db):
            recorded_at.append(time.monotonic())
        return bool(recorded_at) and time.monotonic() - recorded_at[0] > 0.5

    _sync_killed_when(sandbox, state_db, submitted)

    engine = make_engine(f"sqlite:///{state_db}")
    result = run_cycle(engine, force=True)
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    assert any("interrupted run were settled" in note for note in result.notes), result.notes
    names = _usernames(sandbox)
    assert len(names) == len(set(names)), "a user was created twice"
    assert set(names) >= EXPECTED_CREATED
    assert org_users(sandbox)["megan.bowen@contoso.example"]["LastName"] == "Bowen"
    assert engine.state.pending_jobs() == []
    settled_rows = [e for e in engine.state.log_entries() if "settled by cycle" in (e.error_message or "")]
    assert settled_rows, "what the interrupted job did is not in the provisioning log"
    settled = run_cycle(engine)  # and the next cycle has nothing left to do
    assert (settled.summary.created, settled.summary.updated) == (0, 0)


def test_a_crashed_cycles_bulk_job_is_filed_under_it_with_each_failure_once(
    sandbox: SandboxProcess, tmp_path: Path, make_engine: Callable[..., Engine]
) -> None:
    """Killed after Salesforce finished its insert job (reading the results hangs): the next
    cycle files the job's rows under the killed cycle, with who they are; Alex's failure
    (DUPLICATE_USERNAME) is in the log, the counts and the report's CSV once, not sent again."""
    state_db = tmp_path / "crashed.db"
    results_route = "GET /services/data/{version}/jobs/ingest/{job_id}/{result}"
    sandbox.salesforce.put(
        "/_sandbox/faults",
        json=[{"method": "GET", "path_regex": r"/jobs/ingest/[^/]+/[A-Za-z]+/?$", "latency_ms": 60_000}],
    ).raise_for_status()
    _sync_killed_when(sandbox, state_db, lambda: sandbox.requests("salesforce")["by_route"].get(results_route, 0) > 0)

    engine = make_engine(f"sqlite:///{state_db}")
    (crashed,) = engine.state.cycles()
    assert len(engine.state.pending_jobs()) == 1  # the insert job; the update job was never sent
    result = run_cycle(engine, force=True)
    summary = result.summary
    assert summary.status is CycleStatus.SUCCEEDED, summary.reason

    rows = sorted(
        (e.cycle_id, e.action, e.user_principal_name, e.status, e.error_code) for e in engine.state.log_entries()
    )
    created = [(crashed.cycle_id, Action.CREATE, upn, Status.SUCCESS, None) for upn in sorted(EXPECTED_CREATED)]
    alex_failed = (crashed.cycle_id, Action.CREATE, "alex.wilber@contoso.example", Status.FAILURE, "DUPLICATE_USERNAME")
    megan_updated = (summary.cycle_id, Action.UPDATE, "megan.bowen@contoso.example", Status.SUCCESS, None)
    assert rows == sorted([*created, alex_failed, megan_updated])
    settled = engine.state.log_entries(cycle_id=crashed.cycle_id)
    assert all(e.entra_id and e.sf_id for e in settled if e.status is Status.SUCCESS)
    assert all(f"settled by cycle {summary.cycle_id}" in (e.error_message or "") for e in settled)

    # The counts add up, as in a cycle that was never interrupted: the three created by the
    # killed run are unchanged now, Alex waits in escrow (counted once), Megan is updated.
    assert summary.in_scope == 6
    assert (summary.created, summary.updated, summary.unchanged, summary.escrowed) == (0, 1, 4, 1)
    (waiting,) = engine.state.escrow_entries()
    assert (waiting.error_code, waiting.attempts, waiting.last_cycle_id) == ("DUPLICATE_USERNAME", 1, crashed.cycle_id)
    assert result.report is not None
    report_rows = list(csv.reader(io.StringIO(result.report.csv_bytes.decode("utf-8-sig"))))[1:]
    assert [(r[0], r[1], r[2], r[4], r[5], r[7]) for r in report_rows] == [
        (crashed.cycle_id, "Create", "Failure", "alex.wilber@contoso.example", "Alex Wilber", "DUPLICATE_USERNAME")
    ]
    assert [(e.cycle_id, e.user_principal_name) for e in result.recovered] == [
        (crashed.cycle_id, "alex.wilber@contoso.example")
    ]
    (history,) = [c for c in engine.state.cycles() if c.cycle_id == crashed.cycle_id]
    assert history.reason is not None and history.reason.endswith(
        f"its Bulk jobs were settled by cycle {summary.cycle_id}: "
        "3 succeeded, 1 failed (escrowed), 0 not processed (sent again)"
    )
    names = _usernames(sandbox)
    assert len(names) == len(set(names)) and set(names) >= EXPECTED_CREATED


def test_throttling_storms_and_503s_change_the_duration_not_the_outcome(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    clean: CycleResult = run_cycle(make_engine(f"sqlite:///{tmp_path / 'clean.db'}"))
    expected = _outcome(sandbox)

    sandbox.reset()
    sandbox.graph.put(
        "/_sandbox/faults",
        json=[
            {"method": "*", "path_regex": "^/v1.0/", "status": 429, "retry_after": 1, "probability": 0.4, "times": 4},
            {"method": "GET", "path_regex": "^/v1.0/servicePrincipals", "status": 503, "times": 1},
        ],
    ).raise_for_status()
    sandbox.salesforce.put(
        "/_sandbox/faults",
        json=[
            {"method": "POST", "path_regex": "/jobs/ingest/?$", "status": 503, "times": 2},
            {"method": "GET", "path_regex": "/jobs/query/", "status": 503, "times": 1},
        ],
    ).raise_for_status()
    stormy = run_cycle(make_engine(f"sqlite:///{tmp_path / 'stormy.db'}"))
    assert stormy.summary.status is CycleStatus.SUCCEEDED, stormy.summary.reason
    assert _outcome(sandbox) == expected
    counts = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed")
    assert [getattr(stormy.summary, c) for c in counts] == [getattr(clean.summary, c) for c in counts]
    graph_rules = sandbox.graph.get("/_sandbox/faults").json()["rules"]
    salesforce_rules = sandbox.salesforce.get("/_sandbox/faults").json()["rules"]
    assert graph_rules[0]["remaining"] < 4 and graph_rules[1]["remaining"] == 0, "Graph faults were not hit"
    assert salesforce_rules[0]["remaining"] == 0, "the injected 503s were not all hit"
