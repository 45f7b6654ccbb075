"""Connections the Airflow way: connection types from the local provider package and the
Salesforce provider, hooks that hand the engine its settings, and Test buttons that call real
code against the sandbox, in-process, through the CLI and through a running api-server.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import airflow
import certifi
import entra_provisioning_provider
import httpx
import jsonschema
import pytest
from airflow.models.connection import Connection
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from entra_provisioning.hooks.connection import connection_settings
from entra_provisioning.hooks.graph import MsGraphHook
from entra_provisioning.hooks.salesforce import salesforce_settings
from entra_provisioning.hooks.state import DEFAULT_STATE_PATH, ProvisioningStateHook

from include.provisioning.graph.client import GraphSettings
from include.provisioning.salesforce.client import SalesforceLoginError, connect
from include.provisioning.salesforce.settings import settings_from_env
from include.provisioning.settings import connection_from_env, state_url_from_env
from include.provisioning.state import StateStore
from include.sandbox.core.envfile import write_trust_bundle
from tests.airflow.airflow_env import REPO_ROOT
from tests.airflow.server import AirflowServer, sandbox_airflow_env
from tests.sandbox_process import SandboxProcess

PROVIDER_SOURCE = REPO_ROOT / "providers" / "entra-provisioning" / "src" / "entra_provisioning_provider" / "__init__.py"
GRAPH_HOOK = "entra_provisioning.hooks.graph.MsGraphHook"
STATE_HOOK = "entra_provisioning.hooks.state.ProvisioningStateHook"
SALESFORCE_HOOK = "airflow.providers.salesforce.hooks.salesforce.SalesforceHook"
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")


def conn_json(sandbox: SandboxProcess, name: str) -> dict[str, Any]:
    return json.loads(sandbox.settings[f"AIRFLOW_CONN_{name.upper()}"])


@pytest.fixture
def sandbox_env(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> SandboxProcess:
    """The sandbox's connections and Variable in this process's environment, where Airflow's
    environment-variables secrets backend reads them, and the CA trust for requests."""
    for key, value in sandbox.settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(write_trust_bundle(Path(sandbox.ca_bundle))))
    return sandbox


# --- the provider package -------------------------------------------------------------------


def test_provider_info_is_valid_and_installed_from_this_repository() -> None:
    info = entra_provisioning_provider.get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    # Airflow refuses a provider whose package-name differs from its distribution's name.
    assert importlib.metadata.version(info["package-name"]) == info["versions"][0]
    entry_points = importlib.metadata.distribution(info["package-name"]).entry_points
    assert [ep.value for ep in entry_points if ep.group == "apache_airflow_provider"] == [
        "entra_provisioning_provider:get_provider_info"
    ]
    # The installed copy is the repository's (scripts/setup.sh reinstalls it when it changes).
    assert Path(entra_provisioning_provider.__file__).read_bytes() == PROVIDER_SOURCE.read_bytes()

    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(types) == {"msgraph", "provisioning_state"}
    assert types["msgraph"]["hook-class-name"] == GRAPH_HOOK
    assert {"tenant_id", "authority", "base_url", "verify", "service_principal_id"} <= set(
        types["msgraph"]["conn-fields"]
    )
    assert types["msgraph"]["ui-field-behaviour"]["relabeling"]["login"] == "Client ID"
    assert types["provisioning_state"]["hook-class-name"] == STATE_HOOK
    assert "sqlite_path" in types["provisioning_state"]["conn-fields"]


def test_airflow_finds_each_type_with_its_hook_and_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    ui = {meta.connection_type: meta for meta in manager.iter_connection_type_hook_ui_metadata()}
    assert ui["msgraph"].hook_class_name == GRAPH_HOOK
    assert ui["provisioning_state"].hook_class_name == STATE_HOOK
    assert ui["salesforce"].hook_class_name == SALESFORCE_HOOK
    widgets = manager.connection_form_widgets
    assert {"extra__msgraph__tenant_id", "extra__msgraph__verify", "extra__provisioning_state__sqlite_path"} <= set(
        widgets
    )
    # The Test button's path: Connection.get_hook() imports the class by connection type.
    for conn_type, hook_class in (("msgraph", MsGraphHook), ("provisioning_state", ProvisioningStateHook)):
        hook = Connection(conn_id=f"{conn_type}_x", conn_type=conn_type).get_hook()
        assert type(hook).__name__ == hook_class.__name__
        assert type(hook).__module__ == hook_class.__module__
    assert isinstance(Connection(conn_id="sf_x", conn_type="salesforce").get_hook(), SalesforceHook)


# --- Airflow connection -> engine settings (the engine parses) ------------------------------


CA_BUNDLE = certifi.where()
GRAPH_JSON = {
    "conn_type": "msgraph",
    "login": "client-1",
    "password": "s3cret/+=",
    "extra": {
        "tenant_id": "tenant-1",
        "authority": "https://login.example",
        "base_url": "https://graph.example/v1.0",
        "scopes": ["https://graph.example/.default"],
        "verify": CA_BUNDLE,  # a CA bundle that exists (the engine checks)
        "service_principal_id": "sp-from-connection",
        "disable_instance_discovery": True,
    },
}
GRAPH_URI = (
    "msgraph://client-1:s3cret%2F%2B%3D@graph.example:8443/https?tenant_id=tenant-1"
    "&authority=https%3A%2F%2Flogin.example&verify=false&service_principal_id=sp-from-connection"
)


@pytest.mark.parametrize("raw", [json.dumps(GRAPH_JSON), GRAPH_URI], ids=["json", "uri"])
def test_graph_hook_reads_the_connection_as_the_engine_does(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_DEFAULT", raw)
    monkeypatch.delenv("AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID", raising=False)
    settings = MsGraphHook().get_settings()
    assert settings == GraphSettings.from_connection(connection_from_env("msgraph_default", os.environ))
    assert (settings.client_id, settings.client_secret, settings.tenant_id) == ("client-1", "s3cret/+=", "tenant-1")
    assert settings.service_principal_id == "sp-from-connection"


def test_service_principal_argument_then_variable_then_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_DEFAULT", json.dumps(GRAPH_JSON))
    monkeypatch.setenv("AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID", "sp-from-variable")
    hook = MsGraphHook()
    assert hook.get_settings().service_principal_id == "sp-from-variable"
    assert hook.get_settings("sp-argument").service_principal_id == "sp-argument"
    monkeypatch.setenv("AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID", "  ")  # blank: not set
    assert hook.get_settings().service_principal_id == "sp-from-connection"


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"conn_type": "salesforce", "login": "api@acme.example", "password": "pw", "port": 443,
                    "extra": {"security_token": "TOKEN", "domain": "acme.my", "version": "62.0", "verify": CA_BUNDLE}}),
        "salesforce://user%40x.com:p%40ss@host:1234/?security_token=T&version=62.0",
    ],
    ids=["json", "uri"],
)  # fmt: skip
def test_salesforce_settings_read_the_connection_as_the_engine_does(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", raw)
    assert salesforce_settings() == settings_from_env(os.environ)


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        (json.dumps({"conn_type": "provisioning_state", "extra": {"sqlite_path": "/srv/state.db"}}),
         "sqlite:////srv/state.db"),
        (json.dumps({"conn_type": "provisioning_state", "host": "db", "port": 5432, "schema": "prov",
                     "login": "sync", "password": "p@ss:/"}),
         "postgresql+psycopg2://sync:p%40ss%3A%2F@db:5432/prov"),
        ("postgresql://sync:p%40ss@db:5432/prov", "postgresql+psycopg2://sync:p%40ss@db:5432/prov"),
        ("sqlite:////srv/state.db", "sqlite:////srv/state.db"),
    ],
    ids=["json-sqlite", "json-postgres", "uri-postgres", "uri-sqlite"],
)  # fmt: skip
def test_state_hook_url_is_the_engines(raw: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROVISIONING_STATE", raw)
    assert ProvisioningStateHook().get_url() == url == state_url_from_env(os.environ)


def test_state_hook_without_a_connection_uses_the_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PROVISIONING_STATE", raising=False)
    assert ProvisioningStateHook().get_url() == f"sqlite:///{DEFAULT_STATE_PATH}"
    assert DEFAULT_STATE_PATH.is_absolute()


def test_connection_settings_blank_form_fields_are_missing() -> None:
    conn = Connection(conn_id="x", conn_type="msgraph", host="", login="", password="", port=None, extra="")
    settings = connection_settings(conn)
    assert (settings.host, settings.login, settings.password, settings.port, settings.extra) == (
        None,
        None,
        None,
        None,
        {},
    )


# --- Test buttons in-process, against the sandbox -------------------------------------------


def test_graph_test_connection_against_the_sandbox(sandbox_env: SandboxProcess) -> None:
    ok, message = MsGraphHook().test_connection()
    assert ok, message
    assert sandbox_env.tenant["service_principal"]["id"] in message


def test_graph_test_connection_with_a_wrong_secret_names_the_connection(
    sandbox_env: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {**conn_json(sandbox_env, "msgraph_default"), "password": "not-the-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_DEFAULT", json.dumps(conn))
    ok, message = MsGraphHook().test_connection()
    assert not ok
    assert "'msgraph_default'" in message and "secret" in message
    assert "not-the-secret" not in message


def test_graph_test_connection_without_a_service_principal(
    sandbox_env: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = conn_json(sandbox_env, "msgraph_default")
    del conn["extra"]["service_principal_id"]
    monkeypatch.setenv("AIRFLOW_CONN_MSGRAPH_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID")
    ok, message = MsGraphHook().test_connection()
    assert not ok and "service_principal_id" in message and "entra_service_principal_id" in message


def _state_conn(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROVISIONING_STATE",
        json.dumps({"conn_type": "provisioning_state", "extra": {"sqlite_path": str(path)}}),
    )


def test_state_test_connection_opens_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "state.db"
    StateStore(f"sqlite:///{db}").close()
    _state_conn(monkeypatch, db)
    ok, message = ProvisioningStateHook().test_connection()
    assert ok, message
    assert "no cycle recorded yet" in message


def test_state_test_connection_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "state.db"
    _state_conn(monkeypatch, fresh)
    ok, message = ProvisioningStateHook().test_connection()
    assert ok and "does not exist yet; the first cycle creates it" in message
    assert not fresh.exists()
    typo = tmp_path / "no-such-folder" / "state.db"
    _state_conn(monkeypatch, typo)
    ok, message = ProvisioningStateHook().test_connection()
    assert not ok and "does not exist (check the path)" in message
    assert not typo.parent.exists()


def test_state_test_connection_failure_names_the_connection_not_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROVISIONING_STATE", "postgresql://sync:pw-secret-1@127.0.0.1:1/prov")
    ok, message = ProvisioningStateHook().test_connection()
    assert not ok
    assert "'provisioning_state'" in message and "sync:***@127.0.0.1:1/prov" in message
    assert "pw-secret-1" not in message


def test_one_salesforce_connection_serves_the_engine_and_the_provider_hook(sandbox_env: SandboxProcess) -> None:
    session = connect(salesforce_settings())  # the engine: client credentials first
    assert session.instance_url == sandbox_env.salesforce_url
    provider = SalesforceHook().get_conn()  # the provider: SOAP login() through the domain trick
    assert provider.query("SELECT Id FROM User WHERE IsActive = true")["totalSize"] > 0


def test_provider_hook_client_credentials_through_the_domain_trick(
    sandbox_env: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = conn_json(sandbox_env, "salesforce_default")
    conn.pop("login"), conn.pop("password"), conn["extra"].pop("security_token")
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))
    sf = SalesforceHook().get_conn()
    assert sf.auth_type == "client-credentials"
    assert sf.query("SELECT Id FROM Profile")["totalSize"] > 0


def test_salesforce_provider_test_connection(sandbox_env: SandboxProcess) -> None:
    ok, message = SalesforceHook().test_connection()
    assert ok, message


def test_salesforce_wrong_password_fails_in_both_paths(
    sandbox_env: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = conn_json(sandbox_env, "salesforce_default")
    conn["password"] = "wrong-password"
    conn["extra"]["consumer_secret"] = "wrong-consumer-secret"
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))
    ok, message = SalesforceHook().test_connection()
    assert not ok and "INVALID_LOGIN" in message
    with pytest.raises(SalesforceLoginError, match="'salesforce_default'") as failure:
        connect(salesforce_settings())
    assert "wrong-consumer-secret" not in str(failure.value)


def test_connections_test_cli_uses_the_hook(sandbox: SandboxProcess, airflow_db: Path) -> None:
    env = {**os.environ, **sandbox_airflow_env(sandbox.settings, airflow_db)}  # conftest set AIRFLOW_*
    command = [AIRFLOW_BIN, "connections", "test", "msgraph_default"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Connection success!" in result.stdout, result.stdout + result.stderr


# --- the real Test button: POST /api/v2/connections/test on a running api-server ------------


def form_body(connection_id: str, conn: dict[str, Any]) -> dict[str, Any]:
    """What the connection form sends: standard fields plus extra as a JSON string."""
    body = {k: conn[k] for k in ("conn_type", "host", "port", "schema", "login", "password") if conn.get(k) is not None}
    return {"connection_id": connection_id, **body, "extra": json.dumps(conn.get("extra") or {})}


def test_form_metadata_of_the_three_types(airflow_server: AirflowServer) -> None:
    answer = airflow_server.api("GET", "/ui/connections/hook_meta")
    assert answer.status_code == 200, answer.text
    meta = {m["connection_type"]: m for m in answer.json()}
    assert meta["msgraph"]["hook_class_name"] == GRAPH_HOOK
    assert {"tenant_id", "base_url", "verify", "service_principal_id"} <= set(meta["msgraph"]["extra_fields"])
    assert meta["msgraph"]["standard_fields"]["login"]["title"] == "Client ID"
    assert meta["provisioning_state"]["hook_class_name"] == STATE_HOOK
    assert meta["salesforce"]["hook_class_name"] == SALESFORCE_HOOK


def test_test_button_graph_and_state(airflow_server: AirflowServer, sandbox: SandboxProcess, tmp_path: Path) -> None:
    graph = airflow_server.api(
        "POST", "/api/v2/connections/test", json=form_body("msgraph_default", conn_json(sandbox, "msgraph_default"))
    )
    assert graph.status_code == 200 and graph.json()["status"] is True, graph.text
    wrong = {**conn_json(sandbox, "msgraph_default"), "password": "not-the-secret"}
    refused = airflow_server.api("POST", "/api/v2/connections/test", json=form_body("msgraph_other", wrong))
    assert refused.json()["status"] is False and "secret" in refused.json()["message"]
    state = {"conn_type": "provisioning_state", "extra": {"sqlite_path": str(tmp_path / "s.db")}}
    opened = airflow_server.api("POST", "/api/v2/connections/test", json=form_body("state_x", state))
    assert opened.json()["status"] is True, opened.text


def test_test_button_salesforce(airflow_server: AirflowServer, sandbox: SandboxProcess) -> None:
    body = form_body("salesforce_default", conn_json(sandbox, "salesforce_default"))
    answer = airflow_server.api("POST", "/api/v2/connections/test", json=body)
    assert answer.status_code == 200 and answer.json()["status"] is True, answer.text


def test_a_stored_connection_tested_from_the_list(airflow_server: AirflowServer, sandbox: SandboxProcess) -> None:
    """The connection list's Test button posts the stored connection as read back (secrets masked)
    with ``Number(port)``, which is 0 for a stored null: the api-server then refuses to reuse the
    stored secrets (400). The env file's connections carry a port for that reason."""
    graph = conn_json(sandbox, "msgraph_default")
    for connection_id, conn in (("graph_with_port", graph), ("graph_without_port", {**graph, "port": None})):
        created = airflow_server.api("POST", "/api/v2/connections", json=form_body(connection_id, conn))
        assert created.status_code == 201, created.text
        stored = airflow_server.api("GET", f"/api/v2/connections/{connection_id}").json()
        assert stored["password"] == "***"
        row = {**stored, "port": stored["port"] or 0}
        row.pop("team_name", None)
        answer = airflow_server.api("POST", "/api/v2/connections/test", json=row)
        if conn["port"] is None:
            assert answer.status_code == 400, answer.text
        else:
            assert answer.status_code == 200 and answer.json()["status"] is True, answer.text


@pytest.fixture(scope="module")
def api_server_without_tests(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """An api-server alone on the session's migrated database, with Airflow's default
    ``[core] test_connection = Disabled``."""
    home = tmp_path_factory.mktemp("airflow-api-disabled")
    migrated = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_db / 'airflow.db'}"}
    server = AirflowServer(home, {**migrated, "AIRFLOW__CORE__TEST_CONNECTION": "Disabled"}, command=("api-server",))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_test_button_is_refused_when_disabled(api_server_without_tests: AirflowServer, sandbox: SandboxProcess) -> None:
    body = form_body("msgraph_default", conn_json(sandbox, "msgraph_default"))
    answer = api_server_without_tests.api("POST", "/api/v2/connections/test", json=body)
    assert answer.status_code == 403
    assert "disabled" in answer.json()["detail"]
    assert httpx.post(f"{api_server_without_tests.url}/api/v2/connections/test", json=body).status_code == 401
