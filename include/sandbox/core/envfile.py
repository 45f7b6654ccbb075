"""The settings that point the product at a running sandbox.

``up --env-file PATH`` writes these as shell-style ``KEY='VALUE'`` lines. They are the very
variables Airflow reads (``AIRFLOW_CONN_*`` as JSON connections, ``AIRFLOW_VAR_*``), so the
engine's CLI and Airflow use one file unchanged: ``set -a; . PATH; set +a``.

Salesforce login through simple-salesforce: its login URLs are always
``https://{domain}.salesforce.com/...``. The Salesforce emulator therefore also serves its
login endpoints under a path that ends in ``.salesforce.com`` (``/login.salesforce.com/...``),
and the connection's ``domain`` is ``127.0.0.1:PORT/login``; see docs/decisions.md.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

GRAPH_CONN_ID = "msgraph_default"
SALESFORCE_CONN_ID = "salesforce_default"


def salesforce_login_domain(salesforce_url: str) -> str:
    """The simple-salesforce ``domain`` that makes its login URLs land on the emulator."""
    return f"{urlsplit(salesforce_url).netloc}/login"


def sandbox_settings(
    tenant: dict[str, Any], org: dict[str, Any], graph_url: str, salesforce_url: str, ca_bundle: Path
) -> dict[str, str]:
    graph = urlsplit(graph_url)
    client = (tenant.get("clients") or [{}])[0]
    graph_conn = {
        "conn_type": "msgraph",
        "host": graph.hostname,
        "port": graph.port,
        "schema": "https",
        "login": client.get("client_id"),
        "password": client.get("client_secret"),
        "extra": {
            "tenant_id": tenant.get("tenant_id"),
            "authority": graph_url,
            "base_url": f"{graph_url}/v1.0",
            "scopes": [f"{graph_url}/.default"],
            "verify": str(ca_bundle),
            "disable_instance_discovery": True,
            "service_principal_id": tenant.get("service_principal", {}).get("id"),
            "application_object_id": tenant.get("service_principal", {}).get("application_object_id"),
        },
    }
    # No instance_url: simple-salesforce needs none to log in (the login answer names the
    # instance), and the Salesforce provider's hook would hand a full URL to the JWT flow, which
    # takes it as a host prefix (https://{instance_url}.salesforce.com).
    sf_extra: dict[str, Any] = {
        "domain": salesforce_login_domain(salesforce_url),
        "version": org.get("api_version", "62.0"),
        "verify": str(ca_bundle),
    }
    login = (org.get("logins") or [{}])[0]
    if org.get("connected_apps"):
        app = org["connected_apps"][0]
        sf_extra["consumer_key"] = app.get("consumer_key")
        sf_extra["consumer_secret"] = app.get("consumer_secret")
    if login.get("security_token") is not None:
        sf_extra["security_token"] = login["security_token"]
    # The port is stored although neither the provider's hook nor the engine reads it: Airflow
    # 3.3's connection list sends Number(port) with its Test button, 0 for a stored null, and the
    # api-server refuses a port that differs from the stored one (docs/decisions.md).
    salesforce_conn = {
        "conn_type": "salesforce",
        "port": urlsplit(salesforce_url).port,
        "login": login.get("username"),
        "password": login.get("password"),
        "extra": sf_extra,
    }
    return {
        "SANDBOX_GRAPH_URL": graph_url,
        "SANDBOX_SALESFORCE_URL": salesforce_url,
        "SANDBOX_CA_BUNDLE": str(ca_bundle),
        f"AIRFLOW_CONN_{GRAPH_CONN_ID.upper()}": json.dumps(graph_conn),
        f"AIRFLOW_CONN_{SALESFORCE_CONN_ID.upper()}": json.dumps(salesforce_conn),
        "AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID": str(tenant.get("service_principal", {}).get("id", "")),
    }


def write_trust_bundle(ca_bundle: Path, out: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Write a PEM bundle trusting what ``requests`` trusts in ``environ`` plus the sandbox CA.

    For processes whose HTTPS clients take no CA bundle per connection, above all the Salesforce
    provider's ``SalesforceHook`` behind Airflow's Test button (a plain ``requests.Session``, so
    ``REQUESTS_CA_BUNDLE`` decides): whoever starts Airflow next to the sandbox points
    ``REQUESTS_CA_BUNDLE`` at this file. The base is ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``
    from ``environ`` (default ``os.environ``), else certifi's bundle, so real services stay
    trusted. ``out`` defaults to ``trust-bundle.pem`` next to ``ca_bundle``; returns its path.
    """
    env = os.environ if environ is None else environ
    ca_pem = ca_bundle.read_text(encoding="ascii")
    base_path = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if not base_path:
        import certifi

        base_path = certifi.where()
    base = Path(base_path).read_text(encoding="utf-8", errors="replace")
    out = out or ca_bundle.with_name("trust-bundle.pem")
    text = base if ca_pem.strip() in base else base.rstrip("\n") + "\n" + ca_pem
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    """Write atomically, so a reader polling for the file never sees half of it."""
    lines = ["# Written by `python -m include.sandbox up`; load with: set -a; . THIS_FILE; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in settings.items()]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a file written by ``write_env_file`` (shell quoting, comments skipped)."""
    settings: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, raw = line.partition("=")
        parts = shlex.split(raw)
        settings[key.strip()] = parts[0] if parts else ""
    return settings
