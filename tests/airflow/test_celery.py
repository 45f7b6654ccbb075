"""The provisioning DAG under CeleryExecutor: Redis as the broker, PostgreSQL as Airflow's metadata
database and as the engine's state store, and a real ``airflow celery worker`` running the tasks.

``airflow standalone`` cannot be used here: it forces LocalExecutor whenever the configured
executor is not a local one (Airflow 3.3.2, ``standalone_command.py``), so the components run as
separate processes: ``airflow db migrate``, then ``api-server`` (``AirflowServer``), ``scheduler``,
``dag-processor`` and ``celery worker``, all in one environment.

Two throwaway PostgreSQL databases (metadata, state) are created and dropped; Redis database
``REDIS_DB`` is flushed at the end. Tasks go to a queue named for this test, so a worker of another
deployment sharing the broker never takes them.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis

from include.provisioning.model import CycleStatus, Mode
from include.provisioning.state import StateStore
from tests.airflow.airflow_env import REPO_ROOT
from tests.airflow.dag_runs_api import DAG_ID, DagRunsApi
from tests.airflow.server import AirflowServer, group_members, sandbox_airflow_env, stop_group
from tests.sandbox_process import SandboxProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1200)]

SHARDS = 4
SHARDED = ("validate", "transform", "load")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 7
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
STAGES = ("begin_cycle", "extract", "validate", "transform", "plan", "load", "commit", "end_cycle")


def _admin_sql(statement: str) -> None:
    conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """(metadata, state): two fresh PostgreSQL databases, dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = (f"airflow_celery_meta_{suffix}", f"airflow_celery_state_{suffix}")
    try:
        for name in names:
            _admin_sql(f'CREATE DATABASE "{name}"')
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL on {PG['host']}:{PG['port']} (user postgres) is needed and not reachable: {exc}")
    try:
        yield names
    finally:
        for name in names:
            _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis on 127.0.0.1:6379 is needed as the Celery broker and not reachable: {exc}")
    try:
        yield BROKER_URL
    finally:
        client.flushdb()
        client.close()


class Component:
    """One Airflow command in its own process group, logging to ``<home>/<name>.log``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], home: Path) -> None:
        self.name = name
        self.log_path = home / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), *args],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, grace: float = 40.0) -> int | None:
        """SIGTERM (a Celery worker's warm shutdown), wait; then the group gets SIGTERM, SIGKILL."""
        return stop_group(self.proc, signal.SIGTERM, grace, escalate=(signal.SIGKILL,))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.log().splitlines()[-lines:])


