"""Full extraction against the Graph emulator (example fixtures), through msgraph-sdk."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import orjson
import pandas as pd
import pytest

from include.provisioning.graph import Extraction, GraphClient, GraphError, GraphSettings, RetryPolicy
from include.provisioning.graph.extract import extract
from include.provisioning.model import DEFAULT_ACCESS_ROLE_ID, DEFAULT_ACCESS_ROLE_VALUE, Mode
from tests.sandbox_process import SandboxProcess

FAST = RetryPolicy(sdk_retries=3, max_attempts=10, base_delay=0.05, max_delay=2.0)
SELECT = ["userPrincipalName", "mail", "givenName", "surname", "preferredLanguage", "appRoleAssignments"]
ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA, NORA = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 8))
SALES_FRANCE = "00000000-0000-0000-0000-0000000000ca"


def extract_from(
    sandbox: SandboxProcess,
    *,
    mode: Mode = Mode.FULL,
    delta_link: str | None = None,
    known: Mapping[str, Sequence[str]] | None = None,
    also_fetch: Collection[str] = (),
    select: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    before: Callable[[GraphClient], Any] | None = None,
    settings: GraphSettings | None = None,
) -> Extraction:
    settings = settings or GraphSettings.from_env(sandbox.settings)

    async def main() -> Extraction:
        async with GraphClient(settings, retry=FAST) as client:
            if before is not None:
                await before(client)
            return await extract(
                client,
                service_principal_id=str(settings.service_principal_id),
                select=select or SELECT,
                mode=mode,
                delta_link=delta_link,
                known=known or {},
                also_fetch=also_fetch,
                progress=progress,
            )

    return asyncio.run(main())


def rows(extraction: Extraction) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in extraction.users.to_dict("records")}


def test_full_extract_of_the_example_tenant(sandbox: SandboxProcess) -> None:
    result = extract_from(sandbox)
    users = rows(result)
    assert result.mode == Mode.FULL and result.fell_back is None and result.quarantined == []
    assert result.delta_link and "/users/delta?" in result.delta_link
    assert set(users) == {ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA}, "Nora is not assigned"
    assert list(result.users.columns) == [
        "id",
        "userPrincipalName",
        "mail",
        "givenName",
        "surname",
        "preferredLanguage",
        "accountEnabled",
        "displayName",  # always read: the provisioning log names users by it
        "appRoleAssignments",
        "assignedVia",
        "IsSoftDeleted",
        "scopeReason",
    ]
    zoe = users[ZOE]  # member of Sales EMEA - France, nested in the assigned Sales EMEA
    assert zoe["givenName"] == "Zoë" and zoe["surname"] == "Müller" and zoe["displayName"] == "Zoë Müller"
    assert zoe["appRoleAssignments"] == ["Standard User"] and zoe["assignedVia"] == "group:Sales EMEA"
    assert users[MEGAN]["assignedVia"] == "group:Sales EMEA"
    assert users[ALEX]["appRoleAssignments"] == ["System Administrator"] and users[ALEX]["assignedVia"] == "direct"
    assert pd.isna(users[NOSURNAME]["surname"]) and users[NOSURNAME]["givenName"] == "Nosurname"
    dana = users[DANA]
    assert dana["scopeReason"] == "disabled" and bool(dana["IsSoftDeleted"]) is True
    assert dana["appRoleAssignments"] == ["Chatter Free User"]
    in_scope = [uid for uid, row in users.items() if not row["IsSoftDeleted"]]
    assert sorted(in_scope) == [ADELE, ALEX, MEGAN, ZOE, NOSURNAME]
    assert all(pd.isna(users[uid]["scopeReason"]) for uid in in_scope)
    # Everything in one $batch, then the one group's members.
    assert result.requests["graph.batch"] == 1 and result.requests["graph.http"] == 2
    graph = sandbox.requests("graph")["by_route"]
    assert graph.get("POST /v1.0/$batch") == 1


def test_known_users_that_left_scope_are_reported(sandbox: SandboxProcess) -> None:
    gone = "00000000-0000-0000-0000-0000000000ee"
    result = extract_from(sandbox, known={NORA: ["Standard User"], gone: ["Standard User"], ADELE: ["Standard User"]})
    users = rows(result)
    assert set(users) == {ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA, NORA, gone}
    nora = users[NORA]
    assert nora["scopeReason"] == "unassigned" and nora["appRoleAssignments"] == []
    assert nora["userPrincipalName"] == "not.assigned@contoso.example" and pd.isna(nora["assignedVia"])
    assert users[gone]["scopeReason"] == "soft-deleted" and pd.isna(users[gone]["userPrincipalName"])


def test_the_default_access_role_alone_is_kept(sandbox: SandboxProcess) -> None:
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments", json={"principalId": NORA, "appRoleId": DEFAULT_ACCESS_ROLE_ID}
    ).raise_for_status()
    users = rows(extract_from(sandbox))
    assert users[NORA]["appRoleAssignments"] == [DEFAULT_ACCESS_ROLE_VALUE] and pd.isna(users[NORA]["scopeReason"])


def test_a_large_tenant_with_few_assigned_users_is_read_by_id(sandbox: SandboxProcess) -> None:
    tenant = copy.deepcopy(sandbox.tenant)
    filler = [
        {"id": f"10000000-0000-0000-0000-{i:012d}", "userPrincipalName": f"filler{i}@contoso.example"}
        for i in range(2500)
    ]
    tenant["users"] = filler + tenant["users"]  # the assigned users come last in the listing
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(tenant)).raise_for_status()
    messages: list[str] = []
    result = extract_from(sandbox, progress=messages.append)
    assert set(rows(result)) == {ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA}
    assert rows(result)[ZOE]["givenName"] == "Zoë"
    # Two listing pages ride along while assignments and groups are read; then 6 users by id
    # (one filter) beat the third page.
    assert result.requests["graph.users_list"] == 2
    assert result.requests["graph.users_by_id"] == 1
    assert result.requests["graph.http"] == 3
    assert "(by id)" in messages[-1]


def test_an_unknown_attribute_fails_with_graphs_message(sandbox: SandboxProcess) -> None:
    with pytest.raises(GraphError, match="notAnAttribute"):
        extract_from(sandbox, select=["userPrincipalName", "notAnAttribute"])


def test_an_assignment_to_a_removed_role_quarantines_the_user(sandbox: SandboxProcess) -> None:
    app_id = sandbox.tenant["service_principal"]["application_object_id"]
    roles = sandbox.tenant["service_principal"]["appRoles"]
    chatter = "00000000-0000-0000-0000-000000000067"  # Dana's role (assignment asg-5)

    async def remove_role(client: GraphClient) -> None:
        disabled = [{**r, "isEnabled": r["id"] != chatter} for r in roles]
        kept = [r for r in roles if r["id"] != chatter]
        for body in (disabled, kept):
            reply = await client.request(
                "PATCH", f"/applications/{app_id}", kind="application", body=orjson.dumps({"appRoles": body})
            )
            assert reply.status == 204, reply.describe()

    result = extract_from(sandbox, before=remove_role)
    assert DANA not in rows(result)
    [held] = result.quarantined
    assert held.entra_id == DANA and held.user_principal_name == "disabled.user@contoso.example"
    assert held.reasons == [
        f"app role assignment asg-5 (direct) grants app role {chatter}, which the application does not define "
        "(removed, or without a value)"
    ]


def test_progress_is_reported(sandbox: SandboxProcess) -> None:
    messages: list[str] = []
    extract_from(sandbox, progress=messages.append)
    assert messages and messages[-1].startswith("assignments: 5; group members: 2 in 1 groups; users: 7/7")


@pytest.mark.parametrize(
    "rule",
    [
        {"path_regex": "^/v1.0/", "status": 429, "retry_after": 1, "probability": 0.3},
        {"path_regex": "^/v1.0/", "status": 503, "probability": 0.3},
    ],
    ids=["429-storm", "503s"],
)
def test_throttling_and_server_errors_change_nothing_but_the_count(sandbox: SandboxProcess, rule: dict) -> None:
    known = {NORA: ["Standard User"]}
    clean = extract_from(sandbox, known=known)
    sandbox.graph.put("/_sandbox/faults", json=[rule]).raise_for_status()
    stormy = extract_from(sandbox, known=known)
    pd.testing.assert_frame_equal(clean.users, stormy.users)
    faults = stormy.requests.get("graph.throttled", 0) + stormy.requests.get("graph.server_errors", 0)
    assert faults > 0 and stormy.requests.get("graph.retries", 0) > 0
    assert dataclasses.replace(stormy, users=None, delta_link=None, requests={}) == dataclasses.replace(
        clean, users=None, delta_link=None, requests={}
    )
