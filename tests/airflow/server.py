"""The Airflow server for tests: ``scripts/airflow_server.py`` (the benchmark commands use it too)."""

from __future__ import annotations

from scripts.airflow_server import (
    API_SERVER_COMPONENTS,
    STANDALONE_COMPONENTS,
    AirflowServer,
    free_port,
    group_members,
    sandbox_airflow_env,
    stop_group,
)

__all__ = [
    "API_SERVER_COMPONENTS",
    "STANDALONE_COMPONENTS",
    "AirflowServer",
    "free_port",
    "group_members",
    "sandbox_airflow_env",
    "stop_group",
]
