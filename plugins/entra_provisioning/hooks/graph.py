"""The ``msgraph`` connection: Airflow connection → the engine's ``GraphSettings``, and the Test button.

The connection type is declared by the local provider package (``providers/entra-provisioning``)
under the name apache-airflow-providers-microsoft-azure uses, so its connections work here too:
login = client id, password = client secret, extras ``tenant_id``, ``authority``, ``base_url``
(or host/port/schema + ``api_version``), ``scopes``, ``verify`` (CA bundle path or true/false),
``service_principal_id``, ``application_object_id``. The engine's ``GraphSettings.from_connection``
reads them; this hook adds only Airflow's part: finding the connection and the Variable.

Service principal: ``get_settings`` takes, in order, its argument, the Airflow Variable
``entra_service_principal_id`` (when set and not blank), then the connection's extra
``service_principal_id``. The Variable lets one app registration (one connection) serve
several enterprise apps, one per deployment.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from airflow.sdk import BaseHook, Variable

from entra_provisioning.hooks.connection import read_connection
from include.provisioning.graph.settings import GraphSettings
from include.provisioning.settings import GRAPH_CONN_ID, ConnectionSettings, SettingsError

SERVICE_PRINCIPAL_VARIABLE = "entra_service_principal_id"


def service_principal_override() -> str | None:
    """The Variable ``entra_service_principal_id`` (environment ``AIRFLOW_VAR_...``, secrets
    backends or the metadata database), or None when it is unset or blank."""
    value = Variable.get(SERVICE_PRINCIPAL_VARIABLE, default=None)
    text = str(value).strip() if value is not None else ""
    return text or None


class MsGraphHook(BaseHook):
    """Microsoft Graph through the engine's client, configured by an ``msgraph`` connection.

    :param msgraph_conn_id: the connection (default ``msgraph_default``).
    """

    conn_name_attr = "msgraph_conn_id"
    default_conn_name = GRAPH_CONN_ID
    conn_type = "msgraph"
    hook_name = "Microsoft Graph (Entra provisioning)"

    def __init__(self, msgraph_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.msgraph_conn_id = msgraph_conn_id

    def get_connection_settings(self) -> ConnectionSettings:
        """The connection as the engine reads it (raises ``AirflowNotFoundException`` if undefined)."""
        return read_connection(self.msgraph_conn_id)

    def get_settings(self, service_principal_id: str | None = None) -> GraphSettings:
        """``GraphSettings`` for the engine's ``GraphClient``; the service principal id comes from
        the argument, else the Variable, else the connection (see the module docstring).

        Raises ``SettingsError`` naming the connection and the missing or malformed field.
        """
        settings = GraphSettings.from_connection(self.get_connection_settings())
        chosen = service_principal_id or service_principal_override()
        return replace(settings, service_principal_id=chosen) if chosen else settings

    def get_conn(self) -> GraphSettings:
        """Airflow's generic accessor; the engine opens its own client per ``asyncio.run``."""
        return self.get_settings()

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and read the service principal through the engine's Graph client.

        Returns ``(True, what was read)`` or ``(False, what to fix)``; never raises, because the
        api-server shows the message to the person who pressed Test.
        """
        # The client stack (httpx) only for the Test button: every task process builds its engine
        # through this hook (``get_settings``).
        from include.provisioning.graph.client import GraphError

        try:
            settings = self.get_settings()
            if not settings.service_principal_id:
                return False, (
                    f"connection {self.msgraph_conn_id!r} has no service principal: set extra "
                    f"service_principal_id or the Variable {SERVICE_PRINCIPAL_VARIABLE} to the object id of the "
                    "Salesforce enterprise app's service principal"
                )
            found = asyncio.run(read_service_principal(settings))
        except (SettingsError, GraphError) as exc:
            return False, self._naming_connection(str(exc))
        except Exception as exc:  # anything else still has to reach the person as a message
            return False, self._naming_connection(f"{type(exc).__name__}: {exc}")
        name = found.get("displayName") or found.get("appDisplayName") or "(no display name)"
        return True, (
            f"Graph accepted {settings.who()} (token from {settings.authority}); service principal "
            f"{name!r} ({settings.service_principal_id}) read from {settings.base_url}"
        )

    def _naming_connection(self, message: str) -> str:
        # The engine names the connection in configuration and login errors, not in every
        # request error (a 404 for a wrong service principal id); the person needs to know which.
        tag = f"connection {self.msgraph_conn_id!r}"
        return message if tag in message else f"{tag}: {message}"


async def read_service_principal(settings: GraphSettings) -> dict[str, Any]:
    """``GET /servicePrincipals/{id}`` with a fresh token: the call every cycle starts with.

    Raises the engine's ``GraphAuthError`` (credentials, tenant, permissions; the message names
    the connection) or ``GraphError`` (not found, unreachable, TLS). No retries of our own: the Test
    button answers a person waiting in the browser, who can press it again.
    """
    from include.provisioning.graph.client import INTERACTIVE_RETRY, GraphClient

    async with GraphClient(settings, retry=INTERACTIVE_RETRY, concurrency=1) as client:
        return await client.get_json(
            f"/servicePrincipals/{settings.service_principal_id}?$select=id,appId,displayName,appDisplayName",
            kind="service_principal",
        )
