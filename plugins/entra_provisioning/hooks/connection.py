"""The one translation from an Airflow connection to the engine's ``ConnectionSettings``.

Airflow parses ``AIRFLOW_CONN_*`` variables, the metadata database and secrets backends into
``Connection`` objects; the engine reads ``ConnectionSettings`` (``include/provisioning/settings.py``)
and owns the meaning of every field and extra. This module only copies fields across, so a
connection means the same inside Airflow as in the engine's CLI.
"""

from __future__ import annotations

from typing import Any, Protocol

from airflow.sdk import BaseHook

from include.provisioning.settings import ConnectionSettings


class AirflowConnection(Protocol):
    """What both Airflow connection classes offer (``airflow.sdk.Connection`` in hooks and tasks,
    ``airflow.models.Connection`` in the api-server and the CLI)."""

    conn_id: str
    conn_type: str | None
    host: str | None
    port: int | None
    schema: str | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _blank_to_none(value: str | None) -> str | None:
    # The connection form stores empty inputs as "", the engine treats "" and None alike only
    # in some places; None everywhere keeps its "missing field" messages right.
    return value if value not in (None, "") else None


def connection_settings(conn: AirflowConnection) -> ConnectionSettings:
    """``conn``'s fields as the engine's ``ConnectionSettings`` (extras from ``extra_dejson``,
    blank strings as None, the port as an int). Raises nothing: the engine's ``from_connection``
    parsers judge the values and name what is missing."""
    port = conn.port if conn.port not in (None, "", 0) else None
    return ConnectionSettings(
        conn_id=conn.conn_id,
        conn_type=_blank_to_none(conn.conn_type),
        host=_blank_to_none(conn.host),
        port=int(port) if port is not None else None,
        schema=_blank_to_none(conn.schema),
        login=_blank_to_none(conn.login),
        password=_blank_to_none(conn.password),
        extra=dict(conn.extra_dejson or {}),
    )


def read_connection(conn_id: str) -> ConnectionSettings:
    """Look ``conn_id`` up the way every hook does (environment variables, secrets backends, the
    metadata database, or the task's supervisor) and translate it. Raises Airflow's
    ``AirflowNotFoundException`` when no source defines it."""
    return connection_settings(BaseHook.get_connection(conn_id))
