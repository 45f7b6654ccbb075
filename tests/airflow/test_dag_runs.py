"""The provisioning DAG run by a real scheduler (``airflow standalone``, LocalExecutor) against the
sandbox: initial full sync, incremental cycle, the report e-mail in a real SMTP server, params
refused at trigger time, one writer across a CLI run, manual and backfill runs, a load task
killed mid-run and cleared, and no secret in any task log.

The tests of this module build on each other in file order (one deployment, one state store),
like an administrator's first day with the product.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from include.provisioning.state import StateStore
from tests.airflow.airflow_env import REPO_ROOT
from tests.airflow.dag_runs_api import DAG_ID, DagRunsApi, create_backfill
from tests.airflow.server import AirflowServer
from tests.sandbox_process import SandboxProcess
from tests.smtp_server import SmtpServer, attachments, html_body

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a real scheduler: module fixture + runs

NOTIFY_TO = "it-admins@contoso.example"
ADELE = "adele.vance@contoso.example"


@dataclass
class Deployment(DagRunsApi):
    server: AirflowServer
    sandbox: SandboxProcess
    smtp: SmtpServer
    state_url: str
    first_run: str

    def store(self) -> StateStore:
        return StateStore(self.state_url)


def _settle(deployment: Deployment, run_id: str) -> None:
    """Wait for a run and require success, quoting the task states on failure."""
    state = deployment.wait(run_id)
    assert state == "success", f"{run_id}: {deployment.states(run_id)}\n{deployment.server.tail(80)}"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def deployment(airflow_server: AirflowServer, sandbox_session: SandboxProcess, smtp: SmtpServer) -> Deployment:
    """The sandbox at the example fixtures, a fresh state store, SMTP and the notification address
    configured through Airflow's API, the DAG unpaused, and a first run: the initial sync."""
    sandbox_session.reset()
    state_url = json.loads(airflow_server.env["AIRFLOW_CONN_PROVISIONING_STATE"])["extra"]["sqlite_path"]
    for suffix in ("", "-wal", "-shm"):
        Path(state_url + suffix).unlink(missing_ok=True)
    smtp_conn = smtp.connection("airflow@contoso.example")
    conn = {"connection_id": "smtp_default", **smtp_conn, "extra": json.dumps(smtp_conn["extra"])}
    answer = airflow_server.api("POST", "/api/v2/connections", json=conn)
    assert answer.status_code in (201, 409), answer.text
    answer = airflow_server.api(
        "POST", "/api/v2/variables", json={"key": "provisioning_notification_email", "value": NOTIFY_TO}
    )
    assert answer.status_code in (201, 409), answer.text
    answer = airflow_server.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert answer.status_code == 200, answer.text
    deployment = Deployment(airflow_server, sandbox_session, smtp, f"sqlite:///{state_url}", "")
    deployment.first_run = deployment.trigger()
    _settle(deployment, deployment.first_run)
    return deployment


