"""An in-process client of the Provisioning page's JSON API, for the benchmark and the tests.

``page_client(url)`` is a ``fastapi.testclient.TestClient`` on ``entra_provisioning.ui.app``
(mounted at ``/provisioning``, as the api-server mounts it) reading the state store at ``url``,
with every Airflow access check of the app overridden to allow: none of Airflow's auth manager
runs in this process. ``tests/airflow/test_provisioning_ui.py`` checks the real checks against
an api-server.

It lives here, beside the other pieces the scripts and the tests share (``airflow_server.py``),
rather than in the plugin package: what it does (turn off the app's authorization) must never be
importable from a deployed plugin, and ``tests/`` is not a package the benchmark commands import.
Airflow must be configured (AIRFLOW_HOME and the project's settings, ``airflow_server.airflow_environment``)
before the first call, because the app imports Airflow's security module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def page_client(url: str) -> Iterator[Any]:
    """A ``TestClient`` on the page's app reading the store at ``url``, every access check
    allowed; the overrides are removed and the store's reader closed on exit."""
    from entra_provisioning.ui import app as ui
    from entra_provisioning.ui.queries import StateReader
    from fastapi.testclient import TestClient

    reader = StateReader(url)
    allowed = {ui.can_view_plugins, ui.can_read_runs, ui.can_trigger_runs}
    ui.app.dependency_overrides.update({check: lambda: None for check in allowed})
    ui.app.dependency_overrides[ui.state_reader] = lambda: reader
    try:
        with TestClient(ui.app, root_path="/provisioning") as client:
            yield client
    finally:
        ui.app.dependency_overrides.clear()
        reader.close()
