"""A run killed during the load, 429 storms and 503s: the outcome is the same, only slower."""

from __future__ import annotations

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
from include.provisioning.model import CycleStatus
from tests.e2e.conftest import org_users
from tests.sandbox_process import REPO_ROOT, SandboxProcess

IDENTITY = {"Id", "CreatedDate", "CreatedById", "LastModifiedById"}
EXPECTED_CREATED = {"adele.vance@contoso.example", "zoe.muller@contoso.example", "no.surname@contoso.example"}


def _outcome(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """The org's users without the values that differ between two equally correct runs."""
    return {name: {k: v for k, v in user.items() if k not in IDENTITY} for name, user in org_users(sandbox).items()}


def _usernames(sandbox: SandboxProcess) -> list[str]:
    return [u["Username"].lower() for u in sandbox.salesforce.get("/_sandbox/state").json()["users"]]


def test_run_killed_during_the_load_is_recovered_without_duplicates_or_loss(
    sandbox: SandboxProcess, tmp_path: Path, make_engine: Callable[..., Engine]
) -> None:
    state_db = tmp_path / "killed.db"
    # Job status polls hang, so the run is certainly inside the load when it is killed.
    sandbox.salesforce.put(
        "/_sandbox/faults", json=[{"method": "GET", "path_regex": r"/jobs/ingest/[^/]+/?$", "latency_ms": 60_000}]
    ).raise_for_status()
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
    recorded: list[tuple[str]] = []
    while time.monotonic() < deadline and not recorded:
        time.sleep(0.2)
        if state_db.exists():
            with sqlite3.connect(state_db) as db:
                try:
                    recorded = db.execute("SELECT job_id FROM bulk_jobs").fetchall()
                except sqlite3.OperationalError:
                    recorded = []
    assert recorded, "the run never reached the load"
    time.sleep(0.5)  # let the upload and close go through: the job is now being processed
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    sandbox.salesforce.delete("/_sandbox/faults").raise_for_status()

    engine = make_engine(f"sqlite:///{state_db}")
    result = run_cycle(engine, force=True)
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    assert any("interrupted run were settled" in note for note in result.notes), result.notes
    names = _usernames(sandbox)
    assert len(names) == len(set(names)), "a user was created twice"
    assert set(names) >= EXPECTED_CREATED
    assert org_users(sandbox)["megan.bowen@contoso.example"]["LastName"] == "Bowen"
    assert engine.state.pending_jobs() == []
    settled_rows = [
        e for e in engine.state.log_entries() if "settled from interrupted cycle" in (e.error_message or "")
    ]
    assert settled_rows, "what the interrupted job did is not in the provisioning log"
    settled = run_cycle(engine)  # and the next cycle has nothing left to do
    assert (settled.summary.created, settled.summary.updated) == (0, 0)


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
