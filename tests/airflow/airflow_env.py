"""The project's Airflow environment (``scripts/airflow_env.sh``) for tests: ``airflow_environment`` of
``scripts/airflow_server.py``, read from the script itself so tests and the documented commands cannot
drift apart."""

from __future__ import annotations

from scripts.airflow_server import REPO_ROOT, airflow_environment

__all__ = ["REPO_ROOT", "airflow_environment"]
