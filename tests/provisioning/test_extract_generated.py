"""Extraction of a generated 5,000-user tenant: every scope and role case, the request
budget (at most 2.5 Graph requests per 1,000 users for a full read) and a 429 storm.

The expected scope is computed here from the fixture itself (direct assignments plus a walk
of the nested groups that tolerates cycles), independently of the code under test.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pandas as pd
import pytest

from include.provisioning.graph import Extraction, GraphSettings
from include.provisioning.model import DEFAULT_ACCESS_ROLE_ID, DEFAULT_ACCESS_ROLE_VALUE, Mode
from tests.provisioning import test_extract_full
from tests.provisioning.test_extract_full import rows
from tests.sandbox_process import SandboxProcess, generate_tenant

USERS = 5000
SELECT = ["userPrincipalName", "mail", "givenName", "surname", "displayName", "preferredLanguage", "employeeId"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = generate_tenant(tmp_path_factory.mktemp("tenant5k"), USERS, seed=11)
    return orjson.loads((out / "tenant.json").read_bytes())


@pytest.fixture
def tenant(sandbox: SandboxProcess, generated: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The session sandbox holding the generated tenant (the next test's reset restores it)."""
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(generated)).raise_for_status()
    sandbox.graph.delete("/_sandbox/requests").raise_for_status()
    yield generated


def extract_from(sandbox: SandboxProcess, tenant: dict[str, Any], **kwargs: Any) -> Extraction:
    """Extract with the generated tenant's own ids and credentials."""
    client = tenant["clients"][0]
    settings = dataclasses.replace(
        GraphSettings.from_env(sandbox.settings),
        tenant_id=tenant["tenant_id"],
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        service_principal_id=tenant["service_principal"]["id"],
    )
    return test_extract_full.extract_from(sandbox, select=SELECT, settings=settings, **kwargs)


def expected_scope(tenant: dict[str, Any]) -> dict[str, set[str]]:
    """User id → role values, straight from the fixture."""
    deleted = {u["id"] for u in tenant["users"] if u.get("deletedDateTime")}
    users = {u["id"] for u in tenant["users"]}
    groups = {g["id"]: g["members"] for g in tenant["groups"]}
    values = {r["id"]: r["value"] for r in tenant["service_principal"]["appRoles"]}
    values[DEFAULT_ACCESS_ROLE_ID] = DEFAULT_ACCESS_ROLE_VALUE
    roles: dict[str, set[str]] = defaultdict(set)
    for assignment in tenant["appRoleAssignments"]:
        value = values[assignment.get("appRoleId", DEFAULT_ACCESS_ROLE_ID)]
        principal = assignment["principalId"]
        if principal in users:
            members = {principal}
        else:
            members, seen, queue = set(), {principal}, [principal]
            while queue:
                for member in groups[queue.pop()]:
                    if member in groups and member not in seen:
                        seen.add(member)
                        queue.append(member)
                    elif member in users:
                        members.add(member)
        for user_id in members - deleted:
            roles[user_id].add(value)
    for found in roles.values():
        if len(found) > 1:
            found.discard(DEFAULT_ACCESS_ROLE_VALUE)
    return roles


def test_full_read_matches_the_fixture_within_the_request_budget(
    sandbox: SandboxProcess, tenant: dict[str, Any]
) -> None:
    result = extract_from(sandbox, tenant)
    users = rows(result)
    expected = expected_scope(tenant)
    assert set(users) == set(expected)
    assert {uid: set(row["appRoleAssignments"]) for uid, row in users.items()} == expected
    assert any(len(r) > 1 for r in expected.values()), "the tenant has conflicting roles for the mapping"
    assert any(r == {DEFAULT_ACCESS_ROLE_VALUE} for r in expected.values())
    disabled = {u["id"] for u in tenant["users"] if u.get("accountEnabled") is False}
    assert {uid for uid, row in users.items() if row["scopeReason"] == "disabled"} == disabled & set(expected)
    assert all(pd.isna(row["scopeReason"]) for uid, row in users.items() if uid not in disabled)
    by_id = {u["id"]: u for u in tenant["users"]}
    for uid, row in users.items():  # attributes as Graph holds them, nulls as NaN
        for name in ("employeeId", "surname", "givenName", "mail"):
            value = by_id[uid].get(name)
            assert (pd.isna(row[name]) and value is None) or row[name] == value, (uid, name)
    graph = sandbox.requests("graph")
    assert graph["total"] <= 2.5 * USERS / 1000, graph  # token request included


def test_no_change_and_a_one_percent_change(sandbox: SandboxProcess, tenant: dict[str, Any]) -> None:
    full = extract_from(sandbox, tenant)
    known = {row["id"]: list(row["appRoleAssignments"]) for row in full.users.to_dict("records")}
    quiet = extract_from(sandbox, tenant, mode=Mode.AUTO, delta_link=full.delta_link, known=known)
    assert quiet.mode == Mode.INCREMENTAL and quiet.users.empty
    changed = sorted(known)[:50]
    for user_id in changed:
        sandbox.graph.patch(f"/_sandbox/users/{user_id}", json={"displayName": f"Renamed {user_id[:8]}"})
    delta = extract_from(sandbox, tenant, mode=Mode.AUTO, delta_link=quiet.delta_link, known=known)
    assert sorted(rows(delta)) == changed
    assert all(row["displayName"].startswith("Renamed ") for row in rows(delta).values())


def test_a_429_storm_changes_only_the_duration(sandbox: SandboxProcess, tenant: dict[str, Any]) -> None:
    clean = extract_from(sandbox, tenant)
    sandbox.graph.put(
        "/_sandbox/faults", json=[{"path_regex": "^/v1.0/", "status": 429, "retry_after": 1, "probability": 0.3}]
    ).raise_for_status()
    stormy = extract_from(sandbox, tenant)
    pd.testing.assert_frame_equal(clean.users, stormy.users)
    assert stormy.requests["graph.throttled"] >= 3


def test_the_generated_scenario_covers_nested_groups_and_cycles(generated: dict[str, Any]) -> None:
    """Guard: the cases above are only meaningful if the fixture has them."""
    groups = {g["id"]: g["members"] for g in generated["groups"]}

    def reaches_itself(start: str) -> bool:
        seen, queue = set(), [start]
        while queue:
            for member in groups[queue.pop()]:
                if member == start:
                    return True
                if member in groups and member not in seen:
                    seen.add(member)
                    queue.append(member)
        return False

    assert any(m in groups for members in groups.values() for m in members), "nested groups"
    assert any(reaches_itself(g) for g in groups), "a membership cycle"
