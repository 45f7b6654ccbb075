"""App roles: reading them, importing Salesforce Profiles as roles (typed msgraph-sdk calls)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pytest

from include.provisioning.graph import GraphClient, GraphError, GraphSettings, read_app_roles
from include.provisioning.graph.roles import merge_profiles, sync_app_roles_from_profiles
from tests.provisioning.test_extract_full import NORA, extract_from, rows
from tests.sandbox_process import SandboxProcess

T = TypeVar("T")
PROFILES = ["Standard User", "System Administrator", "Chatter Free User"]


def settings_of(sandbox: SandboxProcess, **changes: Any) -> GraphSettings:
    app_object_id = sandbox.tenant["service_principal"]["application_object_id"]
    base = GraphSettings.from_env(sandbox.settings)
    return dataclasses.replace(base, **{"application_object_id": app_object_id, **changes})


def run(settings: GraphSettings, body: Callable[[GraphClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with GraphClient(settings) as client:
            return await body(client)

    return asyncio.run(main())


def sp_id(sandbox: SandboxProcess) -> str:
    return sandbox.tenant["service_principal"]["id"]


def test_read_app_roles(sandbox: SandboxProcess) -> None:
    roles = run(settings_of(sandbox), lambda client: read_app_roles(client, sp_id(sandbox)))
    assert roles == sandbox.tenant["service_principal"]["appRoles"]


def test_every_profile_becomes_an_enabled_role_once(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox)
    profiles = [*PROFILES, "Marketing User", "Marketing User", " "]
    result = run(settings, lambda client: sync_app_roles_from_profiles(client, sp_id(sandbox), profiles))
    assert result.patched and result.added == ["Marketing User"] and result.unchanged == PROFILES
    assert result.application_object_id == settings.application_object_id and result.not_profiles == []
    after = run(settings, lambda client: read_app_roles(client, sp_id(sandbox)))
    before = sandbox.tenant["service_principal"]["appRoles"]
    assert after[:3] == before, "existing roles keep their ids and settings"
    marketing = after[3]
    assert marketing["value"] == marketing["displayName"] == "Marketing User" and marketing["isEnabled"]
    assert marketing["allowedMemberTypes"] == ["User"] and uuid.UUID(marketing["id"])
    again = run(settings, lambda client: sync_app_roles_from_profiles(client, sp_id(sandbox), profiles))
    assert not again.patched and again.added == [] and again.unchanged == [*PROFILES, "Marketing User"]
    app_patches = sandbox.requests("graph")["by_route"].get("PATCH /v1.0/applications/{app_object_id}")
    assert app_patches == 1


def test_an_imported_role_can_be_assigned_and_is_extracted(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox)
    result = run(settings, lambda client: sync_app_roles_from_profiles(client, sp_id(sandbox), ["Read Only"]))
    role_id = next(r["id"] for r in result.roles if r["value"] == "Read Only")
    assert result.not_profiles == PROFILES, "roles that name no profile are kept and reported"
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments", json={"principalId": NORA, "appRoleId": role_id}
    ).raise_for_status()
    assert rows(extract_from(sandbox))[NORA]["appRoleAssignments"] == ["Read Only"]


def test_a_disabled_role_named_like_a_profile_is_enabled(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox)
    app_id = settings.application_object_id
    roles = [
        {**r, "isEnabled": r["value"] != "Chatter Free User"} for r in sandbox.tenant["service_principal"]["appRoles"]
    ]

    async def body(client: GraphClient) -> Any:
        reply = await client.request(
            "PATCH", f"/applications/{app_id}", kind="application", body=orjson.dumps({"appRoles": roles})
        )
        assert reply.status == 204
        return await sync_app_roles_from_profiles(client, sp_id(sandbox), PROFILES)

    result = run(settings, body)
    assert result.enabled == ["Chatter Free User"] and result.patched
    after = run(settings, lambda client: read_app_roles(client, sp_id(sandbox)))
    assert all(role["isEnabled"] for role in after)


def test_without_the_application_object_id_the_error_says_what_to_set(sandbox: SandboxProcess) -> None:
    settings = settings_of(sandbox, application_object_id=None)
    with pytest.raises(GraphError) as error:
        run(settings, lambda client: sync_app_roles_from_profiles(client, sp_id(sandbox), PROFILES))
    message = str(error.value)
    assert "application_object_id" in message and sandbox.tenant["service_principal"]["appId"] in message


def test_merge_keeps_ids_and_order_and_derives_stable_new_ids() -> None:
    existing = [
        {"id": "a", "value": "Standard User", "isEnabled": True},
        {"id": "b", "value": "Old Profile", "isEnabled": False},
    ]
    roles, result = merge_profiles(existing, ["Standard User", "New"], app_id="app-1")
    assert [r["id"] for r in roles[:2]] == ["a", "b"] and roles[1]["isEnabled"] is False
    assert result.added == ["New"] and result.not_profiles == ["Old Profile"] and result.patched
    again, _ = merge_profiles(existing, ["New"], app_id="app-1")
    assert again[2]["id"] == roles[2]["id"], "the same profile gets the same id on a re-run"
    assert existing[1]["isEnabled"] is False, "the input list is not modified"


def test_the_role_import_reads_as_a_sentence_not_an_object() -> None:
    from include.provisioning.graph.roles import RoleSyncResult

    result = RoleSyncResult(
        "obj-1", added=["Analyst", "Auditor"], enabled=["Support"], unchanged=["A", "B"], patched=True
    )
    assert result.describe() == "2 added (Analyst, Auditor); 1 enabled (Support); 2 unchanged; application updated"
    assert "RoleSyncResult" not in result.describe()
    assert RoleSyncResult("obj-1", unchanged=["A"]).describe() == "1 unchanged; nothing to change"
