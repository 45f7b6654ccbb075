"""Airflow test fixtures.

Airflow reads its configuration when it is first imported, so this conftest points the test
process at a fresh AIRFLOW_HOME (configured by ``scripts/airflow_env.sh``) before any test
module imports Airflow. ``airflow_db`` migrates the metadata database once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.airflow.airflow_env import REPO_ROOT, airflow_environment

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
