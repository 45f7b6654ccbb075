"""The Graph emulator driven by the real clients: azure-identity, msgraph-sdk, msgraph-core.

Only connection settings differ from production: the credential's ``authority`` and CA
bundle, the adapter's ``base_url`` and an explicit scope (kiota would otherwise derive
``https://127.0.0.1/.default`` from the host).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder
from msgraph.generated.directory_objects.get_by_ids.get_by_ids_post_request_body import GetByIdsPostRequestBody
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
    ServicePrincipalItemRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent

from tests.sandbox_process import SandboxProcess

T = TypeVar("T")
SP_ID = "00000000-0000-0000-0000-000000002329"
APP_ID = "00000000-0000-0000-0000-00000000232a"
APP_OBJECT_ID = "00000000-0000-0000-0000-00000000232b"
SALES_EMEA = "00000000-0000-0000-0000-0000000000c9"
TOKEN_ROUTE = "POST /{tenant}/oauth2/v2.0/token"


def credential_for(sandbox: SandboxProcess, secret: str | None = None) -> ClientSecretCredential:
    client = sandbox.tenant["clients"][0]
    return ClientSecretCredential(
        sandbox.tenant["tenant_id"],
        client["client_id"],
        secret or client["client_secret"],
        authority=sandbox.graph_url,
        connection_verify=sandbox.ca_bundle,
    )


@contextlib.asynccontextmanager
async def graph_client(sandbox: SandboxProcess, secret: str | None = None) -> AsyncIterator[GraphServiceClient]:
    """A GraphServiceClient with the SDK's default middleware (retry, redirect, ...)."""
    credential = credential_for(sandbox, secret)
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=sandbox.ca_bundle))
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"{sandbox.graph_url}/.default"], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{sandbox.graph_url}/v1.0"
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()
        await credential.close()