def _org(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    return {u["Username"].lower(): u for u in sandbox.salesforce.get("/_sandbox/state").json()["users"]}


def test_the_first_run_is_the_initial_full_sync(deployment: Deployment) -> None:
    states = deployment.states(deployment.first_run)
    expected = ("begin_cycle", "extract", "validate", "transform", "plan", "load", "commit", "end_cycle")
    assert {t: states[t] for t in expected} == dict.fromkeys(expected, "success")
    summary = deployment.xcom(deployment.first_run, "commit")
    assert summary["mode"] == "full" and summary["status"] == "succeeded"
    assert summary["in_scope"] == sum(
        summary[k] for k in ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
    )
    assert summary["created"] >= 1
    org = _org(deployment.sandbox)
    assert org[ADELE]["IsActive"] is True
    # The stages handed each other Parquet files under the run's path; XCom held only the path.
    cycle = deployment.xcom(deployment.first_run, "begin_cycle")
    root = Path(cycle["workspace"].removeprefix("file://"))
    for name in ("users.parquet", "valid.parquet", "mapped.parquet", "plan.parquet", "results.parquet"):
        assert (root / name).is_file(), name
    assert set(cycle) == {"cycle_id", "mode", "workspace", "dry_run", "user", "shards"}
    # Great Expectations' own result and Data Docs page for this run.
    result = json.loads((root / "great_expectations" / "validation_result.json").read_text())
    assert result["success"] in (True, False) and result["results"]
    assert "<html" in (root / "great_expectations" / "data_docs" / "index.html").read_text().lower()


def test_the_cycle_report_reaches_the_notification_address(deployment: Deployment) -> None:
    summary = deployment.xcom(deployment.first_run, "commit")
    assert summary["escrowed"] >= 1, "the example org holds a username taken elsewhere: one create fails"
    assert deployment.states(deployment.first_run)["notify"] == "success"
    (received,) = deployment.smtp.wait_for(1, timeout=30)
    message = received.message
    assert NOTIFY_TO in message["To"]
    assert summary["cycle_id"] in message["Subject"]
    body = html_body(message)
    assert "DUPLICATE_USERNAME" in body
    assert f"/dags/{DAG_ID}/runs/" in body  # the link to the run in the Airflow UI
    files = attachments(message)
    (name,) = files
    rows = list(csv.DictReader(io.StringIO(files[name].decode("utf-8-sig"))))
    assert any("DUPLICATE_USERNAME" in json.dumps(row) for row in rows)


def test_an_incremental_cycle_applies_a_change_made_in_entra(deployment: Deployment) -> None:
    users = deployment.sandbox.graph.get("/_sandbox/state").json()["users"]
    adele = next(u for u in users if u["userPrincipalName"].lower() == ADELE)
    deployment.sandbox.graph.patch(f"/_sandbox/users/{adele['id']}", json={"jobTitle": "Head of Airflow"})
    run_id = deployment.trigger()
    _settle(deployment, run_id)
    summary = deployment.xcom(run_id, "commit")
    assert summary["mode"] == "incremental"
    assert summary["updated"] == 1
    assert _org(deployment.sandbox)[ADELE]["Title"] == "Head of Airflow"
    assert deployment.states(run_id)["notify"] == "skipped"  # nothing new failed: no e-mail
    assert len(deployment.smtp.messages) == 1


def test_the_user_param_provisions_one_user_on_demand(deployment: Deployment) -> None:
    users = deployment.sandbox.graph.get("/_sandbox/state").json()["users"]
    adele = next(u for u in users if u["userPrincipalName"].lower() == ADELE)
    deployment.sandbox.graph.patch(f"/_sandbox/users/{adele['id']}", json={"department": "On demand"})
    run_id = deployment.trigger({"user": ADELE})
    _settle(deployment, run_id)
    summary = deployment.xcom(run_id, "commit")
    assert summary["user"] == ADELE and summary["in_scope"] == 1 and summary["updated"] == 1
    steps = {step["name"]: step for step in summary["steps"]}
    assert steps["action"]["status"] == "ok" and "Department" in steps["action"]["detail"]
    assert _org(deployment.sandbox)[ADELE]["Department"] == "On demand"


@pytest.mark.parametrize(
    ("conf", "named"),
    [({"mode": "sideways"}, "mode"), ({"dry_run": "yes"}, "dry_run"), ({"user": "not an address"}, "user")],
)
def test_a_bad_param_fails_the_trigger_not_a_task(deployment: Deployment, conf: dict[str, Any], named: str) -> None:
    before = deployment.server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"]
    answer = deployment.server.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
    assert answer.status_code == 400, answer.text
    assert named in answer.text
    assert deployment.server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"] == before


def test_an_unknown_param_fails_the_run_before_anything_is_done(deployment: Deployment) -> None:
    run_id = deployment.trigger({"dryrun": True})
    assert deployment.wait(run_id) == "failed"
    states = deployment.states(run_id)
    assert states["begin_cycle"] == "failed" and states["extract"] in ("upstream_failed", None)
    log = _task_log(deployment, run_id, "begin_cycle", deployment.tasks(run_id)["begin_cycle"]["try_number"])
    assert "unknown param(s) 'dryrun'" in log


def test_a_dry_run_writes_nothing_and_sends_no_e_mail(deployment: Deployment) -> None:
    before = _org(deployment.sandbox)
    mails = len(deployment.smtp.messages)
    run_id = deployment.trigger({"dry_run": True, "mode": "full"})
    _settle(deployment, run_id)
    states = deployment.states(run_id)
    assert states["load"] == "skipped" and states["notify"] == "skipped"
    committed = deployment.xcom(run_id, "commit")
    assert committed["status"] == "stopped"
    # The whole plan stays in the run's path as a CSV a person can open (one row per action).
    plan_csv = Path(urlsplit(committed["plan_csv"]).path).read_bytes()  # a file: URL in the run's path
    assert plan_csv.startswith(b'\xef\xbb\xbf"action","user_principal_name"')
    planned = sum(committed[k] for k in ("created", "updated", "deactivated", "held_back", "quarantined"))
    assert plan_csv.count(b"\r\n") == committed["planned_actions"] + 1 and committed["planned_actions"] == planned
    assert _org(deployment.sandbox) == before
    assert len(deployment.smtp.messages) == mails


def _cycles(deployment: Deployment) -> list[tuple[str, dt.datetime, dt.datetime]]:
    with deployment.store() as store:
        return [(c.cycle_id, c.started_at, c.finished_at) for c in store.cycles(limit=100) if c.finished_at]


def _assert_no_overlap(cycles: list[tuple[str, dt.datetime, dt.datetime]]) -> None:
    for (a, a_start, a_end), (b, b_start, b_end) in itertools.combinations(cycles, 2):
        assert a_end <= b_start or b_end <= a_start, f"cycles {a} and {b} interleaved"


def test_a_dag_run_waits_for_the_lease_a_cli_run_holds(deployment: Deployment, tmp_path: Path) -> None:
    # Slow Graph down so the CLI cycle holds the lease for several seconds.
    faults = [{"method": "*", "path_regex": "^/v1.0/", "latency_ms": 1500}]
    deployment.sandbox.graph.put("/_sandbox/faults", json=faults).raise_for_status()
    env_file = tmp_path / "sandbox.env"
    env_file.write_text(deployment.sandbox.env_file.read_text())
    cli = subprocess.Popen(
        [
            *(sys.executable, "-m", "include.provisioning", "sync", "--env-file", str(env_file)),
            *("--state-url", deployment.state_url, "--report-dir", str(tmp_path / "reports")),
        ],
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        with deployment.store() as store:
            while store.lease() is None and cli.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            holder = store.lease()
        assert holder is not None and holder.holder.startswith("cli:"), cli.stdout.read() if cli.stdout else ""
        run_id = deployment.trigger()
        output = cli.communicate(timeout=180)[0].decode()
    finally:
        if cli.poll() is None:
            cli.kill()
        deployment.sandbox.graph.delete("/_sandbox/faults").raise_for_status()
    assert cli.returncode == 0, output
    _settle(deployment, run_id)
    begin = deployment.tasks(run_id)["begin_cycle"]
    log = _task_log(deployment, run_id, "begin_cycle", begin["try_number"])
    assert "waiting for the writer lease" in log and "cli:" in log
    _assert_no_overlap(_cycles(deployment))


def test_backfill_and_manual_runs_started_together_never_interleave(deployment: Deployment) -> None:
    # Backfill runs ignore the DAG's max_active_runs (measured on 3.3.2): three runs start at once
    # and only the writer lease keeps their cycles apart.
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    start = now - dt.timedelta(hours=2)
    body = {
        "dag_id": DAG_ID,
        "from_date": start.isoformat(),
        "to_date": (start + dt.timedelta(minutes=40)).isoformat(),
        "max_active_runs": 3,
        "reprocess_behavior": "completed",
    }
    create_backfill(deployment.server, body)
    manual = deployment.trigger()
    deadline = time.monotonic() + 30
    backfill_runs: list[str] = []
    while len(backfill_runs) < 2 and time.monotonic() < deadline:
        runs = deployment.server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill"}).json()
        backfill_runs = [r["dag_run_id"] for r in runs["dag_runs"]]
        time.sleep(1)
    assert len(backfill_runs) >= 2, backfill_runs
    for run_id in [*backfill_runs, manual]:
        _settle(deployment, run_id)
    for run_id in backfill_runs:  # real 20-minute data intervals (a plain cron string gives zero-length ones)
        run = deployment.run(run_id)
        interval = dt.datetime.fromisoformat(run["data_interval_end"]) - dt.datetime.fromisoformat(
            run["data_interval_start"]
        )
        assert interval == dt.timedelta(minutes=20), run_id
    _assert_no_overlap(_cycles(deployment))
    assert len(_cycles(deployment)) >= 5


def _task_log(deployment: Deployment, run_id: str, task_id: str, try_number: int) -> str:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    answer = deployment.server.api("GET", path, params={"full_content": True}, headers={"Accept": "application/json"})
    answer.raise_for_status()
    content = answer.json()["content"]
    if isinstance(content, list):  # structured log records: the event and its details (errors too)
        return "\n".join(json.dumps(item) if isinstance(item, dict) else str(item) for item in content)
    return str(content)


def _add_user(sandbox: SandboxProcess, user_id: str, upn: str, assignment_id: str) -> None:
    """A new Entra user assigned to the app directly (the app's first role)."""
    tenant = sandbox.graph.get("/_sandbox/state").json()
    role = tenant["service_principal"]["appRoles"][0]["id"]
    local = upn.split("@", maxsplit=1)[0]
    user = {
        "id": user_id,
        "userPrincipalName": upn,
        "mail": upn,
        "givenName": "Test",
        "surname": local.replace(".", " ").title(),
        "displayName": local,
        "mailNickname": local,
        "accountEnabled": True,
        "usageLocation": "US",
        "preferredLanguage": "en-US",
    }
    sandbox.graph.post("/_sandbox/users", json=user).raise_for_status()
    assignment = {
        "id": assignment_id,
        "principalId": user_id,
        "principalType": "User",
        "appRoleId": role,
        "createdDateTime": "2026-11-30T00:00:00Z",
    }
    sandbox.graph.post("/_sandbox/appRoleAssignments", json=assignment).raise_for_status()


def _add_users(sandbox: SandboxProcess, count: int) -> list[str]:
    """New Entra users assigned to the app directly; returns their UPNs."""
    upns = [f"killed.load{n}@contoso.example" for n in range(count)]
    for n, upn in enumerate(upns):
        _add_user(sandbox, f"7e57{n:04d}-0000-4000-8000-00000000abcd", upn, f"kill-{n}")
    return upns


def _worker_process(ti_id: str) -> psutil.Process | None:
    """The task process LocalExecutor runs for a task instance (titled ``airflow worker -- <ti id>``)."""
    for process in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(process.info["cmdline"] or []):
            return process
    return None


def test_a_load_task_killed_mid_run_and_cleared_converges(deployment: Deployment) -> None:
    upns = _add_users(deployment.sandbox, 3)
    # Bulk job status polls answer slowly, so the load is still running when it is killed.
    faults = [{"method": "GET", "path_regex": "jobs/ingest/[^/]+$", "latency_ms": 3000}]
    deployment.sandbox.salesforce.put("/_sandbox/faults", json=faults).raise_for_status()
    run_id = deployment.trigger()
    try:
        deadline = time.monotonic() + 120
        victim = None
        recorded_at = None
        while victim is None and time.monotonic() < deadline:
            load = deployment.tasks(run_id).get("load", {})
            with deployment.store() as store:
                recorded = store.pending_jobs()
            if recorded and recorded_at is None:
                recorded_at = time.monotonic()
            # Upload and close take milliseconds; a second later the task is inside a slow status poll.
            if load.get("state") == "running" and recorded_at and time.monotonic() - recorded_at > 1.0:
                victim = _worker_process(load["id"])
            time.sleep(0.2)
        assert victim is not None, f"the load task never ran with a recorded Bulk job: {deployment.states(run_id)}"
        victim.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 120
        while deployment.tasks(run_id)["load"]["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        deployment.sandbox.salesforce.delete("/_sandbox/faults").raise_for_status()
    # A person clears the load task (and what follows it) in the UI; Airflow re-runs the setup too.
    clear = {
        "dag_run_id": run_id,
        "task_ids": ["load"],
        "include_downstream": True,
        "only_failed": False,
        "dry_run": False,
    }
    answer = deployment.server.api("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances", json=clear)
    assert answer.status_code == 200, answer.text
    _settle(deployment, run_id)
    org = _org(deployment.sandbox)
    state = deployment.sandbox.salesforce.get("/_sandbox/state").json()
    for upn in upns:
        assert org[upn]["IsActive"] is True, upn
        assert sum(1 for u in state["users"] if u["Username"].lower() == upn) == 1, f"{upn} created twice"
    summary = deployment.xcom(run_id, "commit")
    assert summary["status"] == "succeeded"
    # The re-run read the killed attempt's Bulk job back instead of sending the creates again.
    assert deployment.xcom(run_id, "load", map_index=0)["resumed"] == len(upns)  # one shard: map index 0
    with deployment.store() as store:
        assert store.pending_jobs() == []
        failures = [e for e in store.log_entries(cycle_id=summary["cycle_id"]) if e.user_principal_name in upns]
    assert all(e.error_code is None for e in failures), [(e.user_principal_name, e.error_code) for e in failures]


def _set_variables(deployment: Deployment, values: dict[str, str | None]) -> None:
    for key, value in values.items():
        deployment.server.api("DELETE", f"/api/v2/variables/{key}")
        if value is not None:
            answer = deployment.server.api("POST", "/api/v2/variables", json={"key": key, "value": value})
            assert answer.status_code == 201, answer.text


def test_mass_failures_quarantine_the_job_until_a_manual_reset(deployment: Deployment) -> None:
    strict = {"provisioning_quarantine_min_failures": "2", "provisioning_quarantine_failure_share": "0.5"}
    _set_variables(deployment, strict)
    try:
        upns = [f"quarantine.case{n}@contoso.example" for n in range(3)]
        org = deployment.sandbox.salesforce.get("/_sandbox/state").json()
        org["usernames_taken_elsewhere"] = [*org.get("usernames_taken_elsewhere", []), *upns]
        deployment.sandbox.salesforce.put("/_sandbox/state", json=org).raise_for_status()
        for n, upn in enumerate(upns):  # three joiners whose Usernames another org holds
            _add_user(deployment.sandbox, f"9a7e{n:04d}-0000-4000-8000-00000000abcd", upn, f"q-{n}")
        mails = len(deployment.smtp.messages)
        failing = deployment.trigger()
        _settle(deployment, failing)
        summary = deployment.xcom(failing, "commit")
        assert summary["job_quarantine"]["reason_code"] == "EncounteredEscrowProportionThreshold"
        received = deployment.smtp.wait_for(mails + 2, timeout=180)[mails:]  # generous: a busy machine
        subjects = sorted(r.message["Subject"] for r in received)
        assert any("quarantined (EncounteredEscrowProportionThreshold)" in s for s in subjects), subjects
        # An automatic run (a backfill run here; scheduled runs alike) is skipped, with the reason.
        now = dt.datetime.now(dt.UTC)
        start = now.replace(minute=now.minute - now.minute % 20, second=0, microsecond=0) - dt.timedelta(hours=5)
        before = set(_backfill_runs(deployment))
        body = {
            "dag_id": DAG_ID,
            "from_date": start.isoformat(),
            "to_date": (start + dt.timedelta(minutes=20)).isoformat(),
            "max_active_runs": 1,
        }
        create_backfill(deployment.server, body)
        backfill = _wait_for_new_backfill_run(deployment, before)
        deployment.wait(backfill)
        begin = deployment.tasks(backfill)["begin_cycle"]
        assert begin["state"] == "skipped"
        assert "quarantined since" in _task_log(deployment, backfill, "begin_cycle", begin["try_number"])
        assert len(deployment.smtp.messages) == mails + 2  # one notice, not one per skipped run
        # A person fixes the cause and resets the quarantine: the manual run goes ahead and lifts it.
        reset = deployment.trigger({"reset_quarantine": True})
        _settle(deployment, reset)
        assert deployment.xcom(reset, "commit")["job_quarantine"] is None
        with deployment.store() as store:
            assert not store.job_quarantine().active
    finally:
        _set_variables(deployment, dict.fromkeys(strict))


def _backfill_runs(deployment: Deployment) -> list[str]:
    runs = deployment.server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill"}).json()
    return [str(run["dag_run_id"]) for run in runs["dag_runs"]]


def _wait_for_new_backfill_run(deployment: Deployment, before: set[str]) -> str:
    deadline = time.monotonic() + 180  # the scheduler creates it within seconds; generous for a busy machine
    while time.monotonic() < deadline:
        new = sorted(set(_backfill_runs(deployment)) - before)
        if new:
            return new[0]
        time.sleep(1)
    raise AssertionError("the backfill created no run")


SESSION_ID = re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}")
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._-]{20,}")


def test_no_secret_in_any_task_log_or_xcom(deployment: Deployment) -> None:
    tenant, org = deployment.sandbox.tenant, deployment.sandbox.org
    secrets = {c["client_secret"] for c in tenant["clients"]}
    secrets |= {login["password"] for login in org["logins"]} | {login["security_token"] for login in org["logins"]}
    secrets |= {app["consumer_secret"] for app in org.get("connected_apps", [])}
    secrets = {s for s in secrets if s and len(s) >= 5}
    assert secrets
    logs = sorted((deployment.server.home / "logs").rglob("*.log"))
    assert len(logs) >= 20, "expected the task logs of every run"
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret appears in {path}"
        assert not SESSION_ID.search(text), f"a Salesforce session id appears in {path}"
        assert not BEARER.search(text), f"a bearer token appears in {path}"
    for task in ("begin_cycle", "extract", "validate", "transform", "plan", "load", "commit"):
        mapped = 0 if task in ("validate", "transform", "load") else None  # one shard: map index 0
        value = json.dumps(deployment.xcom(deployment.first_run, task, map_index=mapped))
        assert not any(secret in value for secret in secrets), task
    for task, instance in deployment.tasks(deployment.first_run).items():  # rendered templates
        rendered = json.dumps(instance.get("rendered_fields") or {})
        assert not any(secret in rendered for secret in secrets), task
