"""Fixtures for the Provisioning page's JSON API, against a state store filled by real engine
cycles against the sandbox (the end-to-end fixtures ``cycle`` and ``make_engine``), on SQLite and on
PostgreSQL (the state-store tests' ``url``).

The app imports Airflow's security module, so Airflow is pointed at a throwaway AIRFLOW_HOME
(configured by ``scripts/airflow_env.sh``) before anything imports it, as ``tests/airflow`` does.
Airflow's access checks are stood in for here (``api``); ``tests/airflow/test_provisioning_ui.py``
checks them against a real api-server.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from include.provisioning.cycle import Engine
from scripts.page_client import page_client
from tests.airflow.airflow_env import REPO_ROOT, airflow_environment
from tests.e2e.conftest import cycle, make_engine
from tests.provisioning.conftest import pg_database, url

__all__ = ["cycle", "make_engine", "pg_database", "url"]  # fixtures: pytest finds them here

if "airflow" not in sys.modules:  # else a conftest already configured it (tests/airflow, in one session)
    os.environ.update(airflow_environment(Path(tempfile.mkdtemp(prefix="airflow-home-ui-"))))
if str(REPO_ROOT / "plugins") not in sys.path:
    sys.path.append(str(REPO_ROOT / "plugins"))


@pytest.fixture
def engine(make_engine: Callable[..., Engine], url: str) -> Iterator[Engine]:
    """The engine on a fresh state store: every test here runs on SQLite and on PostgreSQL."""
    built = make_engine(state_url=url)
    yield built
    built.state.close()


@pytest.fixture
def api(engine: Engine) -> Iterator[object]:
    """A ``TestClient`` on the page's app reading ``engine``'s state store, every access check
    allowed (none of Airflow's auth manager runs in this process)."""
    with page_client(engine.state.url) as client:
        yield client
