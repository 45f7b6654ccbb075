"""Graph's and Entra's error shapes, limits and throttling, checked on the wire with plain httpx."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tests.sandbox_process import SandboxProcess

ADELE = "00000000-0000-0000-0000-000000000001"
SP_ID = "00000000-0000-0000-0000-000000002329"
APP_OBJECT_ID = "00000000-0000-0000-0000-00000000232b"


def token_form(sandbox: SandboxProcess, **overrides: str) -> dict[str, str]:
    client = sandbox.tenant["clients"][0]
    form = {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "grant_type": "client_credentials",
        "scope": f"{sandbox.graph_url}/.default",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v != ""}


def token_url(sandbox: SandboxProcess, tenant: str | None = None) -> str:
    return f"/{tenant or sandbox.tenant['tenant_id']}/oauth2/v2.0/token"


def bearer(sandbox: SandboxProcess) -> dict[str, str]:
    response = sandbox.graph.post(token_url(sandbox), data=token_form(sandbox))
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_graph_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert inner["client-request-id"] == response.headers["client-request-id"]
    assert len(inner["date"]) == 19 and inner["date"][10] == "T"


# --- Entra token endpoint ----------------------------------------------------------------------


def test_token_answer_has_entra_shape(sandbox: SandboxProcess) -> None:
    response = sandbox.graph.post(token_url(sandbox), data=token_form(sandbox))
    body = response.json()
    assert response.status_code == 200
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 3599, 3599)
    assert body["access_token"].count(".") == 2


@pytest.mark.parametrize(
    ("form", "tenant", "expected"),
    [
        ({"client_secret": "wrong"}, None, (401, "invalid_client", 7000215)),
        ({"client_id": "11111111-1111-1111-1111-111111111111"}, None, (400, "unauthorized_client", 700016)),
        ({}, "22222222-2222-2222-2222-222222222222", (400, "invalid_request", 90002)),
        ({"client_id": ""}, None, (400, "invalid_request", 900144)),
        ({"scope": "User.Read"}, None, (400, "invalid_scope", 70011)),
        ({"grant_type": "password"}, None, (400, "unsupported_grant_type", 70003)),
    ],
)
def test_token_errors_carry_aadsts_codes(
    sandbox: SandboxProcess, form: dict[str, str], tenant: str | None, expected: tuple[int, str, int]
) -> None:
    status, error, code = expected
    response = sandbox.graph.post(
        token_url(sandbox, tenant), data=token_form(sandbox, **form), headers={"client-request-id": "corr-1"}
    )
    body = response.json()
    assert response.status_code == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"] and body["correlation_id"] == "corr-1"
    assert {"timestamp", "trace_id", "error_uri"} <= body.keys()


def test_short_token_lifetime_from_the_fixture_expires_tokens(sandbox: SandboxProcess) -> None:
    fixture = {**sandbox.tenant, "token_lifetime_seconds": 1}
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()
    response = sandbox.graph.post(token_url(sandbox), data=token_form(sandbox))
    assert response.json()["expires_in"] == 1
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert sandbox.graph.get(f"/v1.0/users/{ADELE}", headers=headers).status_code == 200
    time.sleep(1.1)
    expired = sandbox.graph.get(f"/v1.0/users/{ADELE}", headers=headers)
    assert_graph_error(expired, 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")


def test_discovery_documents_point_back_at_the_sandbox(sandbox: SandboxProcess) -> None:
    tenant = sandbox.tenant["tenant_id"]
    config = sandbox.graph.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{sandbox.graph_url}/{tenant}/oauth2/v2.0/token"
    assert config["issuer"] == f"{sandbox.graph_url}/{tenant}/v2.0"
    unknown = sandbox.graph.get("/33333333-3333-3333-3333-333333333333/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [90002]
    instance = sandbox.graph.get(
        "/common/discovery/instance",
        params={"api-version": "1.0", "authorization_endpoint": f"{sandbox.graph_url}/{tenant}/oauth2/v2.0/authorize"},
    ).json()
    assert (
        instance["tenant_discovery_endpoint"] == f"{sandbox.graph_url}/{tenant}/v2.0/.well-known/openid-configuration"
    )


# --- bearer tokens on /v1.0 --------------------------------------------------------------------


def test_missing_malformed_and_expired_tokens_are_401(sandbox: SandboxProcess) -> None:
    missing = sandbox.graph.get("/v1.0/users")
    assert_graph_error(missing, 401, "InvalidAuthenticationToken", "Access token is empty.")
    assert missing.headers["WWW-Authenticate"].startswith('Bearer realm=""')
    malformed = sandbox.graph.get("/v1.0/users", headers={"Authorization": "Bearer not-a-jwt"})
    assert_graph_error(malformed, 401, "InvalidAuthenticationToken")
    headers = bearer(sandbox)
    assert sandbox.graph.get("/v1.0/users", headers=headers).status_code == 200
    assert sandbox.graph.post("/_sandbox/tokens/expire").json()["expired"] >= 1
    expired = sandbox.graph.get("/v1.0/users", headers=headers)
    assert_graph_error(expired, 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
    assert "claims=" not in expired.headers["WWW-Authenticate"]


# --- routing and query options -----------------------------------------------------------------


def test_unknown_segments_ids_and_methods(sandbox: SandboxProcess) -> None:
    headers = bearer(sandbox)
    get = sandbox.graph.get
    assert_graph_error(
        get("/v1.0/usres", headers=headers), 400, "BadRequest", "Resource not found for the segment 'usres'."
    )
    assert_graph_error(
        get(f"/v1.0/users/{ADELE}/photo", headers=headers),
        400,
        "BadRequest",
        "Resource not found for the segment 'photo'.",
    )
    ghost = "00000000-0000-0000-0000-0000000000ff"
    assert_graph_error(
        get(f"/v1.0/users/{ghost}", headers=headers),
        404,
        "Request_ResourceNotFound",
        f"Resource '{ghost}' does not exist or one of its queried reference-property objects are not present.",
    )
    missing_group = get(f"/v1.0/groups/{ghost}/transitiveMembers", headers=headers)
    assert_graph_error(missing_group, 404, "Request_ResourceNotFound")
    assert missing_group.headers["x-ms-resource-unit"] == "5"  # failed requests still cost their units
    assert_graph_error(sandbox.graph.delete("/v1.0/users", headers=headers), 405, "Request_BadRequest")


def test_query_option_limits(sandbox: SandboxProcess) -> None:
    headers = bearer(sandbox)
    get = sandbox.graph.get
    assert_graph_error(
        get("/v1.0/users", params={"$top": "1000"}, headers=headers),
        400,
        "Request_UnsupportedQuery",
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
    )
    assert get("/v1.0/users", params={"$top": "999"}, headers=headers).status_code == 200
    ids = [f"'00000000-0000-0000-0000-{i:012x}'" for i in range(1, 17)]
    assert get("/v1.0/users", params={"$filter": f"id in ({','.join(ids[:15])})"}, headers=headers).status_code == 200
    assert_graph_error(
        get("/v1.0/users", params={"$filter": f"id in ({','.join(ids)})"}, headers=headers),
        400,
        "Request_UnsupportedQuery",
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.",
    )
    assert_graph_error(
        get("/v1.0/users", params={"$select": "displayName,favouriteColour"}, headers=headers),
        400,
        "BadRequest",
        "Parsing OData Select and Expand failed: Could not find a property named 'favouriteColour' on type "
        "'microsoft.graph.user'.",
    )
    assert_graph_error(get("/v1.0/users", params={"$filter": "id eq"}, headers=headers), 400, "BadRequest")


def test_select_serves_any_fixture_property_and_nulls_absent_ones(sandbox: SandboxProcess) -> None:
    headers = bearer(sandbox)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"extension_abc_costCenter": "CC-7", "city": "Paris"})
    user = sandbox.graph.get(
        f"/v1.0/users/{ADELE}", params={"$select": "CITY,extension_abc_costCenter,mobilePhone"}, headers=headers
    ).json()
    assert user["city"] == "Paris" and user["extension_abc_costCenter"] == "CC-7" and user["mobilePhone"] is None
    by_upn = sandbox.graph.get("/v1.0/users/ADELE.VANCE@contoso.example", headers=headers).json()
    assert by_upn["id"] == ADELE
    assert set(by_upn) - {"@odata.context"} == {
        "id", "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName",
    }  # fmt: skip
    enabled = sandbox.graph.get(
        "/v1.0/users", params={"$filter": "accountEnabled eq false", "$select": "id"}, headers=headers
    ).json()["value"]
    assert enabled == [{"id": "00000000-0000-0000-0000-000000000006"}]


def test_batch_limits(sandbox: SandboxProcess) -> None:
    headers = bearer(sandbox)
    many = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]}
    assert_graph_error(sandbox.graph.post("/v1.0/$batch", json=many, headers=headers), 400, "BadRequest")
    twice = {"requests": [{"id": "1", "method": "GET", "url": "/users"}] * 2}
    assert_graph_error(
        sandbox.graph.post("/v1.0/$batch", json=twice, headers=headers),
        400,
        "BadRequest",
        "Request Id 1 has to be unique in a batch.",
    )
    assert_graph_error(
        sandbox.graph.post("/v1.0/$batch", json={"requests": []}, headers=headers),
        400,
        "BadRequest",
        "Invalid batch payload format.",
    )
    assert (
        sandbox.graph.post("/v1.0/$batch", json={"requests": many["requests"][:20]}, headers=headers).status_code == 200
    )


def test_patch_application_rejects_non_guid_role_ids(sandbox: SandboxProcess) -> None:
    role = {"id": "not-a-guid", "value": "X", "allowedMemberTypes": ["User"], "isEnabled": True}
    response = sandbox.graph.patch(
        f"/v1.0/applications/{APP_OBJECT_ID}", json={"appRoles": [role]}, headers=bearer(sandbox)
    )
    assert_graph_error(
        response, 400, "BadRequest", "Cannot convert the literal 'not-a-guid' to the expected type 'Edm.Guid'."
    )
    no_types = {**role, "id": "11111111-2222-3333-4444-555555555555", "allowedMemberTypes": []}
    existing = sandbox.tenant["service_principal"]["appRoles"]
    response = sandbox.graph.patch(
        f"/v1.0/applications/{APP_OBJECT_ID}", json={"appRoles": [*existing, no_types]}, headers=bearer(sandbox)
    )
    assert_graph_error(response, 400, "Request_BadRequest")


# --- throttling and faults ---------------------------------------------------------------------


def throttled_tenant(sandbox: SandboxProcess, limit: int) -> None:
    fixture = {**sandbox.tenant, "throttle": {"limit_per_10s": limit}}
    sandbox.graph.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()


def test_resource_unit_bucket_headers_and_429(sandbox: SandboxProcess) -> None:
    throttled_tenant(sandbox, 10)
    headers = bearer(sandbox)
    client_id, tenant_id = sandbox.tenant["clients"][0]["client_id"], sandbox.tenant["tenant_id"]
    seen: list[httpx.Response] = []
    for _ in range(6):  # GET /users costs 2 RU (1 with $select)
        seen.append(sandbox.graph.get("/v1.0/users", headers=headers))
    assert [r.status_code for r in seen] == [200] * 5 + [429]
    assert [r.headers.get("x-ms-resource-unit") for r in seen[:5]] == ["2"] * 5
    assert "x-ms-throttle-limit-percentage" not in seen[0].headers
    assert seen[4].headers["x-ms-throttle-limit-percentage"] == "1.0"
    throttled = seen[5]
    assert_graph_error(throttled, 429, "TooManyRequests", "Please retry again later.")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-ms-throttle-scope"] == f"Tenant_Application/ReadWrite/{client_id}/{tenant_id}"
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"


def test_batch_sub_requests_are_charged_and_throttled_one_by_one(sandbox: SandboxProcess) -> None:
    throttled_tenant(sandbox, 6)
    batch = {"requests": [{"id": str(i), "method": "GET", "url": f"/users/{ADELE}?$select=id"} for i in range(8)]}
    response = sandbox.graph.post("/v1.0/$batch", json=batch, headers=bearer(sandbox))
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["responses"]
    assert [r["status"] for r in items] == [200] * 6 + [429] * 2
    assert items[0]["headers"]["x-ms-resource-unit"] == "1"
    assert items[6]["body"]["error"]["code"] == "TooManyRequests"
    assert int(items[6]["headers"]["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "generalException"), (503, "serviceNotAvailable"), (504, "gatewayTimeout"), (429, "TooManyRequests")],
)
def test_fault_rules_answer_in_graph_shape(sandbox: SandboxProcess, status: int, code: str) -> None:
    rule = {"method": "GET", "path_regex": "^/v1.0/users$", "status": status, "times": 1}
    sandbox.graph.put("/_sandbox/faults", json=[rule]).raise_for_status()
    headers = bearer(sandbox)
    response = sandbox.graph.get("/v1.0/users", headers=headers)
    assert_graph_error(response, status, code)
    if status == 429:
        assert response.headers["Retry-After"] == "1"
    assert sandbox.graph.get("/v1.0/users", headers=headers).status_code == 200


def test_fault_rules_reach_batch_sub_requests(sandbox: SandboxProcess) -> None:
    rule = {"method": "GET", "path_regex": "^/v1.0/users/", "status": 503, "retry_after": 2, "times": 1}
    sandbox.graph.put("/_sandbox/faults", json=[rule]).raise_for_status()
    batch = {"requests": [{"id": str(i), "method": "GET", "url": f"/users/{ADELE}"} for i in range(2)]}
    items = sandbox.graph.post("/v1.0/$batch", json=batch, headers=bearer(sandbox)).json()["responses"]
    assert [r["status"] for r in items] == [503, 200]
    assert items[0]["body"]["error"]["code"] == "serviceNotAvailable" and items[0]["headers"]["Retry-After"] == "2"


# --- control API -------------------------------------------------------------------------------


def test_control_api_rejects_unknown_ids_and_conflicts(sandbox: SandboxProcess) -> None:
    control = sandbox.graph
    ghost = "00000000-0000-0000-0000-0000000000ff"
    for response, named in (
        (control.patch(f"/_sandbox/users/{ghost}", json={"jobTitle": "x"}), ghost),
        (control.delete(f"/_sandbox/users/{ghost}"), ghost),
        (control.delete("/_sandbox/appRoleAssignments/nope"), "nope"),
        (control.post(f"/_sandbox/groups/{ghost}/members", json={"id": ADELE}), ghost),
        (control.delete(f"/_sandbox/groups/00000000-0000-0000-0000-0000000000c9/members/{ADELE}"), ADELE),
        (control.post("/_sandbox/appRoleAssignments", json={"principalId": ghost}), ghost),
    ):
        assert response.status_code == 404
        assert named in response.json()["error"]
    duplicate = control.post("/_sandbox/users", json={"id": ADELE, "userPrincipalName": "x@contoso.example"})
    assert duplicate.status_code == 409
    taken = control.patch(
        "/_sandbox/users/00000000-0000-0000-0000-000000000002",
        json={"userPrincipalName": "Adele.Vance@contoso.example"},
    )
    assert taken.status_code == 409 and "already used" in taken.json()["error"]
    same_role = control.post(
        "/_sandbox/appRoleAssignments",
        json={"principalId": ADELE, "appRoleId": "00000000-0000-0000-0000-000000000065"},
    )
    assert same_role.status_code == 409


def test_control_api_changes_show_in_the_api(sandbox: SandboxProcess) -> None:
    headers = bearer(sandbox)
    control = sandbox.graph
    created = control.post(
        "/_sandbox/appRoleAssignments",
        json={
            "principalId": "00000000-0000-0000-0000-000000000007",
            "appRoleId": "00000000-0000-0000-0000-000000000066",
        },
    )
    assert created.status_code == 201 and created.json()["principalType"] == "User"
    control.post(
        "/_sandbox/groups/00000000-0000-0000-0000-0000000000ca/members",
        json={"id": "00000000-0000-0000-0000-000000000002"},
    ).raise_for_status()
    control.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()
    control.delete("/_sandbox/users/00000000-0000-0000-0000-000000000005").raise_for_status()
    assigned = sandbox.graph.get(f"/v1.0/servicePrincipals/{SP_ID}/appRoleAssignedTo", headers=headers).json()
    principals = {a["principalId"][-1] for a in assigned["value"]}
    assert principals == {"2", "9", "6", "7"}  # asg-1 removed, user 5 soft-deleted, user 7 added
    members = sandbox.graph.get(
        "/v1.0/groups/00000000-0000-0000-0000-0000000000c9/transitiveMembers/microsoft.graph.user",
        params={"$select": "id"},
        headers=headers,
    ).json()["value"]
    assert [m["id"][-1] for m in members] == ["3", "4", "2"]
    state = control.get("/_sandbox/state").json()
    soft = next(u for u in state["users"] if u["id"].endswith("05"))
    assert soft["deletedDateTime"]  # soft-deleted users round-trip through the state dump
    assert control.put("/_sandbox/state", content=orjson.dumps(state)).status_code == 200
    listed = sandbox.graph.get("/v1.0/users", params={"$select": "id"}, headers=headers).json()["value"]
    assert "00000000-0000-0000-0000-000000000005" not in {u["id"] for u in listed} and len(listed) == 6


def test_invalid_fixture_is_refused_with_a_clear_message(sandbox: SandboxProcess) -> None:
    bad = {**sandbox.tenant, "appRoleAssignments": [{"id": "x", "principalId": "nobody", "principalType": "User"}]}
    response = sandbox.graph.put("/_sandbox/state", content=orjson.dumps(bad))
    assert response.status_code == 400
    assert "assignment principal 'nobody' not found" in response.json()["error"]
    # the previous state is still served
    assert sandbox.graph.get("/_sandbox/state").json()["appRoleAssignments"][0]["id"] == "asg-1"