class CeleryDeployment(DagRunsApi):
    def __init__(self, server: AirflowServer, components: dict[str, Component], state_url: str) -> None:
        self.server = server
        self.components = components
        self.state_url = state_url

    def diagnostics(self) -> str:
        return "\n".join([f"--- api-server ---\n{self.server.tail(20)}", *(c.tail() for c in self.components.values())])

    def wait_healthy(self, names: tuple[str, ...], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for component in self.components.values():
                assert component.proc.poll() is None, f"{component.name} exited:\n{self.diagnostics()}"
            with_health = self.server.api("GET", "/api/v2/monitor/health").json()
            states = {name: (with_health.get(name) or {}).get("status") for name in names}
            if all(state == "healthy" for state in states.values()):
                return
            time.sleep(0.5)
        raise AssertionError(f"not healthy after {timeout}s: {states}\n{self.diagnostics()}")

    def wait_for_dag(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.api("GET", f"/api/v2/dags/{DAG_ID}").status_code == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f"{DAG_ID} not parsed after {timeout}s\n{self.diagnostics()}")


@pytest.fixture(scope="module")
def deployment(
    sandbox_session: SandboxProcess,
    databases: tuple[str, str],
    broker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryDeployment]:
    meta_db, state_db = databases
    home = tmp_path_factory.mktemp("airflow-celery")
    meta_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_db}"
    state_conn = {"conn_type": "provisioning_state", "host": "127.0.0.1", "port": 5432, "login": "postgres"}
    queue = f"provisioning_test_{uuid.uuid4().hex[:8]}"
    env = {
        **sandbox_airflow_env(sandbox_session.settings, home),
        "AIRFLOW_CONN_PROVISIONING_STATE": json.dumps({**state_conn, "schema": state_db}),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        # The driver is named: for a bare "postgresql" SQLAlchemy 2.1 picks psycopg (3), not installed.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    server = AirflowServer(home, env, command=("api-server",))
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        cwd=REPO_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
    sandbox_session.reset()
    components: dict[str, Component] = {}
    try:
        server.start()
        components["scheduler"] = Component("scheduler", ["scheduler"], server.env, home)
        components["dag-processor"] = Component("dag-processor", ["dag-processor"], server.env, home)
        components["worker"] = Component(
            "worker", ["celery", "worker", "--concurrency", "2", "--queues", queue], server.env, home
        )
        deployment = CeleryDeployment(server, components, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{state_db}")
        deployment.wait_healthy(("metadatabase", "scheduler", "dag_processor"))
        deployment.wait_for_dag()
        yield deployment
    finally:
        for name in ("worker", "scheduler", "dag-processor"):  # the worker first: it finishes its tasks
            if name in components:
                components[name].stop()
        server.stop()
        leftovers = {c.name: group_members(c.proc.pid) for c in components.values() if group_members(c.proc.pid)}
        assert not leftovers, f"processes left running: {leftovers}"


def test_a_full_cycle_runs_on_the_celery_worker_in_four_shards(deployment: CeleryDeployment) -> None:
    answer = deployment.server.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert answer.status_code == 200, answer.text
    run_id = deployment.trigger({"shards": SHARDS})
    state = deployment.wait(run_id)
    tasks = deployment.tasks(run_id)
    states = {task: ti["state"] for task, ti in tasks.items()}
    assert state == "success", f"{run_id}: {states}\n{deployment.diagnostics()}"
    assert {t: states.get(t) for t in STAGES} == dict.fromkeys(STAGES, "success")

    # The worker executed every stage: Celery's task logs the workload it runs, and the task
    # instances went to the queue only that worker consumes.
    worker_log = deployment.components["worker"].log()
    executed = set(re.findall(r"Executing workload in Celery: .*?task_id='([a-z_]+)'", worker_log))
    assert set(STAGES) <= executed, f"worker ran {sorted(executed)}\n{deployment.diagnostics()}"
    # The per-user stages were mapped over four shards, each instance run by the worker.
    mapped = [ti for ti in deployment.task_instances(run_id) if ti["task_id"] in SHARDED]
    assert sorted((ti["task_id"], ti["map_index"], ti["state"]) for ti in mapped) == sorted(
        (task, index, "success") for task in SHARDED for index in range(SHARDS)
    )
    assert {ti["rendered_map_index"] for ti in mapped} == {f"shard {i + 1} of {SHARDS}" for i in range(SHARDS)}
    ran = set(re.findall(r"Executing workload in Celery: .*?task_id='([a-z_]+)'.*?map_index=(\d+)", worker_log))
    assert {(task, str(index)) for task in SHARDED for index in range(SHARDS)} <= ran, sorted(ran)
    queue = deployment.server.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    assert {tasks[t]["queue"] for t in STAGES} == {queue}
    scheduler_log = deployment.components["scheduler"].log()
    assert "CeleryExecutor" in scheduler_log and "LocalExecutor" not in scheduler_log

    summary = deployment.xcom(run_id, "commit")
    assert summary["mode"] == "full" and summary["status"] == "succeeded", summary
    assert summary["created"] > 0, summary

    with StateStore(deployment.state_url) as store:
        assert store.dialect == "postgresql"
        cycles = store.cycles()
    committed = [c for c in cycles if CycleStatus(c.status) is CycleStatus.SUCCEEDED]
    assert committed, cycles
    assert Mode(committed[0].mode) is Mode.FULL and committed[0].created == summary["created"]

    # One shard wants the Salesforce state that four shards left: a full cycle writes nothing.
    again = deployment.trigger({"shards": 1, "mode": "full"})
    assert deployment.wait(again) == "success", deployment.states(again)
    check = deployment.xcom(again, "commit")
    assert [check[k] for k in ("created", "updated", "deactivated")] == [0, 0, 0], check
    assert check["unchanged"] == summary["created"] + summary["updated"] + summary["unchanged"], (check, summary)
