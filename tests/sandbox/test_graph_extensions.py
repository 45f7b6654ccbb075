"""Custom data on emulated users as Graph v1.0 shapes it, on the wire: ``onPremisesExtensionAttributes``
(all fifteen fields, unset ones null; PATCH changes only the fields it names) and directory
extensions (served only when selected, left out when they have no value; null deletes), in
``/users``, ``/users/{id}``, ``$filter=id in (...)`` and ``users/delta``; and the fixture rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from include.sandbox.graph.models import FixtureError, Tenant
from tests.sandbox.test_graph_errors import bearer
from tests.sandbox_process import SandboxProcess

ADELE, ALEX = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
DIVISION = "extension_0123456789abcdef0123456789abcdef_division"
COST_CENTER = "extension_0123456789abcdef0123456789abcdef_costCenter"
SKILLS = "extension_0123456789abcdef0123456789abcdef_skills"
FIFTEEN = [f"extensionAttribute{n}" for n in range(1, 16)]
SELECT = f"displayName,onPremisesExtensionAttributes,{DIVISION},{SKILLS}"
EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "example-tenant.json"


def attributes(**values: str | None) -> dict[str, str | None]:
    """``onPremisesExtensionAttributes`` as Graph returns it: all fifteen, these set."""
    return {name: values.get(name) for name in FIFTEEN}


def patch(sandbox: SandboxProcess, user_id: str, body: dict[str, Any]) -> None:
    sandbox.graph.patch(f"/_sandbox/users/{user_id}", json=body).raise_for_status()


def give_adele_custom_data(sandbox: SandboxProcess) -> None:
    patch(
        sandbox,
        ADELE,
        {
            "onPremisesExtensionAttributes": {"extensionAttribute1": "20150123105347.1Z", "extensionAttribute3": "x"},
            DIVISION: "EMEA",
            SKILLS: ["sql", "go"],
            COST_CENTER: "CC-7",
        },
    )


def without_context(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("@odata")}


def test_list_get_and_filter_shape_custom_data_as_graph(sandbox: SandboxProcess) -> None:
    give_adele_custom_data(sandbox)
    headers = bearer(sandbox)
    adele = {
        "id": ADELE,
        "displayName": "Adele Vance",
        "onPremisesExtensionAttributes": attributes(extensionAttribute1="20150123105347.1Z", extensionAttribute3="x"),
        DIVISION: "EMEA",
        SKILLS: ["sql", "go"],
    }
    # Alex has no custom data: the fifteen come back null, the directory extensions not at all.
    alex = {"id": ALEX, "displayName": "Alex Wilber", "onPremisesExtensionAttributes": attributes()}
    listed = sandbox.graph.get("/v1.0/users", params={"$select": f"id,{SELECT}", "$top": "2"}, headers=headers)
    assert listed.json()["value"] == [adele, alex]
    one = sandbox.graph.get(f"/v1.0/users/{ADELE}", params={"$select": f"id,{SELECT}"}, headers=headers).json()
    assert without_context(one) == adele
    by_id = sandbox.graph.get(
        "/v1.0/users",
        params={"$filter": f"id in ('{ALEX}','{ADELE}')", "$select": f"id,{SELECT}"},
        headers=headers,
    ).json()["value"]
    assert by_id == [alex, adele]
    # Not selected, not served (v1.0 returns a directory extension only on $select).
    plain = sandbox.graph.get(f"/v1.0/users/{ADELE}", params={"$select": "id,displayName"}, headers=headers).json()
    assert without_context(plain) == {"id": ADELE, "displayName": "Adele Vance"}


def test_patch_changes_only_the_named_extension_attributes_and_null_deletes_a_directory_extension(
    sandbox: SandboxProcess,
) -> None:
    give_adele_custom_data(sandbox)
    patch(
        sandbox,
        ADELE,
        {"onPremisesExtensionAttributes": {"extensionAttribute1": "20200704000000.0Z", "extensionAttribute3": None}},
    )
    patch(sandbox, ADELE, {DIVISION: None})
    stored = next(u for u in sandbox.graph.get("/_sandbox/state").json()["users"] if u["id"] == ADELE)
    assert stored["onPremisesExtensionAttributes"] == {
        "extensionAttribute1": "20200704000000.0Z",
        "extensionAttribute3": None,
    }
    assert DIVISION not in stored and stored[COST_CENTER] == "CC-7"
    served = sandbox.graph.get(f"/v1.0/users/{ADELE}", params={"$select": SELECT}, headers=bearer(sandbox)).json()
    assert without_context(served) == {
        "displayName": "Adele Vance",
        "onPremisesExtensionAttributes": attributes(extensionAttribute1="20200704000000.0Z"),
        SKILLS: ["sql", "go"],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"onPremisesExtensionAttributes": {"extensionAttribute16": "x"}},
            "onPremisesExtensionAttributes: 'extensionAttribute16' is not one of "
            "extensionAttribute1..extensionAttribute15",
        ),
        (
            {"onPremisesExtensionAttributes": {"extensionAttribute2": 7}},
            "onPremisesExtensionAttributes: extensionAttribute2 must be text or null, found 7",
        ),
        (
            {DIVISION: {"name": "EMEA"}},
            f"{DIVISION}: a directory extension holds text (String, DateTime, Binary), a whole number, "
            "true/false or a list of them, found {'name': 'EMEA'}",
        ),
    ],
)
def test_the_control_api_refuses_values_graph_would_refuse(
    sandbox: SandboxProcess, body: dict[str, Any], message: str
) -> None:
    response = sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json=body)
    assert response.status_code == 400 and message in response.text


def test_a_user_added_through_the_control_api_keeps_graph_shapes(sandbox: SandboxProcess) -> None:
    user = {
        "id": "00000000-0000-0000-0000-000000000008",
        "userPrincipalName": "new.hire@contoso.example",
        "displayName": "New Hire",
        "onPremisesExtensionAttributes": {"extensionAttribute5": "x"},
        DIVISION: None,
    }
    sandbox.graph.post("/_sandbox/users", json=user).raise_for_status()
    stored = next(u for u in sandbox.graph.get("/_sandbox/state").json()["users"] if u["id"] == user["id"])
    assert DIVISION not in stored
    served = sandbox.graph.get(f"/v1.0/users/{user['id']}", params={"$select": SELECT}, headers=bearer(sandbox))
    assert without_context(served.json()) == {
        "displayName": "New Hire",
        "onPremisesExtensionAttributes": attributes(extensionAttribute5="x"),
    }
    refused = sandbox.graph.post("/_sandbox/users", json={**user, "id": "other", DIVISION: 1.5})
    assert refused.status_code == 400 and f"{DIVISION}: a directory extension holds" in refused.text


def delta_round(sandbox: SandboxProcess, url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        page = sandbox.graph.get(url, headers=headers).json()
        items += page["value"]
        if "@odata.deltaLink" in page:
            return items, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]


def test_delta_tracks_selected_custom_data_as_graph_shapes_it(sandbox: SandboxProcess) -> None:
    give_adele_custom_data(sandbox)
    headers = bearer(sandbox)
    first, link = delta_round(sandbox, f"/v1.0/users/delta?$select={SELECT}", headers)
    by_id = {item["id"]: item for item in first}
    assert by_id[ADELE] == {
        "id": ADELE,
        "displayName": "Adele Vance",
        "onPremisesExtensionAttributes": attributes(extensionAttribute1="20150123105347.1Z", extensionAttribute3="x"),
        DIVISION: "EMEA",
        SKILLS: ["sql", "go"],
    }
    assert by_id[ALEX] == {"id": ALEX, "displayName": "Alex Wilber", "onPremisesExtensionAttributes": attributes()}

    patch(sandbox, ADELE, {"onPremisesExtensionAttributes": {"extensionAttribute1": "20200704000000.0Z"}})
    patch(sandbox, ALEX, {COST_CENTER: "CC-9"})  # a directory extension the round does not track
    changed, link = delta_round(sandbox, link, headers)
    assert changed == [
        {
            "id": ADELE,
            "displayName": "Adele Vance",
            "onPremisesExtensionAttributes": attributes(
                extensionAttribute1="20200704000000.0Z", extensionAttribute3="x"
            ),
            DIVISION: "EMEA",
            SKILLS: ["sql", "go"],
        }
    ]

    patch(sandbox, ADELE, {DIVISION: None})
    patch(sandbox, ALEX, {DIVISION: "APAC"})
    changed, _ = delta_round(sandbox, link, headers)
    assert {item["id"]: item for item in changed} == {
        ADELE: {
            "id": ADELE,
            "displayName": "Adele Vance",
            "onPremisesExtensionAttributes": attributes(
                extensionAttribute1="20200704000000.0Z", extensionAttribute3="x"
            ),
            SKILLS: ["sql", "go"],
        },
        ALEX: {
            "id": ALEX,
            "displayName": "Alex Wilber",
            "onPremisesExtensionAttributes": attributes(),
            DIVISION: "APAC",
        },
    }


# --- the fixture format ------------------------------------------------------------------------------


def fixture_with(**adele: Any) -> dict[str, Any]:
    data = orjson.loads(EXAMPLE.read_bytes())
    data["users"][0].update(adele)
    return data


def test_a_fixture_may_carry_custom_data_in_graph_shapes() -> None:
    tenant = Tenant(
        fixture_with(
            onPremisesExtensionAttributes={"extensionAttribute1": "20150123105347.1Z", "extensionAttribute15": None},
            **{DIVISION: "EMEA", SKILLS: ["sql"], COST_CENTER: 42},
            extension_0123456789abcdef0123456789abcdef_isManager=True,
        )
    )
    assert tenant.dump()["users"][0][DIVISION] == "EMEA"


@pytest.mark.parametrize(
    ("adele", "message"),
    [
        (
            {"onPremisesExtensionAttributes": ["x"]},
            "users[0].onPremisesExtensionAttributes: must be an object of extensionAttribute1..extensionAttribute15, "
            "found ['x']",
        ),
        (
            {"onPremisesExtensionAttributes": {"extensionAttribute4": "x" * 1025}},
            "users[0].onPremisesExtensionAttributes: extensionAttribute4 holds 1025 characters; Graph stores at most "
            "1024",
        ),
        (
            {DIVISION: [{"a": 1}]},
            f"users[0].{DIVISION}: a directory extension holds text (String, DateTime, Binary), a whole number, "
            "true/false or a list of them, found [{'a': 1}]",
        ),
    ],
)
def test_a_fixture_with_custom_data_graph_would_refuse_names_user_and_property(
    adele: dict[str, Any], message: str
) -> None:
    with pytest.raises(FixtureError) as caught:
        Tenant(copy.deepcopy(fixture_with(**adele)))
    assert str(caught.value) == message
