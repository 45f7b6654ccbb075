"""DAG runs through Airflow's REST API, for tests that drive a running server: trigger, wait, read
task instances and XCom. One place for every test module that runs the provisioning DAG."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.airflow.server import AirflowServer

DAG_ID = "entra_salesforce_provisioning"
RUN_TIMEOUT = 420.0


class DagRunsApi:
    """Mixin: needs ``self.server`` (an ``AirflowServer``); ``diagnostics()`` is quoted on a timeout."""

    server: AirflowServer
    dag_id: str = DAG_ID

    def diagnostics(self) -> str:
        return self.server.tail()

    def trigger(self, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        answer = self.server.api("POST", f"/api/v2/dags/{self.dag_id}/dagRuns", json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["dag_run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        answer = self.server.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}")
        answer.raise_for_status()
        return dict(answer.json())

    def wait(self, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        """The run's final state ("success" or "failed"); AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(run_id)["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(1)
        raise AssertionError(f"run {run_id} not finished after {timeout}s: {self.tasks(run_id)}\n{self.diagnostics()}")

    def tasks(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Task instances by task id (of a mapped task, one of its instances)."""
        return {ti["task_id"]: ti for ti in self.task_instances(run_id)}

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones (``map_index`` ≥ 0) included."""
        answer = self.server.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances")
        answer.raise_for_status()
        return list(answer.json()["task_instances"])

    def states(self, run_id: str) -> dict[str, str | None]:
        return {task: ti["state"] for task, ti in self.tasks(run_id).items()}

    def xcom(self, run_id: str, task_id: str, map_index: int | None = None) -> Any:
        """The task's return value (of one mapped instance with ``map_index``)."""
        path = f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        params: dict[str, Any] = {"deserialize": True}
        if map_index is not None:
            params["map_index"] = map_index
        answer = self.server.api("GET", path, params=params)
        answer.raise_for_status()
        value = answer.json()["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


class ServerRuns(DagRunsApi):
    """The provisioning DAG's runs on ``server``."""

    def __init__(self, server: AirflowServer) -> None:
        self.server = server


SQLITE_BUSY = "database is locked"
"""How Airflow refuses a backfill on its SQLite metadata database while another process writes
("Backfill creation is not supported on SQLite under concurrent access"): worth another try."""


def create_backfill(server: AirflowServer, body: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    """``POST /api/v2/backfills``, tried again while Airflow's SQLite metadata database is busy
    (the scheduler and DAG processor write to it all the time); returns the backfill."""
    deadline = time.monotonic() + timeout
    while True:
        answer = server.api("POST", "/api/v2/backfills", json=body)
        if answer.status_code != 503 or SQLITE_BUSY not in answer.text.lower() or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(2)


def unpause(server: AirflowServer, dag_id: str = DAG_ID, timeout: float = 180.0) -> None:
    """Unpause ``dag_id`` once the dag-processor has parsed it (404 until then); AssertionError
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = server.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        if answer.status_code == 200:
            return
        assert time.monotonic() < deadline, f"{dag_id} not parsed: {answer.status_code} {answer.text}\n{server.tail()}"
        time.sleep(1)


def user_password(server: AirflowServer, username: str) -> str:
    """The password SimpleAuthManager generated for ``username`` (one of ``[core]
    simple_auth_manager_users``), from ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``."""
    passwords = json.loads((server.home / "simple_auth_manager_passwords.json.generated").read_text())
    return str(passwords[username])


def password_token(server: AirflowServer, username: str) -> str:
    """A JWT for ``username`` from Airflow's ``POST /auth/token`` (its generated password)."""
    body = {"username": username, "password": user_password(server, username)}
    answer = httpx.post(f"{server.url}/auth/token", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])
