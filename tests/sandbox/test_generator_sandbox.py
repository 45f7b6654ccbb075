"""A generated pair loads into the running emulators unchanged (the fixture contract).

The sandbox is started exactly as users start it (``python -m include.sandbox up`` in a child
process) with a freshly generated 2,000-user tenant; the control API must report the same
objects back, and Graph, read through msgraph-sdk, must hide the soft-deleted users marked
with the ``deletedDateTime`` extension.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

from include.sandbox.generator import generate
from tests.sandbox_process import SandboxProcess


@pytest.fixture(scope="module")
def generated_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    out = tmp_path_factory.mktemp("generated-pair")
    generate(users=2000, seed=11, out_dir=out)
    process = SandboxProcess(out / "tenant.json", out / "org.json", tmp_path_factory.mktemp("generated-sandbox"))
    yield process
    process.stop()


def _ids(records: list[dict[str, Any]], key: str = "id") -> list[str]:
    return [r[key] for r in records]


def test_graph_state_holds_every_generated_object(generated_sandbox: SandboxProcess) -> None:
    state = generated_sandbox.graph.get("/_sandbox/state").json()
    tenant = generated_sandbox.tenant
    assert state["tenant_id"] == tenant["tenant_id"]
    for key in ("users", "groups", "appRoleAssignments"):
        assert len(state[key]) == len(tenant[key]), key
        assert sorted(_ids(state[key])) == sorted(_ids(tenant[key])), key
    assert len(state["service_principal"]["appRoles"]) == len(tenant["service_principal"]["appRoles"])
    deleted = [u for u in state["users"] if u.get("deletedDateTime")]
    assert len(deleted) == sum(1 for u in tenant["users"] if u.get("deletedDateTime")) > 0


def test_salesforce_state_holds_every_generated_object(generated_sandbox: SandboxProcess) -> None:
    state = generated_sandbox.salesforce.get("/_sandbox/state").json()
    org = generated_sandbox.org
    assert state["organization_id"] == org["organization_id"]
    for key in ("user_licenses", "profiles", "users"):
        assert sorted(_ids(state[key], "Id")) == sorted(_ids(org[key], "Id")), key
    assert [lic["TotalLicenses"] for lic in state["user_licenses"]] == [
        lic["TotalLicenses"] for lic in org["user_licenses"]
    ]
    assert state["usernames_taken_elsewhere"] == org["usernames_taken_elsewhere"]
    by_id = {u["Id"]: u for u in state["users"]}
    for user in org["users"]:
        served = by_id[user["Id"]]
        assert (served["Username"], served["IsActive"], served["ProfileId"]) == (
            user["Username"],
            user["IsActive"],
            user["ProfileId"],
        )


async def _list_user_ids(sandbox: SandboxProcess) -> list[str]:
    settings = sandbox.settings
    tenant = sandbox.tenant
    client = tenant["clients"][0]
    verify = ssl.create_default_context(cafile=sandbox.ca_bundle)
    credential = ClientSecretCredential(
        tenant["tenant_id"],
        client["client_id"],
        client["client_secret"],
        authority=settings["SANDBOX_GRAPH_URL"],
        connection_verify=sandbox.ca_bundle,
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[f"{sandbox.graph_url}/.default"])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=verify, timeout=60))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{sandbox.graph_url}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)
    config = RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=["id"], top=999)
    )
    ids: list[str] = []
    # Raw pages through the SDK's adapter (auth, retries) rather than typed models, which
    # cost milliseconds per user (see docs/external-apis.md).
    request = graph.users.to_get_request_information(config)
    try:
        while True:
            page = orjson.loads(await adapter.send_primitive_async(request, "bytes", None))
            ids.extend(user["id"] for user in page["value"])
            if "@odata.nextLink" not in page:
                break
            request = graph.users.with_url(page["@odata.nextLink"]).to_get_request_information()
    finally:
        await credential.close()
        await http.aclose()
    return ids


def test_graph_lists_the_generated_users_without_the_soft_deleted(generated_sandbox: SandboxProcess) -> None:
    users = generated_sandbox.tenant["users"]
    listed = asyncio.run(_list_user_ids(generated_sandbox))
    assert sorted(listed) == sorted(u["id"] for u in users if not u.get("deletedDateTime"))
    assert len(listed) < len(users)


def test_generated_sandbox_log_is_clean(generated_sandbox: SandboxProcess) -> None:
    # Loading must not have logged a traceback (e.g. a record the emulator half-accepted).
    assert "Traceback" not in Path(generated_sandbox.log_path).read_text()
