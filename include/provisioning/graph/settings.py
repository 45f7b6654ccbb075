"""What it takes to reach Microsoft Graph (``GraphSettings``), read from an Airflow ``msgraph`` connection.

Apart from ``client`` so that building an ``Engine`` (every task process) and the Airflow hooks
read the settings without importing httpx and the client stack: only the stages that talk to
Graph (extract, and transform when it imports app roles) import ``client``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from include.provisioning.settings import (
    GRAPH_CONN_ID,
    ConnectionSettings,
    SettingsError,
    connection_from_env,
    parse_bool,
    parse_verify,
)

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"


def _as_list(value: Any) -> list[str]:
    """Airflow stores list extras either as JSON lists or as strings ("a b", "a,b", '["a"]')."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        return _as_list(orjson.loads(text))
    return [part for part in re.split(r"[\s,]+", text) if part]


def _graph_verify(value: Any) -> str | bool:
    """``verify`` is a CA bundle path or a boolean (Airflow's msgraph connection allows both);
    unset means verify with the system's trust store."""
    verify = parse_verify(value, "extra.verify")
    return True if verify is None else verify


@dataclass(frozen=True)
class GraphSettings:
    """What a ``GraphClient`` needs; the secret is kept out of ``repr`` and of every message."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority: str = DEFAULT_AUTHORITY
    base_url: str = DEFAULT_BASE_URL
    scopes: tuple[str, ...] = (DEFAULT_SCOPE,)
    verify: str | bool = True
    service_principal_id: str | None = None
    application_object_id: str | None = None
    """Object id of the app registration, for ``PATCH /applications/{id}`` (importing roles)."""
    disable_instance_discovery: bool = False
    """Kept for the sync (MSAL) credential Airflow's hook uses; the async credential never asks."""
    allowed_hosts: tuple[str, ...] = ()
    conn_id: str = GRAPH_CONN_ID

    @classmethod
    def from_connection(cls, conn: ConnectionSettings) -> GraphSettings:
        """Read an Airflow ``msgraph`` connection: login = client id, password = secret, extras
        ``tenant_id``, ``authority``, ``base_url``, ``scopes``, ``verify``,
        ``service_principal_id``, ``application_object_id``, ``disable_instance_discovery``."""
        conn.require("login", "password", "extra.tenant_id")
        extra = conn.extra
        base_url = extra.get("base_url")
        if not base_url and conn.host:
            scheme = conn.schema or "https"
            port = f":{conn.port}" if conn.port else ""
            base_url = f"{scheme}://{conn.host}{port}/{extra.get('api_version') or 'v1.0'}"
        base_url = str(base_url or DEFAULT_BASE_URL).rstrip("/")
        if urlsplit(base_url).scheme not in ("https", "http") or not urlsplit(base_url).hostname:
            raise SettingsError(f"connection {conn.conn_id!r}: extra.base_url {base_url!r} is not an http(s) URL")
        authority = str(extra.get("authority") or DEFAULT_AUTHORITY).rstrip("/")
        if "://" not in authority:
            authority = f"https://{authority}"
        scopes = _as_list(extra.get("scopes")) or [DEFAULT_SCOPE]
        return cls(
            tenant_id=str(extra["tenant_id"]),
            client_id=str(conn.login),
            client_secret=str(conn.password),
            authority=authority,
            base_url=base_url,
            scopes=tuple(scopes),
            verify=_graph_verify(extra.get("verify")),
            service_principal_id=str(extra["service_principal_id"]) if extra.get("service_principal_id") else None,
            application_object_id=(str(extra["application_object_id"]) if extra.get("application_object_id") else None),
            disable_instance_discovery=parse_bool(
                extra.get("disable_instance_discovery", False), "extra.disable_instance_discovery"
            ),
            allowed_hosts=tuple(_as_list(extra.get("allowed_hosts"))),
            conn_id=conn.conn_id,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, conn_id: str = GRAPH_CONN_ID) -> GraphSettings:
        return cls.from_connection(connection_from_env(conn_id, environ))

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def who(self) -> str:
        """How messages name the identity: tenant and client id, never the secret."""
        return f"tenant {self.tenant_id}, client id {self.client_id}"
