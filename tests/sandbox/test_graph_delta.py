"""``users/delta`` through msgraph-sdk, across changes made with the control API."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

from tests.sandbox.test_graph_sdk import graph_requests, run_with_client
from tests.sandbox_process import SandboxProcess

ADELE, ALEX, MEGAN = (f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3))
DISABLED, UNASSIGNED = "00000000-0000-0000-0000-000000000006", "00000000-0000-0000-0000-000000000007"
NEW_USER = {
    "id": "00000000-0000-0000-0000-000000000008",
    "userPrincipalName": "new.hire@contoso.example",
    "displayName": "New Hire",
    "jobTitle": "Sales Engineer",
    "accountEnabled": True,
}


async def delta_round(
    client: GraphServiceClient, link: str | None = None, *, select: list[str] | None = None, minimal: bool = False
) -> tuple[list[list[Any]], str]:
    """Follow one round to its deltaLink; the pages' users and the deltaLink."""
    config: RequestConfiguration[Any] = RequestConfiguration(
        query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=select)
    )
    if minimal:
        config.headers.add("Prefer", "return=minimal")
    page = await (client.users.delta.with_url(link).get(config) if link else client.users.delta.get(config))
    pages = [page.value]
    while page.odata_next_link:
        assert "$skiptoken=" in page.odata_next_link
        page = await client.users.delta.with_url(page.odata_next_link).get(config)
        pages.append(page.value)
    assert page.odata_delta_link and "$deltatoken=" in page.odata_delta_link
    return pages, page.odata_delta_link


def removed(user: Any) -> str | None:
    return (user.additional_data.get("@removed") or {}).get("reason")


def test_delta_reports_control_api_changes(sandbox: SandboxProcess) -> None:
    control = sandbox.graph

    async def body(client: GraphServiceClient) -> dict[str, Any]:
        first, link = await delta_round(client, select=["displayName", "jobTitle", "accountEnabled"])
        control.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": "Sales Manager"}).raise_for_status()
        control.patch(f"/_sandbox/users/{ALEX}", json={"department": "Marketing"}).raise_for_status()  # untracked
        control.delete(f"/_sandbox/users/{DISABLED}").raise_for_status()
        control.delete(f"/_sandbox/users/{UNASSIGNED}", params={"permanent": "true"}).raise_for_status()
        control.post("/_sandbox/users", json=NEW_USER).raise_for_status()
        second, link = await delta_round(client, link)
        third, _ = await delta_round(client, link)
        listed = await client.users.get()
        return {"first": first, "second": second, "third": third, "listed": listed.value}

    out = run_with_client(sandbox, body)
    assert [len(p) for p in out["first"]] == [7]
    first = {u.id: u for u in out["first"][0]}
    assert first[ADELE].display_name == "Adele Vance" and first[ADELE].job_title == "Account Executive"
    assert first[ADELE].mail is None  # not tracked
    changes = {u.id: u for page in out["second"] for u in page}
    assert set(changes) == {ADELE, DISABLED, UNASSIGNED, NEW_USER["id"]}
    assert changes[ADELE].job_title == "Sales Manager" and removed(changes[ADELE]) is None
    assert changes[ADELE].display_name == "Adele Vance"  # Graph's default: all tracked properties
    assert removed(changes[DISABLED]) == "changed"
    assert removed(changes[UNASSIGNED]) == "deleted"
    assert changes[NEW_USER["id"]].display_name == "New Hire"
    assert out["third"] == [[]]
    assert {u.id for u in out["listed"]} == {ADELE, ALEX, MEGAN, NEW_USER["id"]} | {
        "00000000-0000-0000-0000-000000000004",
        "00000000-0000-0000-0000-000000000005",
    }
    assert graph_requests(sandbox)["GET /v1.0/users/delta()"] == 1  # later calls follow the links


