"""Airflow provider metadata for the Entra ID → Salesforce provisioning project.

Airflow builds its connection form and finds the hook behind the Test button from the
``connection-types`` a provider package declares through the ``apache_airflow_provider`` entry
point (plugins cannot register connection types). This package declares two:

``msgraph``
    Microsoft Graph with an Entra app registration's client secret. The type name is the one
    apache-airflow-providers-microsoft-azure uses, so connections written for that provider (and
    the sandbox's env file) keep working; that provider itself cannot be installed next to
    msgraph-sdk 1.65 (it pins microsoft-kiota-http < 1.13). Standard fields: login = client id,
    password = client secret, host/port = Graph host when no Graph URL is given. Extras:
    ``tenant_id``, ``authority``, ``base_url``, ``scopes``, ``verify`` (CA bundle path or
    true/false), ``service_principal_id``, ``application_object_id``.

``provisioning_state``
    The sync engine's state store: extra ``sqlite_path`` for SQLite, otherwise PostgreSQL from
    host, port, schema (database), login and password; extra ``sqlalchemy_url`` overrides both.

The hooks live in the repository's ``plugins/entra_provisioning/hooks/`` package; this package
holds metadata only and imports nothing, so listing providers never loads the engine.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "entra-provisioning-provider"
MSGRAPH_HOOK = "entra_provisioning.hooks.graph.MsGraphHook"
STATE_HOOK = "entra_provisioning.hooks.state.ProvisioningStateHook"


def _text(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    """One optional text field of a connection form, in provider.yaml's ``conn-fields`` shape."""
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def _msgraph() -> dict[str, Any]:
    return {
        "connection-type": "msgraph",
        "hook-class-name": MSGRAPH_HOOK,
        "hook-name": "Microsoft Graph (Entra provisioning)",
        "conn-fields": {
            "tenant_id": _text("Tenant ID", "Directory (tenant) ID of the app registration."),
            "authority": _text(
                "Authority",
                "Token endpoint host, https://login.microsoftonline.com unless a national cloud or a sandbox.",
            ),
            "base_url": _text(
                "Graph URL", "Graph root including the version, https://graph.microsoft.com/v1.0 by default."
            ),
            "verify": _text(
                "CA bundle",
                "Path of a PEM bundle to trust instead of the system's (the sandbox's ca.pem), or true/false.",
            ),
            "service_principal_id": _text(
                "Service principal ID",
                "Object ID of the Salesforce enterprise app's service principal; the Airflow Variable "
                "entra_service_principal_id overrides it when set.",
            ),
            "scopes": _text("Scopes", "Space- or comma-separated; https://graph.microsoft.com/.default by default."),
            "application_object_id": _text(
                "Application object ID", "Object ID of the app registration; only needed to import roles."
            ),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {
                "login": "Client ID",
                "password": "Client secret",
                "host": "Graph host (only when Graph URL is empty)",
                "port": "Graph port",
            },
            "placeholders": {
                "login": "application (client) ID",
                "tenant_id": "00000000-0000-0000-0000-000000000000",
                "authority": "https://login.microsoftonline.com",
                "base_url": "https://graph.microsoft.com/v1.0",
                "verify": "/path/to/ca.pem",
                "port": "443",
            },
        },
    }


def _provisioning_state() -> dict[str, Any]:
    return {
        "connection-type": "provisioning_state",
        "hook-class-name": STATE_HOOK,
        "hook-name": "Provisioning state store",
        "conn-fields": {
            "sqlite_path": _text(
                "SQLite file", "Path of the SQLite database; leave empty to use PostgreSQL (host, database...)."
            ),
        },
        "ui-field-behaviour": {
            "hidden-fields": [],
            "relabeling": {
                "host": "PostgreSQL host",
                "schema": "Database",
                "login": "User",
            },
            "placeholders": {
                "sqlite_path": "/srv/airflow/state/provisioning.db",
                "host": "postgres (empty for SQLite)",
                "port": "5432",
                "schema": "provisioning",
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """The provider-info mapping Airflow validates against ``airflow/provider_info.schema.json``.

    ``package-name`` must equal the distribution name (Airflow checks it); ``connection-types``
    carry the 3.2+ declarative form (``conn-fields``, ``ui-field-behaviour``), so Airflow builds
    the form without importing the hooks.
    """
    return {
        "package-name": PACKAGE_NAME,
        "name": "Entra ID provisioning",
        "description": "Connection types of the Entra ID → Salesforce provisioning project.",
        "versions": [__version__],
        "connection-types": [_msgraph(), _provisioning_state()],
    }
