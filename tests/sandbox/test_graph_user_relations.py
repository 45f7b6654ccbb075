"""One user's relations on the wire, as provision on demand reads them: ``GET /users/{id | upn}``,
the user's ``appRoleAssignments`` (own, plus those of groups the user is a direct member of, as
Graph documents), ``transitiveMemberOf`` (with the ``microsoft.graph.group`` cast), a group's
``appRoleAssignments``, the bare GUID literal of ``$filter=resourceId eq {guid}``, and the count of
requests made inside a ``$batch`` by their own route."""

from __future__ import annotations

from typing import Any

from tests.sandbox.test_graph_errors import SP_ID, bearer
from tests.sandbox_process import SandboxProcess

MEGAN, ZOE, NOT_ASSIGNED = (
    "00000000-0000-0000-0000-000000000003",
    "00000000-0000-0000-0000-000000000004",
    "00000000-0000-0000-0000-000000000007",
)
SALES_EMEA, SALES_FRANCE = "00000000-0000-0000-0000-0000000000c9", "00000000-0000-0000-0000-0000000000ca"


def _get(sandbox: SandboxProcess, path: str, **params: str) -> dict[str, Any]:
    response = sandbox.graph.get(f"/v1.0{path}", params=params, headers=bearer(sandbox))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_users_assignments_include_those_of_groups_they_are_a_direct_member_of(sandbox: SandboxProcess) -> None:
    megan = _get(sandbox, "/users/megan.bowen@contoso.example/appRoleAssignments")
    assert [(a["id"], a["principalType"], a["principalId"]) for a in megan["value"]] == [("asg-3", "Group", SALES_EMEA)]
    assert megan["value"][0]["principalDisplayName"] == "Sales EMEA"
    assert megan["value"][0]["resourceId"] == SP_ID
    # Zoe is in Sales EMEA only through Sales EMEA - France: not a direct member, so nothing here.
    assert _get(sandbox, f"/users/{ZOE}/appRoleAssignments")["value"] == []
    adele = _get(
        sandbox,
        "/users/adele.vance@contoso.example/appRoleAssignments",
        **{"$filter": f"resourceId eq {SP_ID}", "$select": "id,appRoleId,principalType"},
    )
    assert adele["value"] == [
        {"id": "asg-1", "appRoleId": "00000000-0000-0000-0000-000000000065", "principalType": "User"}
    ]
    other = {"$filter": "resourceId eq 11111111-2222-3333-4444-555555555555"}
    assert _get(sandbox, "/users/adele.vance@contoso.example/appRoleAssignments", **other)["value"] == []


def test_transitive_member_of_lists_nested_groups_nearest_first(sandbox: SandboxProcess) -> None:
    cast = _get(sandbox, f"/users/{ZOE}/transitiveMemberOf/microsoft.graph.group", **{"$select": "id,displayName"})
    assert cast["value"] == [
        {"id": SALES_FRANCE, "displayName": "Sales EMEA - France"},
        {"id": SALES_EMEA, "displayName": "Sales EMEA"},
    ]
    plain = _get(sandbox, f"/users/{ZOE}/transitiveMemberOf", **{"$count": "true"})
    assert plain["@odata.count"] == 2
    assert {item["@odata.type"] for item in plain["value"]} == {"#microsoft.graph.group"}
    assert _get(sandbox, f"/users/{NOT_ASSIGNED}/transitiveMemberOf/graph.group")["value"] == []


def test_a_groups_assignments_and_unknown_objects(sandbox: SandboxProcess) -> None:
    assert [a["id"] for a in _get(sandbox, f"/groups/{SALES_EMEA}/appRoleAssignments")["value"]] == ["asg-3"]
    assert _get(sandbox, f"/groups/{SALES_FRANCE}/appRoleAssignments")["value"] == []
    for relation in ("appRoleAssignments", "transitiveMemberOf"):
        path = f"/users/nobody@nowhere.example/{relation}"
        response = sandbox.graph.get(f"/v1.0{path}", headers=bearer(sandbox))
        assert response.status_code == 404 and response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_assignment_changes_are_seen_by_the_per_user_reads(sandbox: SandboxProcess) -> None:
    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-3").raise_for_status()
    assert _get(sandbox, f"/users/{MEGAN}/appRoleAssignments")["value"] == []
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments", json={"id": "asg-9", "principalId": SALES_FRANCE, "principalType": "Group"}
    ).raise_for_status()
    assert [a["id"] for a in _get(sandbox, f"/users/{ZOE}/appRoleAssignments")["value"]] == ["asg-9"]
    sandbox.graph.delete(f"/_sandbox/groups/{SALES_FRANCE}/members/{ZOE}").raise_for_status()
    assert _get(sandbox, f"/users/{ZOE}/transitiveMemberOf/microsoft.graph.group")["value"] == []


def test_requests_inside_a_batch_are_counted_by_their_own_route(sandbox: SandboxProcess) -> None:
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{ZOE}?$select=id"},
            {"id": "2", "method": "GET", "url": f"/users/{ZOE}/transitiveMemberOf/microsoft.graph.group"},
            {"id": "3", "method": "GET", "url": "/nothing/here"},
        ]
    }
    headers = bearer(sandbox)
    sandbox.graph.delete("/_sandbox/requests").raise_for_status()
    sandbox.graph.post("/v1.0/$batch", json=body, headers=headers).raise_for_status()
    counts = sandbox.requests("graph")
    assert counts["by_route"] == {"POST /v1.0/$batch": 1} and counts["total"] == 1
    assert counts["batched_by_route"] == {
        "GET /v1.0/users/{user_id}": 1,
        "GET /v1.0/users/{user_id}/transitiveMemberOf/microsoft.graph.group": 1,
        "GET (unmatched)": 1,
    }
