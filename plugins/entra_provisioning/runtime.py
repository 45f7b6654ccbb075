"""The engine inside Airflow: connections through the hooks, knobs from Variables, the run's path.

Tasks build a fresh ``Engine`` each (a task may run in any worker process), from:

- ``msgraph_default`` (``MsGraphHook``), ``salesforce_default`` (the Salesforce provider's
  connection type) and ``provisioning_state`` (``ProvisioningStateHook``; a SQLite file under
  ``AIRFLOW_HOME`` when the connection is not defined);
- the Variables ``provisioning_max_quarantine_share``, ``provisioning_deletion_threshold_count``,
  ``provisioning_deletion_threshold_share``, ``provisioning_import_roles``,
  ``provisioning_lease_ttl_minutes`` and ``entra_service_principal_id``.

Stage outputs go under ``<provisioning_artifacts_url>/<dag_id>/<run_id>/<cycle_id>/`` as an
``ObjectStoragePath``: ``file://$AIRFLOW_HOME/provisioning/runs`` by default, any fsspec URL
(``s3://bucket/prefix`` with ``provisioning_artifacts_conn_id`` naming the Airflow connection) when
workers do not share a disk.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from typing import Any

from airflow.sdk import ObjectStoragePath, Variable

from entra_provisioning.hooks.graph import MsGraphHook
from entra_provisioning.hooks.salesforce import salesforce_settings
from entra_provisioning.hooks.state import ProvisioningStateHook
from include.provisioning.engine import Engine
from include.provisioning.mapping import MappingTable
from include.provisioning.settings import DEFAULT_MAPPING_PATH, DEFAULT_SUITE_PATH, MINUTES, SyncOptions, parse_number
from include.provisioning.state.lease import DEFAULT_LEASE_TTL
from include.provisioning.workspace import Workspace

log = logging.getLogger(__name__)

ARTIFACTS_URL_VARIABLE = "provisioning_artifacts_url"
ARTIFACTS_CONN_VARIABLE = "provisioning_artifacts_conn_id"
LEASE_TTL_VARIABLE = "provisioning_lease_ttl_minutes"
NOTIFICATION_VARIABLE = "provisioning_notification_email"


def _variable(name: str) -> str | None:
    value = Variable.get(name, default=None)
    text = str(value).strip() if value is not None else ""
    return text or None


def run_key(dag_id: str, run_id: str) -> str:
    """The cycle's owner and the lease holder for one DAG run (every task of the run shares it)."""
    return f"airflow:{dag_id}:{run_id}"


def lease_ttl() -> dt.timedelta:
    raw = _variable(LEASE_TTL_VARIABLE)
    if raw is None:
        return DEFAULT_LEASE_TTL
    return dt.timedelta(minutes=parse_number(raw, f"Variable {LEASE_TTL_VARIABLE}", MINUTES))


def build_engine(*, lease_holder: str | None = None) -> Engine:
    """A fresh engine from the Airflow connections and Variables; progress goes to the task log.

    Raises ``SettingsError`` (a ``ConfigurationError``) naming the connection or Variable to fix."""
    return Engine(
        graph=MsGraphHook().get_settings(),
        salesforce=salesforce_settings(),
        state=ProvisioningStateHook().get_store(),
        table=MappingTable.load(DEFAULT_MAPPING_PATH),
        options=SyncOptions.from_lookup(_variable),
        suite_path=DEFAULT_SUITE_PATH,
        progress=log.info,
        lease_holder=lease_holder,
        lease_ttl=lease_ttl(),
    )


def artifacts_root() -> ObjectStoragePath:
    """Where runs keep their stage outputs (see the module docstring)."""
    url = _variable(ARTIFACTS_URL_VARIABLE)
    if url is None:
        home = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))
        url = f"file://{os.path.abspath(home)}/provisioning/runs"
    conn_id = _variable(ARTIFACTS_CONN_VARIABLE)
    return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)


def _safe(part: str) -> str:
    """A run id as one path segment (run ids hold ':' and '+', which object stores dislike)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", part)


def run_path(dag_id: str, run_id: str) -> ObjectStoragePath:
    return artifacts_root() / _safe(dag_id) / _safe(run_id)


def workspace(url: str) -> Workspace:
    """The cycle's workspace from the URL ``begin_cycle`` handed over in XCom."""
    conn_id = _variable(ARTIFACTS_CONN_VARIABLE)
    return Workspace(ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url))


def notification_address() -> str | None:
    return _variable(NOTIFICATION_VARIABLE)


def describe(ws: Workspace) -> dict[str, Any]:
    return {"workspace": str(ws.root)}