def run_with_client(sandbox: SandboxProcess, body: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with graph_client(sandbox) as client:
            return await body(client)

    return asyncio.run(main())


def graph_requests(sandbox: SandboxProcess) -> dict[str, int]:
    return sandbox.requests("graph")["by_route"]


def test_service_principal_app_roles_by_id_and_by_app_id(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> tuple[Any, Any]:
        query = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(
            select=["id", "appRoles"]
        )
        by_id = await client.service_principals.by_service_principal_id(SP_ID).get(
            RequestConfiguration(query_parameters=query)
        )
        by_app_id = await client.service_principals_with_app_id(APP_ID).get()
        return by_id, by_app_id

    by_id, by_app_id = run_with_client(sandbox, body)
    assert by_id.id == SP_ID
    assert by_id.display_name is None  # not selected
    assert [r.value for r in by_id.app_roles] == ["Standard User", "System Administrator", "Chatter Free User"]
    assert all(r.is_enabled and r.allowed_member_types == ["User"] for r in by_id.app_roles)
    assert by_app_id.id == SP_ID and by_app_id.app_id == APP_ID and by_app_id.display_name == "Salesforce"


def test_app_role_assigned_to_pages_with_all_fields(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> list[list[Any]]:
        builder = client.service_principals.by_service_principal_id(SP_ID).app_role_assigned_to
        query = AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters(top=2)
        page = await builder.get(RequestConfiguration(query_parameters=query))
        pages = [page.value]
        while page.odata_next_link:
            page = await builder.with_url(page.odata_next_link).get()
            pages.append(page.value)
        return pages

    pages = run_with_client(sandbox, body)
    assert [len(p) for p in pages] == [2, 2, 1]
    items = {a.id: a for page in pages for a in page}
    assert set(items) == {"asg-1", "asg-2", "asg-3", "asg-4", "asg-5"}
    group = items["asg-3"]
    assert group.principal_type == "Group" and group.principal_display_name == "Sales EMEA"
    assert str(group.principal_id) == SALES_EMEA and str(group.resource_id) == SP_ID
    assert group.resource_display_name == "Salesforce"
    assert str(items["asg-2"].app_role_id) == "00000000-0000-0000-0000-000000000066"
    assert items["asg-1"].principal_display_name == "Adele Vance"
    assert items["asg-1"].created_date_time.year == 2024


def test_transitive_members_flatten_nested_groups(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> tuple[Any, Any]:
        group = client.groups.by_group_id(SALES_EMEA)
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id", "mail"])
        users = await group.transitive_members.graph_user.get(RequestConfiguration(query_parameters=query))
        everything = await group.transitive_members.get()
        return users, everything

    users, everything = run_with_client(sandbox, body)
    assert [u.mail for u in users.value] == ["megan.bowen@contoso.example", "zoe.muller@contoso.example"]
    assert users.value[0].display_name is None  # not selected
    kinds = {(o.odata_type, o.id) for o in everything.value}
    assert kinds == {
        ("#microsoft.graph.user", "00000000-0000-0000-0000-000000000003"),
        ("#microsoft.graph.group", "00000000-0000-0000-0000-0000000000ca"),
        ("#microsoft.graph.user", "00000000-0000-0000-0000-000000000004"),
    }
    assert graph_requests(sandbox)["GET /v1.0/groups/{group_id}/transitiveMembers/graph.user"] == 1


def test_users_with_select_page_by_top(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> list[list[Any]]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "department", "employeeId", "surname"], top=3
        )
        page = await client.users.get(RequestConfiguration(query_parameters=query))
        pages = [page.value]
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            pages.append(page.value)
        return pages

    pages = run_with_client(sandbox, body)
    assert [len(p) for p in pages] == [3, 3, 1]
    users = {u.id: u for page in pages for u in page}
    assert len(users) == 7
    adele = users["00000000-0000-0000-0000-000000000001"]
    assert (adele.department, adele.employee_id, adele.given_name) == ("Sales", "1001", None)
    assert users["00000000-0000-0000-0000-000000000005"].surname is None


def test_users_filtered_by_ids_and_directory_objects_by_ids(sandbox: SandboxProcess) -> None:
    ids = ["00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000004"]

    async def body(client: GraphServiceClient) -> tuple[Any, Any]:
        id_list = ",".join(f"'{i}'" for i in ids)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"id in ({id_list})", select=["id", "preferredLanguage"]
        )
        filtered = await client.users.get(RequestConfiguration(query_parameters=query))
        request = GetByIdsPostRequestBody(ids=[*ids, SALES_EMEA, "00000000-0000-0000-0000-0000000000ff"])
        objects = await client.directory_objects.get_by_ids.post(request)
        return filtered, objects

    filtered, objects = run_with_client(sandbox, body)
    assert {(u.id, u.preferred_language) for u in filtered.value} == {(ids[0], "de-DE"), (ids[1], "fr-FR")}
    assert [(o.odata_type, o.id) for o in objects.value] == [
        ("#microsoft.graph.user", ids[0]),
        ("#microsoft.graph.user", ids[1]),
        ("#microsoft.graph.group", SALES_EMEA),
    ]


def _role(role_id: str, value: str, *, enabled: bool = True) -> AppRole:
    return AppRole(
        id=role_id,
        value=value,
        display_name=value,
        description=f"Salesforce profile {value}",
        allowed_member_types=["User"],
        is_enabled=enabled,
    )


def test_patch_application_app_roles_follows_graph_rules(sandbox: SandboxProcess) -> None:
    existing = [(r["id"], r["value"]) for r in sandbox.tenant["service_principal"]["appRoles"]]
    new_role = ("11111111-2222-3333-4444-555555555555", "Marketing User")

    async def body(client: GraphServiceClient) -> dict[str, Any]:
        app = client.applications.by_application_id(APP_OBJECT_ID)
        outcome: dict[str, Any] = {}
        await app.patch(Application(app_roles=[*(_role(i, v) for i, v in existing), _role(*new_role)]))
        sp = await client.service_principals.by_service_principal_id(SP_ID).get()
        outcome["after_add"] = [r.value for r in sp.app_roles]
        for name, roles in {
            "remove_enabled": [_role(i, v) for i, v in existing],
            "duplicate_value": [*(_role(i, v) for i, v in existing), _role(new_role[0], "Standard User")],
        }.items():
            with pytest.raises(ODataError) as caught:
                await app.patch(Application(app_roles=roles))
            outcome[name] = (caught.value.response_status_code, caught.value.error.code)
        # Disable first, then remove: Graph's two-step.
        await app.patch(Application(app_roles=[*(_role(i, v) for i, v in existing), _role(*new_role, enabled=False)]))
        await app.patch(Application(app_roles=[_role(i, v) for i, v in existing]))
        query = ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(select=["appRoles"])
        application = await app.get(RequestConfiguration(query_parameters=query))
        outcome["final"] = [r.value for r in application.app_roles]
        return outcome

    outcome = run_with_client(sandbox, body)
    assert outcome["after_add"] == [v for _, v in existing] + ["Marketing User"]
    assert outcome["remove_enabled"] == (400, "CannotDeleteOrUpdateEnabledEntitlement")
    assert outcome["duplicate_value"] == (400, "DuplicateValue")
    assert outcome["final"] == [v for _, v in existing]


def test_retry_handler_honours_injected_429s(sandbox: SandboxProcess) -> None:
    rules = [{"method": "GET", "path_regex": "^/v1.0/users$", "status": 429, "retry_after": 1, "times": 2}]
    sandbox.graph.put("/_sandbox/faults", json=rules).raise_for_status()

    async def body(client: GraphServiceClient) -> Any:
        return await client.users.get()

    users = run_with_client(sandbox, body)
    assert len(users.value) == 7
    assert graph_requests(sandbox)["GET /v1.0/users"] == 3  # two 429s, then the answer


def test_unknown_user_is_an_odata_404(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> ODataError:
        with pytest.raises(ODataError) as caught:
            await client.users.by_user_id("00000000-0000-0000-0000-0000000000ff").get()
        return caught.value

    error = run_with_client(sandbox, body)
    assert error.response_status_code == 404
    assert error.error.code == "Request_ResourceNotFound"
    assert "00000000-0000-0000-0000-0000000000ff" in error.error.message


def test_batch_through_msgraph_core(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> BatchResponseContent:
        first = client.users.by_user_id("00000000-0000-0000-0000-000000000001").to_get_request_information()
        second = client.users.by_user_id("00000000-0000-0000-0000-0000000000ff").to_get_request_information()
        third = client.service_principals.by_service_principal_id(SP_ID).to_get_request_information()
        items = {"adele": first, "ghost": second, "sp": third}
        batch = BatchRequestContent({key: BatchRequestItem(info, id=key) for key, info in items.items()})
        return await client.batch.post(batch_request_content=batch)

    response = run_with_client(sandbox, body)
    assert {item_id: item.status for item_id, item in response.responses.items()} == {
        "adele": 200,
        "ghost": 404,
        "sp": 200,
    }
    # msgraph-core 1.5 reads item bodies as base64 bytes, so the JSON object bodies that Graph
    # (and the emulator) return come back as None there: read bodies with a raw $batch instead.
    assert response.get_response_by_id("adele").headers["Content-Type"].startswith("application/json")
    assert response.get_response_by_id("ghost").headers["Content-Type"] == "application/json"
    assert graph_requests(sandbox) == {"POST /v1.0/$batch": 1, TOKEN_ROUTE: 1}


def test_raw_batch_through_the_request_adapter(sandbox: SandboxProcess) -> None:
    """A $batch posted as raw JSON through the SDK's adapter (auth, retries) with relative urls."""

    async def body(client: GraphServiceClient) -> bytes:
        info = RequestInformation(Method.POST, f"{sandbox.graph_url}/v1.0/$batch")
        payload = {
            "requests": [
                {"id": "1", "method": "GET", "url": "/users?$select=id&$top=2"},
                {"id": "2", "method": "GET", "url": "groups/" + SALES_EMEA + "/transitiveMembers/microsoft.graph.user"},
                {"id": "3", "method": "GET", "url": "/users/ghost", "dependsOn": ["1"]},
                {"id": "4", "method": "GET", "url": "/users?$select=id", "dependsOn": ["3"]},
            ]
        }
        info.set_stream_content(orjson.dumps(payload), "application/json")
        return await client.request_adapter.send_primitive_async(info, "bytes", {})

    raw = orjson.loads(run_with_client(sandbox, body))
    statuses = {r["id"]: r["status"] for r in raw["responses"]}
    assert statuses == {"1": 200, "2": 200, "3": 404, "4": 424}
    by_id = {r["id"]: r for r in raw["responses"]}
    assert len(by_id["1"]["body"]["value"]) == 2 and "@odata.nextLink" in by_id["1"]["body"]
    assert len(by_id["2"]["body"]["value"]) == 2
    assert by_id["4"]["body"]["error"]["code"] == "FailedDependency"


def test_bad_secret_raises_client_authentication_error(sandbox: SandboxProcess) -> None:
    async def main() -> None:
        credential = credential_for(sandbox, secret="not-the-secret")
        async with credential:
            await credential.get_token(f"{sandbox.graph_url}/.default")

    with pytest.raises(ClientAuthenticationError) as caught:
        asyncio.run(main())
    assert "AADSTS7000215" in str(caught.value)


def test_revoked_token_is_renewed_through_the_cae_claims_challenge(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> tuple[Any, Any]:
        before = await client.users.by_user_id("00000000-0000-0000-0000-000000000001").get()
        sandbox.graph.post("/_sandbox/tokens/revoke").raise_for_status()
        after = await client.users.by_user_id("00000000-0000-0000-0000-000000000002").get()
        return before, after

    before, after = run_with_client(sandbox, body)
    assert (before.display_name, after.display_name) == ("Adele Vance", "Alex Wilber")
    counts = graph_requests(sandbox)
    assert counts[TOKEN_ROUTE] == 2  # the challenge made azure-identity fetch a new token
    assert counts["GET /v1.0/users/{user_id}"] == 3  # first call, challenged call, its retry


def test_sync_credential_goes_through_msal_discovery(sandbox: SandboxProcess) -> None:
    client = sandbox.tenant["clients"][0]
    credential = SyncClientSecretCredential(
        sandbox.tenant["tenant_id"],
        client["client_id"],
        client["client_secret"],
        authority=sandbox.graph_url,
        connection_verify=sandbox.ca_bundle,
        disable_instance_discovery=True,
    )
    token = credential.get_token(f"{sandbox.graph_url}/.default")
    assert token.token.count(".") == 2 and token.expires_on > 0
    response = sandbox.graph.get(
        "/v1.0/users/" + "00000000-0000-0000-0000-000000000003", headers={"Authorization": f"Bearer {token.token}"}
    )
    assert response.json()["displayName"] == "Megan Bowen"
    counts = graph_requests(sandbox)
    assert counts["GET /{tenant}/v2.0/.well-known/openid-configuration"] == 1
    assert counts[TOKEN_ROUTE] == 1
