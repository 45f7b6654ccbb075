"""The Graph emulator's rules in isolation: fixture validation, graph walks, filters, buckets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from include.sandbox.graph import build_service
from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.models import ControlError, FixtureError, Tenant
from include.sandbox.graph.odata import PropertyResolver, decode_token, encode_token, parse_filter
from include.sandbox.graph.schema import USER_PROPERTIES
from include.sandbox.graph.throttling import Throttle, request_cost, tenant_size_limit

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "example-tenant.json"


@pytest.fixture
def fixture() -> dict[str, Any]:
    return orjson.loads(EXAMPLE.read_bytes())


def broken(fixture: dict[str, Any], change: Any) -> str:
    data = copy.deepcopy(fixture)
    change(data)
    with pytest.raises(FixtureError) as caught:
        Tenant(data)
    return str(caught.value)


def test_fixture_validation_names_the_problem(fixture: dict[str, Any]) -> None:
    assert "tenant_id" in broken(fixture, lambda d: d.pop("tenant_id"))
    assert "duplicate user id 00000000-0000-0000-0000-000000000001" in broken(
        fixture, lambda d: d["users"].append(dict(d["users"][0], userPrincipalName="other@contoso.example"))
    )
    assert "userPrincipalName adele.vance@contoso.example is used twice" in broken(
        fixture, lambda d: d["users"].append(dict(d["users"][0], id="00000000-0000-0000-0000-0000000000aa"))
    )
    assert "assignment principal 'ghost' not found" in broken(
        fixture, lambda d: d["appRoleAssignments"][0].update(principalId="ghost")
    )
    assert "appRoleId 'Standard User' is not a GUID" in broken(
        fixture, lambda d: d["appRoleAssignments"][0].update(appRoleId="Standard User")
    )
    assert "principalType 'Group'" in broken(
        fixture, lambda d: d["appRoleAssignments"][0].update(principalType="Group")
    )
    assert "member 'ghost'" in broken(fixture, lambda d: d["groups"][0]["members"].append("ghost"))
    assert "service_principal.appId" in broken(fixture, lambda d: d["service_principal"].pop("appId"))
    assert "must be a GUID" in broken(fixture, lambda d: d["service_principal"]["appRoles"][0].update(id="x"))
    assert "throttle.limit_per_10s" in broken(fixture, lambda d: d.update(throttle={"limit_per_10s": 0}))
    assert "clients[0] has no client_secret" in broken(fixture, lambda d: d["clients"][0].pop("client_secret"))


def test_build_service_reports_bad_fixtures_as_value_errors(fixture: dict[str, Any]) -> None:
    fixture.pop("service_principal")
    with pytest.raises(ValueError, match="service_principal is missing"):
        build_service(fixture, base_url="https://127.0.0.1:1")


def test_dump_round_trips_the_fixture_and_its_extensions(fixture: dict[str, Any]) -> None:
    fixture["throttle"] = {"limit_per_10s": 50}
    original = copy.deepcopy(fixture)
    assert Tenant(fixture).dump() == original


def test_nested_groups_with_a_cycle_are_flattened_once(fixture: dict[str, Any]) -> None:
    emea, france = fixture["groups"]
    france["members"].append(emea["id"])  # France contains EMEA again
    tenant = Tenant(fixture)
    assert tenant.transitive_members(emea["id"]) == [
        "00000000-0000-0000-0000-000000000003",
        france["id"],
        "00000000-0000-0000-0000-000000000004",
    ]
    tenant.delete_user("00000000-0000-0000-0000-000000000004", permanent=False)
    assert "00000000-0000-0000-0000-000000000004" not in tenant.transitive_members(emea["id"])


def test_purging_a_user_drops_memberships_and_assignments(fixture: dict[str, Any]) -> None:
    tenant = Tenant(fixture)
    megan = "00000000-0000-0000-0000-000000000003"
    tenant.add_assignment({"principalId": megan, "appRoleId": "00000000-0000-0000-0000-000000000066"})
    tenant.delete_user(megan, permanent=True)
    assert megan not in tenant.groups["00000000-0000-0000-0000-0000000000c9"]["members"]
    assert all(a["principalId"] != megan for a in tenant.assignments.values())
    assert [c.kind for c in tenant.changes] == ["assignment", "user_deleted"]
    with pytest.raises(ControlError) as caught:
        tenant.delete_user(megan, permanent=True)
    assert caught.value.status == 404


def test_app_roles_cannot_drop_an_enabled_role(fixture: dict[str, Any]) -> None:
    tenant = Tenant(fixture)
    roles = copy.deepcopy(tenant.app_roles)
    with pytest.raises(errors.GraphError) as caught:
        tenant.set_app_roles(roles[:2])
    assert caught.value.code == "CannotDeleteOrUpdateEnabledEntitlement"
    roles[2]["isEnabled"] = False
    tenant.set_app_roles(roles)
    tenant.set_app_roles(roles[:2])
    assert [r["value"] for r in tenant.sp["appRoles"]] == ["Standard User", "System Administrator"]
    # asg-5 still names the removed role, as in Graph; the dumped state loads again.
    assert Tenant(copy.deepcopy(tenant.dump())).assignments.get("asg-5")["appRoleId"] == roles[2]["id"]
    with pytest.raises(ControlError) as refused:
        tenant.add_assignment({"principalId": "00000000-0000-0000-0000-000000000007", "appRoleId": roles[2]["id"]})
    assert refused.value.status == 400


def user_filter(text: str) -> Any:
    return parse_filter({"filter": text}, PropertyResolver("microsoft.graph.user", USER_PROPERTIES))


def test_filter_parser_subset() -> None:
    adele = {"id": "a", "displayName": "Adele Vance", "accountEnabled": True, "department": "Sales"}
    alex = {"id": "b", "displayName": "Alex Wilber", "accountEnabled": False, "department": "it"}
    ids = user_filter("id eq 'a' or id eq 'b' or id in ('c', 'd')")
    assert ids.ids == ["a", "b", "c", "d"] and ids.or_clauses == 4
    mixed = user_filter("startswith(displayName,'ad') and (accountEnabled eq true or department eq 'IT')")
    assert mixed.ids is None
    assert [mixed.predicate(u) for u in (adele, alex)] == [True, False]
    assert user_filter("not (department ne 'sales')").predicate(adele)
    with pytest.raises(errors.GraphError) as caught:
        user_filter("displayName gt 'a'")
    assert caught.value.code == "Request_UnsupportedQuery"
    with pytest.raises(errors.GraphError):
        user_filter("id eq 'a' or")


def test_tokens_are_opaque_round_trips() -> None:
    token = encode_token({"p": 12, "s": ["id"]})
    assert decode_token(token) == {"p": 12, "s": ["id"]}
    with pytest.raises(ValueError):
        decode_token("%%%")


def test_published_request_costs() -> None:
    assert request_cost("GET", "/users", {}) == 2
    assert request_cost("GET", "/users", {"select": "id"}) == 1
    assert request_cost("GET", "/users", {"select": "id", "top": "5"}) == 1  # never below 1
    assert request_cost("GET", "/groups/g/transitiveMembers/graph.user", {"select": "id"}) == 4
    assert request_cost("GET", "/groups/g/members", {"expand": "manager"}) == 4
    assert request_cost("POST", "/directoryObjects/getByIds", {}) == 3
    assert request_cost("GET", "/users/delta()", {"select": "id"}) == 1
    assert [tenant_size_limit(n) for n in (49, 50, 500, 501)] == [3500, 5000, 5000, 8000]


def test_bucket_refills_over_ten_seconds_and_scopes_per_app() -> None:
    now = [0.0]
    throttle = Throttle("tenant", 10, clock=lambda: now[0])
    for _ in range(5):
        assert throttle.charge("app", "GET", "/users", {}).retry_after is None
    refused = throttle.charge("app", "GET", "/users", {})
    assert refused.retry_after == 2  # 2 RU at 1 RU/s
    assert refused.headers["x-ms-throttle-scope"] == "Tenant_Application/ReadWrite/app/tenant"
    assert throttle.charge("other-app", "GET", "/users", {}).retry_after is None
    now[0] = 2.0
    granted = throttle.charge("app", "GET", "/users", {})
    assert granted.retry_after is None and granted.headers["x-ms-throttle-limit-percentage"] == "1.0"
