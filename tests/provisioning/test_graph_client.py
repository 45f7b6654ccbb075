"""GraphSettings and GraphClient: settings parsing, auth errors, token renewal, retries.

Integration parts run against the Graph emulator through msgraph-sdk's real stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from include.provisioning.graph import GraphAuthError, GraphClient, GraphError, GraphSettings, RetryPolicy
from include.provisioning.graph.batch import Call, Runner
from include.provisioning.settings import ConnectionSettings, SettingsError
from tests.sandbox_process import SandboxProcess

T = TypeVar("T")
FAST = RetryPolicy(sdk_retries=2, max_attempts=6, base_delay=0.05, max_delay=2.0)
TOKEN_ROUTE = "POST /{tenant}/oauth2/v2.0/token"


def settings_of(sandbox: SandboxProcess, **changes: Any) -> GraphSettings:
    return dataclasses.replace(GraphSettings.from_env(sandbox.settings), **changes)


def run(settings: GraphSettings, body: Callable[[GraphClient], Awaitable[T]], retry: RetryPolicy = FAST) -> T:
    async def main() -> T:
        async with GraphClient(settings, retry=retry) as client:
            return await body(client)

    return asyncio.run(main())


def sp_path(sandbox: SandboxProcess) -> str:
    return f"/servicePrincipals/{sandbox.tenant['service_principal']['id']}?$select=id,appRoles"


def by_route(sandbox: SandboxProcess) -> dict[str, int]:
    return sandbox.requests("graph")["by_route"]


# --- settings -------------------------------------------------------------------------------


def test_settings_from_the_sandbox_env_file(sandbox: SandboxProcess) -> None:
    settings = GraphSettings.from_env(sandbox.settings)
    client = sandbox.tenant["clients"][0]
    assert settings.tenant_id == sandbox.tenant["tenant_id"]
    assert settings.client_id == client["client_id"]
    assert settings.client_secret == client["client_secret"]
    assert settings.base_url == f"{sandbox.graph_url}/v1.0"
    assert settings.authority == sandbox.graph_url
    assert settings.scopes == (f"{sandbox.graph_url}/.default",)
    assert settings.verify == sandbox.ca_bundle
    assert settings.service_principal_id == sandbox.tenant["service_principal"]["id"]
    assert settings.host == "127.0.0.1"
    assert client["client_secret"] not in repr(settings)


def test_settings_default_to_the_real_graph_and_accept_airflow_extra_forms() -> None:
    conn = ConnectionSettings(
        conn_id="msgraph_default",
        conn_type="msgraph",
        login="app-id",
        password="s3cret",
        extra={"tenant_id": "tenant-1", "scopes": "https://graph.microsoft.com/.default", "verify": "false"},
    )
    settings = GraphSettings.from_connection(conn)
    assert settings.base_url == "https://graph.microsoft.com/v1.0"
    assert settings.authority == "https://login.microsoftonline.com"
    assert settings.scopes == ("https://graph.microsoft.com/.default",)
    assert settings.verify is False
    listed = GraphSettings.from_connection(
        dataclasses.replace(conn, extra={"tenant_id": "t", "scopes": '["a/.default"]', "authority": "login.example"})
    )
    assert listed.scopes == ("a/.default",) and listed.authority == "https://login.example"
    by_host = GraphSettings.from_connection(
        dataclasses.replace(conn, host="graph.example", schema="https", port=8443, extra={"tenant_id": "t"})
    )
    assert by_host.base_url == "https://graph.example:8443/v1.0"


def test_settings_name_every_missing_field() -> None:
    conn = ConnectionSettings(conn_id="msgraph_default", login="app-id", extra={})
    with pytest.raises(SettingsError) as error:
        GraphSettings.from_connection(conn)
    assert "password" in str(error.value) and "extra.tenant_id" in str(error.value)
    bad_verify = ConnectionSettings(
        conn_id="msgraph_default", login="a", password="b", extra={"tenant_id": "t", "disable_instance_discovery": "x"}
    )
    with pytest.raises(SettingsError, match="disable_instance_discovery"):
        GraphSettings.from_connection(bad_verify)


# --- authentication -------------------------------------------------------------------------


def test_a_wrong_secret_fails_at_once_naming_tenant_client_and_aadsts_code(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox, client_secret="not-the-secret")
    with pytest.raises(GraphAuthError) as error:
        run(settings, lambda client: client.get_json(sp_path(sandbox), kind="service_principal"))
    message = str(error.value)
    assert "AADSTS7000215" in message and "Invalid client secret" in message
    assert settings.tenant_id in message and settings.client_id in message
    assert "not-the-secret" not in message
    routes = by_route(sandbox)
    assert routes == {TOKEN_ROUTE: 1}, "no retry of a refused secret and no Graph call"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("authority", "Entra's token endpoint at https://127.0.0.1:{port}"),
        ("base_url", "Graph at https://127.0.0.1:{port}/v1.0"),
    ],
)
def test_an_unreachable_endpoint_names_the_setting_that_points_there(
    sandbox: SandboxProcess, setting: str, where: str
) -> None:
    """A wrong port in extra.authority (the token request, azure-identity's transport) or in
    extra.base_url (Graph's own requests): the error says which endpoint did not answer and which
    setting of which connection to check, without aiohttp's ``ssl:<ssl.SSLContext object at 0x...>``."""
    port = _closed_port()
    url = f"https://127.0.0.1:{port}" + ("/v1.0" if setting == "base_url" else "")
    settings = settings_of(sandbox, **{setting: url})
    once = RetryPolicy(sdk_retries=0, max_attempts=1, base_delay=0.01, max_delay=0.01)
    with pytest.raises(GraphError) as error:
        run(settings, lambda client: client.get_json(sp_path(sandbox), kind="service_principal"), retry=once)
    message = str(error.value)
    assert where.format(port=port) + " did not answer" in message
    assert f"check extra.{setting}" in message and "of connection 'msgraph_default'" in message
    assert "SSLContext object" not in message and " at 0x" not in message


def test_an_unknown_tenant_names_the_tenant(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox, tenant_id="11111111-2222-3333-4444-555555555555")
    with pytest.raises(GraphAuthError, match=r"AADSTS90002.*11111111-2222-3333-4444-555555555555"):
        run(settings, lambda client: client.get_json(sp_path(sandbox), kind="service_principal"))


def test_a_token_expired_on_the_server_is_renewed_once(sandbox: SandboxProcess) -> None:
    async def body(client: GraphClient) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await client.get_json(sp_path(sandbox), kind="service_principal")
        sandbox.graph.post("/_sandbox/tokens/expire").raise_for_status()
        second = await client.get_json(sp_path(sandbox), kind="service_principal")
        return first, second

    first, second = run(settings_of(sandbox), body)
    assert first["id"] == second["id"] == sandbox.tenant["service_principal"]["id"]
    routes = by_route(sandbox)
    assert routes[TOKEN_ROUTE] == 2
    assert routes["GET /v1.0/servicePrincipals/{sp_id}"] == 3  # ok, 401, ok


def test_403_fails_fast_with_the_permissions_to_grant(sandbox: SandboxProcess) -> None:
    sandbox.graph.put("/_sandbox/faults", json=[{"path_regex": "^/v1.0/servicePrincipals", "status": 403}])
    with pytest.raises(GraphAuthError) as error:
        run(settings_of(sandbox), lambda client: client.get_json(sp_path(sandbox), kind="service_principal"))
    message = str(error.value)
    assert "403 Authorization_RequestDenied" in message and "Application.Read.All" in message
    assert by_route(sandbox)["GET /v1.0/servicePrincipals/{sp_id}"] == 1


# --- retries --------------------------------------------------------------------------------


def test_throttling_and_transient_errors_are_retried(sandbox: SandboxProcess) -> None:
    rules = [
        {"path_regex": "^/v1.0/servicePrincipals", "status": 429, "retry_after": 0, "times": 2},
        {"path_regex": "^/v1.0/servicePrincipals", "status": 503, "times": 1},
        {"path_regex": "^/v1.0/servicePrincipals", "status": 500, "times": 1},
        {"path_regex": "^/v1.0/servicePrincipals", "status": 502, "times": 1},
    ]
    sandbox.graph.put("/_sandbox/faults", json=rules).raise_for_status()

    async def body(client: GraphClient) -> tuple[dict[str, Any], dict[str, int]]:
        result = await client.get_json(sp_path(sandbox), kind="service_principal")
        return result, dict(client.requests)

    result, counts = run(settings_of(sandbox), body)
    assert [r["value"] for r in result["appRoles"]] == ["Standard User", "System Administrator", "Chatter Free User"]
    assert by_route(sandbox)["GET /v1.0/servicePrincipals/{sp_id}"] == 6
    assert counts["graph.http"] == 6 and counts["graph.throttled"] == 2 and counts["graph.server_errors"] == 3
    assert counts["graph.service_principal"] == 1


def test_a_persistent_server_error_gives_up_with_a_clear_message(sandbox: SandboxProcess) -> None:
    sandbox.graph.put("/_sandbox/faults", json=[{"path_regex": "^/v1.0/servicePrincipals", "status": 500}])
    policy = RetryPolicy(sdk_retries=0, max_attempts=3, base_delay=0.01)
    with pytest.raises(GraphError) as error:
        run(settings_of(sandbox), lambda client: client.get_json(sp_path(sandbox), kind="service_principal"), policy)
    message = str(error.value)
    assert "service_principal" in message and "500 generalException" in message and "gave up after 3" in message
    assert by_route(sandbox)["GET /v1.0/servicePrincipals/{sp_id}"] == 3


def test_throttled_batch_items_are_retried_by_the_runner(sandbox: SandboxProcess) -> None:
    # Batch items answer 429 on their own and the SDK does not retry them.
    sandbox.graph.put(
        "/_sandbox/faults", json=[{"path_regex": "^/v1.0/users/", "status": 429, "retry_after": 0, "times": 3}]
    ).raise_for_status()
    ids = [u["id"] for u in sandbox.tenant["users"]]

    async def body(client: GraphClient) -> tuple[list[str], dict[str, int]]:
        runner = Runner(client)
        pending = [Call(f"/users/{i}?$select=id", "user") for i in ids]
        found: list[str] = []
        while pending or not runner.idle:
            done = await runner.round(pending)
            pending = []
            found += [reply.body["id"] for _, reply in done if reply.ok]
        return found, dict(client.requests)

    found, counts = run(settings_of(sandbox), body)
    assert sorted(found) == sorted(ids)
    assert counts["graph.throttled"] == 3 and counts["graph.retries"] == 3 and counts["graph.user"] == len(ids) + 3
    assert by_route(sandbox)["POST /v1.0/$batch"] == counts["graph.batch"] >= 2


def test_batch_items_that_keep_failing_give_up(sandbox: SandboxProcess) -> None:
    sandbox.graph.put("/_sandbox/faults", json=[{"path_regex": "^/v1.0/users/", "status": 503}]).raise_for_status()
    ids = [u["id"] for u in sandbox.tenant["users"]][:3]

    async def body(client: GraphClient) -> None:
        runner = Runner(client)
        pending = [Call(f"/users/{i}?$select=id", "user") for i in ids]
        while pending or not runner.idle:
            await runner.round(pending)
            pending = []

    with pytest.raises(
        GraphError, match=r"Graph user request /v1.0/users/.* failed: 503 serviceNotAvailable.*gave up after 2"
    ):
        run(settings_of(sandbox), body, RetryPolicy(sdk_retries=0, max_attempts=2, base_delay=0.01))


def test_links_become_batch_urls_only_on_the_configured_api_root() -> None:
    settings = GraphSettings("t", "c", "s", base_url="https://graph.example/v1.0")
    client = GraphClient(settings)
    assert client.relative("/users?$top=1") == "/users?$top=1"
    assert client.relative("https://graph.example/v1.0/users?$skiptoken=x") == "/users?$skiptoken=x"
    assert client.relative("https://graph.example/beta/users") is None
    assert client.relative("https://elsewhere.example/v1.0/users") is None
    assert client.absolute("/users") == "https://graph.example/v1.0/users"
    assert client.absolute("https://elsewhere.example/x") == "https://elsewhere.example/x"
