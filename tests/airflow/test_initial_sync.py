"""A tenant's initial sync as a backfill: ``airflow backfill create`` on the initial-sync DAG, run by
a real scheduler (``airflow standalone``) against the sandbox's example tenant, whose assignments
span March to May 2024. Every user is provisioned once, run by run in the grid; re-running a month
changes nothing; the backfill's runs and a run of the 20-minute DAG never interleave their cycles.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from include.provisioning.state import StateStore
from tests.airflow.dag_runs_api import SQLITE_BUSY, DagRunsApi
from tests.airflow.server import AirflowServer
from tests.sandbox_process import SandboxProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a real scheduler: module fixture + runs

INITIAL_SYNC = "entra_salesforce_initial_sync"
MONTHS = ["2024-03-01", "2024-04-01", "2024-05-01"]
WRITES = ("created", "updated", "deactivated")


@dataclass
class Runs(DagRunsApi):
    server: AirflowServer
    dag_id: str = INITIAL_SYNC


@pytest.fixture(scope="module")
def fresh(airflow_server: AirflowServer, sandbox_session: SandboxProcess) -> str:
    """The example tenant as shipped, an empty state store, no notification address (the report
    e-mail is another module's subject), both DAGs unpaused. Returns the state store's URL."""
    sandbox_session.reset()
    path = json.loads(airflow_server.env["AIRFLOW_CONN_PROVISIONING_STATE"])["extra"]["sqlite_path"]
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    airflow_server.api("DELETE", "/api/v2/variables/provisioning_notification_email")
    for dag_id in (INITIAL_SYNC, "entra_salesforce_provisioning"):
        answer = airflow_server.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert answer.status_code == 200, answer.text
    return f"sqlite:///{path}"


def _backfill_runs(runs: Runs) -> list[dict]:
    answer = runs.server.api("GET", f"/api/v2/dags/{INITIAL_SYNC}/dagRuns", params={"run_type": "backfill"})
    answer.raise_for_status()
    return sorted(answer.json()["dag_runs"], key=lambda r: r["data_interval_start"])


def test_a_backfill_provisions_the_tenant_month_by_month(
    airflow_server: AirflowServer, sandbox_session: SandboxProcess, fresh: str
) -> None:
    runs = Runs(airflow_server)
    for _attempt in range(5):  # Airflow refuses a backfill while its SQLite database is busy: run it again
        backfill = subprocess.run(
            [
                *(str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", INITIAL_SYNC),
                *("--from-date", MONTHS[0], "--to-date", "2024-05-31", "--max-active-runs", "1"),
            ],
            check=False,
            env=airflow_server.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if backfill.returncode == 0 or SQLITE_BUSY not in backfill.stderr.lower():
            break
        time.sleep(2)
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    # A run of the 20-minute DAG started at the same time: the lease keeps the cycles apart.
    regular = Runs(airflow_server, dag_id="entra_salesforce_provisioning").trigger()

    deadline = time.monotonic() + 60
    while len(_backfill_runs(runs)) < len(MONTHS) and time.monotonic() < deadline:
        time.sleep(1)
    created = _backfill_runs(runs)
    assert [r["data_interval_start"][:10] for r in created] == MONTHS  # the grid: one run per month
    for run in created:
        assert runs.wait(run["dag_run_id"]) == "success", runs.states(run["dag_run_id"])
    assert Runs(airflow_server, dag_id="entra_salesforce_provisioning").wait(regular) == "success"

    summaries = [runs.xcom(run["dag_run_id"], "commit") for run in created]
    for summary in summaries:
        assert summary["mode"] == "full" and summary["status"] == "succeeded"
    cycles = [runs.xcom(run["dag_run_id"], "begin_cycle")["cycle_id"] for run in created]
    with StateStore(fresh) as store:
        log = store.log_entries(limit=10_000)
        stored = [c for c in store.cycles(limit=100) if c.finished_at]
        watermark = store.watermark()
    # Every user written at most once in all: created by one run (a month's or the regular one's).
    creates = Counter(entry.entra_id for entry in log if str(entry.action) == "Create")
    assert creates and max(creates.values()) == 1
    org = sandbox_session.salesforce.get("/_sandbox/state").json()["users"]
    usernames = [u["Username"].lower() for u in org]
    assert len(usernames) == len(set(usernames))
    for a, b in itertools.combinations(stored, 2):
        assert a.finished_at <= b.started_at or b.finished_at <= a.started_at, f"{a.cycle_id} and {b.cycle_id}"
    assert {c.cycle_id for c in stored} >= set(cycles)
    # The regular run is the one that saves a delta link; slices never do.
    assert watermark is not None and watermark.delta_link

    # Re-running a month (its run cleared) changes nothing.
    april = created[1]["dag_run_id"]
    body = {"dry_run": False, "dag_run_id": april, "only_failed": False, "reset_dag_runs": True}
    answer = airflow_server.api("POST", f"/api/v2/dags/{INITIAL_SYNC}/clearTaskInstances", json=body)
    assert answer.status_code == 200, answer.text
    time.sleep(2)
    assert runs.wait(april) == "success", runs.states(april)
    again = runs.xcom(april, "commit")
    assert again["cycle_id"] != summaries[1]["cycle_id"]
    assert [again[k] for k in WRITES] == [0, 0, 0]
    assert again["in_scope"] == summaries[1]["in_scope"] > 0
