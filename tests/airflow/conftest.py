"""Airflow test fixtures.

Airflow reads its configuration when it is first imported, so this conftest points the test
process at a fresh AIRFLOW_HOME (configured by ``scripts/airflow_env.sh``) before any test
module imports Airflow. ``airflow_db`` migrates the metadata database once per session.
``airflow_server`` is a running ``airflow standalone`` wired to the session's sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow.airflow_env import REPO_ROOT, airflow_environment
from tests.airflow.server import AirflowServer, sandbox_airflow_env
from tests.sandbox_process import SandboxProcess

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
AIRFLOW_ENV = airflow_environment(AIRFLOW_HOME)
os.environ.update(AIRFLOW_ENV)
if str(REPO_ROOT / "plugins") not in sys.path:
    sys.path.append(str(REPO_ROOT / "plugins"))
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata database (SQLite) in this session's AIRFLOW_HOME."""
    subprocess.run([AIRFLOW_BIN, "db", "migrate"], check=True, capture_output=True, env={**os.environ, **AIRFLOW_ENV})
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_server(
    sandbox_session: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    """``airflow standalone`` (scheduler, dag-processor, triggerer, api-server) in its own
    AIRFLOW_HOME, with the sandbox's connections and Variable, a trust bundle for the sandbox CA
    and a state store inside that home; DAGs are paused at creation, so a test unpauses or
    triggers what it runs (the scheduler creates no runs from timetables here). Use ``.url``,
    ``.headers`` or ``.api(method, path, ...)``; the server log is at ``.log_path``. Started once
    per session (~15 s), stopped at its end."""
    home = tmp_path_factory.mktemp("airflow-server")
    env = {
        **sandbox_airflow_env(sandbox_session.settings, home),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # No run from the timetable while tests drive runs through the API: a scheduled run created
        # when the clock passes a 20-minute mark would compete for the lease with the run under test.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    server = AirflowServer(home, env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ui_server(sandbox_session: SandboxProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """``airflow standalone`` for the Provisioning page's tests, one per test module: the sandbox's
    connections (reset to its fixtures), users ``admin`` (role admin) and ``viewer`` (role viewer)
    of SimpleAuthManager (``[core] simple_auth_manager_users``; passwords in
    ``simple_auth_manager_passwords.json.generated``), the DAG paused at creation and no runs from
    the timetable (only the test's runs write the state store)."""
    sandbox_session.reset()
    home = tmp_path_factory.mktemp("airflow-provisioning-ui")
    env = {
        **sandbox_airflow_env(sandbox_session.settings, home),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # This checkout's plugins first: Airflow appends the plugins folder to sys.path, after any
        # other copy of ``entra_provisioning`` the interpreter already finds (a shared virtualenv's).
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'plugins'}",
    }
    started = AirflowServer(home, env).start()
    try:
        yield started
    finally:
        started.stop()