def test_deltatoken_latest_then_only_new_changes(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> tuple[list[list[Any]], list[list[Any]]]:
        latest = await client.users.delta.with_url(
            f"{sandbox.graph_url}/v1.0/users/delta?$deltatoken=latest&$select=displayName"
        ).get()
        assert latest.value == [] and latest.odata_next_link is None
        sandbox.graph.patch(f"/_sandbox/users/{MEGAN}", json={"displayName": "Megan B."}).raise_for_status()
        sandbox.graph.patch(f"/_sandbox/users/{ALEX}", json={"jobTitle": "CTO"}).raise_for_status()  # untracked
        changed, _ = await delta_round(client, latest.odata_delta_link)
        return [[latest]], changed

    _, changed = run_with_client(sandbox, body)
    assert [(u.id, u.display_name, u.job_title) for page in changed for u in page] == [(MEGAN, "Megan B.", None)]


def test_prefer_return_minimal_returns_changed_properties_only(sandbox: SandboxProcess) -> None:
    """Checked on the raw JSON: the SDK's models cannot tell an absent property from a null one."""
    client = sandbox.tenant["clients"][0]
    token = sandbox.graph.post(
        f"/{sandbox.tenant['tenant_id']}/oauth2/v2.0/token",
        data={**client, "grant_type": "client_credentials", "scope": f"{sandbox.graph_url}/.default"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    first = sandbox.graph.get("/v1.0/users/delta", params={"$select": "displayName,jobTitle"}, headers=headers)
    link = first.json()["@odata.deltaLink"]
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": None}).raise_for_status()
    minimal = sandbox.graph.get(link, headers={**headers, "Prefer": "return=minimal"})
    assert minimal.headers["Preference-Applied"] == "return=minimal"
    assert minimal.json()["value"] == [{"jobTitle": None, "id": ADELE}]
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": "Back"}).raise_for_status()
    full = sandbox.graph.get(minimal.json()["@odata.deltaLink"], headers=headers)
    assert full.json()["value"] == [{"displayName": "Adele Vance", "jobTitle": "Back", "id": ADELE}]


def test_expired_delta_token_answers_410_sync_state_not_found(sandbox: SandboxProcess) -> None:
    async def body(client: GraphServiceClient) -> ODataError:
        _, link = await delta_round(client, select=["displayName"])
        sandbox.graph.post("/_sandbox/delta/expire").raise_for_status()
        with pytest.raises(ODataError) as caught:
            await client.users.delta.with_url(link).get()
        return caught.value

    error = run_with_client(sandbox, body)
    assert error.response_status_code == 410
    assert error.error.code == "syncStateNotFound"
    assert "synchronized again" in error.error.message


@pytest.mark.parametrize(
    ("lifetime", "answer"),
    [(3600, (200, None)), (1, (410, "syncStateNotFound"))],
    ids=["one-hour-lifetime", "one-second-lifetime"],
)
def test_delta_token_lifetime_comes_from_the_fixture(
    sandbox: SandboxProcess, lifetime: int, answer: tuple[int, str | None]
) -> None:
    """The same delta link, used 1.2 s after it was issued, is still good under a fixture lifetime
    of one hour and expired under one of one second. Only the fixture differs, and neither outcome
    depends on how long the client's first round takes (the link is at least 1.2 s old in both)."""
    fixture = {**sandbox.tenant, "delta_token_lifetime_seconds": lifetime}
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()

    async def body(client: GraphServiceClient) -> tuple[int, str | None]:
        _, link = await delta_round(client)
        time.sleep(1.2)
        try:
            await client.users.delta.with_url(link).get()
        except ODataError as error:
            return error.response_status_code, error.error.code if error.error else None
        return 200, None

    assert run_with_client(sandbox, body) == answer


def test_delta_pages_follow_next_links_in_both_kinds_of_round(sandbox: SandboxProcess) -> None:
    fixture = {**sandbox.tenant, "delta_page_size": 3}
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()

    async def body(client: GraphServiceClient) -> tuple[list[list[Any]], list[list[Any]]]:
        initial, link = await delta_round(client, select=["displayName"])
        for index in range(1, 5):
            user_id = f"00000000-0000-0000-0000-00000000000{index}"
            sandbox.graph.patch(f"/_sandbox/users/{user_id}", json={"displayName": f"Renamed {index}"})
        changed, _ = await delta_round(client, link)
        return initial, changed

    initial, changed = run_with_client(sandbox, body)
    assert [len(p) for p in initial] == [3, 3, 1]
    assert [len(p) for p in changed] == [3, 1]
    assert sorted(u.display_name for page in changed for u in page) == [f"Renamed {i}" for i in range(1, 5)]
