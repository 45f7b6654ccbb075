"""Build an ``Engine`` from the environment (the CLI) — the Airflow hooks build it from connections.

Kept apart from ``cycle`` so the cycle never reads the environment itself: tests and Airflow
hand it exactly what it should use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from include.provisioning.cycle import Engine, Progress
from include.provisioning.graph.settings import GraphSettings
from include.provisioning.mapping import MappingTable
from include.provisioning.salesforce.settings import SalesforceSettings
from include.provisioning.settings import (
    DEFAULT_MAPPING_PATH,
    DEFAULT_SUITE_PATH,
    GRAPH_CONN_ID,
    SALESFORCE_CONN_ID,
    SyncOptions,
    connection_from_env,
    state_url_from_env,
)
from include.provisioning.state import StateStore


def build_engine(
    environ: Mapping[str, str] | None = None,
    *,
    mapping_path: Path = DEFAULT_MAPPING_PATH,
    suite_path: Path = DEFAULT_SUITE_PATH,
    state_url: str | None = None,
    progress: Progress | None = None,
) -> Engine:
    env = dict(os.environ if environ is None else environ)
    graph = GraphSettings.from_connection(connection_from_env(GRAPH_CONN_ID, env))
    salesforce = SalesforceSettings.from_connection(connection_from_env(SALESFORCE_CONN_ID, env))
    return Engine(
        graph=graph,
        salesforce=salesforce,
        state=StateStore(state_url or state_url_from_env(env)),
        table=MappingTable.load(mapping_path),
        options=SyncOptions.from_env(env),
        suite_path=suite_path,
        progress=progress or (lambda message: None),
    )
