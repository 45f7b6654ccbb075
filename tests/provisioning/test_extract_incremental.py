"""Incremental extraction: each change made through the control API yields exactly the
expected rows, starting from a full read of the example tenant."""

from __future__ import annotations

from typing import Any

import pandas as pd

from include.provisioning.graph import Extraction
from include.provisioning.model import Mode
from tests.provisioning.test_extract_full import (
    ADELE,
    ALEX,
    DANA,
    MEGAN,
    NORA,
    NOSURNAME,
    SALES_FRANCE,
    ZOE,
    extract_from,
    rows,
)
from tests.sandbox_process import SandboxProcess

ADMIN_ROLE = "00000000-0000-0000-0000-000000000066"


def baseline(sandbox: SandboxProcess) -> tuple[str, dict[str, list[str]]]:
    """A full read, and the snapshot a cycle would keep: id → role values applied."""
    full = extract_from(sandbox)
    assert full.delta_link
    known = {row["id"]: list(row["appRoleAssignments"]) for row in full.users.to_dict("records")}
    return full.delta_link, known


def incremental(sandbox: SandboxProcess, link: str, known: dict[str, list[str]], **kwargs: Any) -> Extraction:
    result = extract_from(sandbox, mode=Mode.AUTO, delta_link=link, known=known, **kwargs)
    assert result.mode == Mode.INCREMENTAL and result.fell_back is None
    assert result.delta_link and result.delta_link != link
    return result


def test_no_change_yields_no_rows(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    result = incremental(sandbox, link, known)
    assert result.users.empty and result.quarantined == []
    assert "graph.users_by_id" not in result.requests and "graph.users_list" not in result.requests


def test_an_attribute_change(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"givenName": "Adèle", "jobTitle": "CFO"}).raise_for_status()
    result = incremental(sandbox, link, known)
    [adele] = result.users.to_dict("records")
    assert adele["id"] == ADELE and adele["givenName"] == "Adèle" and adele["surname"] == "Vance"
    assert adele["appRoleAssignments"] == ["Standard User"] and pd.isna(adele["scopeReason"])
    # The changed user came complete in the delta page: nothing was read by id.
    assert "graph.users_by_id" not in result.requests


def test_a_change_outside_the_selected_attributes_is_not_a_change(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": "CFO"}).raise_for_status()
    assert incremental(sandbox, link, known).users.empty


def test_a_change_to_an_unassigned_unknown_user_is_ignored(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.patch(f"/_sandbox/users/{NORA}", json={"givenName": "Norah"}).raise_for_status()
    assert incremental(sandbox, link, known).users.empty


def test_unassignment_then_reassignment(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()
    result = incremental(sandbox, link, known)
    [adele] = result.users.to_dict("records")
    assert adele["id"] == ADELE and adele["scopeReason"] == "unassigned" and adele["IsSoftDeleted"]
    assert adele["appRoleAssignments"] == [] and adele["userPrincipalName"] == "adele.vance@contoso.example"
    known[ADELE] = []  # what the cycle applied
    assert incremental(sandbox, result.delta_link, known).users.empty, "still unassigned: nothing new"
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments",
        json={"principalId": ADELE, "appRoleId": "00000000-0000-0000-0000-000000000065"},
    ).raise_for_status()
    [back] = incremental(sandbox, result.delta_link, known).users.to_dict("records")
    assert back["id"] == ADELE and pd.isna(back["scopeReason"]) and back["appRoleAssignments"] == ["Standard User"]


def test_disable(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.patch(f"/_sandbox/users/{ALEX}", json={"accountEnabled": False}).raise_for_status()
    [alex] = incremental(sandbox, link, known).users.to_dict("records")
    assert alex["id"] == ALEX and alex["scopeReason"] == "disabled" and alex["IsSoftDeleted"]
    assert alex["appRoleAssignments"] == ["System Administrator"]


def test_soft_delete_and_permanent_delete(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.delete(f"/_sandbox/users/{ALEX}").raise_for_status()
    sandbox.graph.delete(f"/_sandbox/users/{NOSURNAME}", params={"permanent": "true"}).raise_for_status()
    users = rows(incremental(sandbox, link, known))
    assert set(users) == {ALEX, NOSURNAME}
    assert users[ALEX]["scopeReason"] == "soft-deleted" and users[ALEX]["appRoleAssignments"] == []
    assert users[NOSURNAME]["scopeReason"] == "deleted" and users[NOSURNAME]["IsSoftDeleted"]
    assert pd.isna(users[NOSURNAME]["userPrincipalName"])


def test_group_membership_changes(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.post(f"/_sandbox/groups/{SALES_FRANCE}/members", json={"id": NORA}).raise_for_status()
    sandbox.graph.delete(f"/_sandbox/groups/{SALES_FRANCE}/members/{ZOE}").raise_for_status()
    users = rows(incremental(sandbox, link, known))
    assert set(users) == {NORA, ZOE}
    assert pd.isna(users[NORA]["scopeReason"]) and users[NORA]["assignedVia"] == "group:Sales EMEA"
    assert users[NORA]["appRoleAssignments"] == ["Standard User"] and users[NORA]["givenName"] == "Nora"
    assert users[ZOE]["scopeReason"] == "unassigned" and users[ZOE]["givenName"] == "Zoë"


def test_role_change(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.delete("/_sandbox/appRoleAssignments/asg-1").raise_for_status()
    sandbox.graph.post("/_sandbox/appRoleAssignments", json={"principalId": ADELE, "appRoleId": ADMIN_ROLE})
    [adele] = incremental(sandbox, link, known).users.to_dict("records")
    assert adele["id"] == ADELE and adele["appRoleAssignments"] == ["System Administrator"]
    assert pd.isna(adele["scopeReason"]) and adele["mail"] == "adele.vance@contoso.example"


def test_a_second_role_is_left_for_the_mapping_to_report(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.post("/_sandbox/appRoleAssignments", json={"principalId": MEGAN, "appRoleId": ADMIN_ROLE})
    [megan] = incremental(sandbox, link, known).users.to_dict("records")
    assert megan["appRoleAssignments"] == ["Standard User", "System Administrator"]
    assert megan["assignedVia"] == "direct; group:Sales EMEA"


def test_escrowed_users_are_read_again(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    users = rows(incremental(sandbox, link, known, also_fetch=[DANA, ZOE]))
    assert set(users) == {DANA, ZOE}
    assert users[DANA]["scopeReason"] == "disabled" and users[ZOE]["assignedVia"] == "group:Sales EMEA"


def test_an_expired_delta_token_falls_back_to_a_full_read(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    sandbox.graph.post("/_sandbox/delta/expire").raise_for_status()
    result = extract_from(sandbox, mode=Mode.INCREMENTAL, delta_link=link, known=known)
    assert result.mode == Mode.FULL
    assert result.fell_back == "delta token expired (410 syncStateNotFound)"
    assert set(rows(result)) == {ADELE, ALEX, MEGAN, ZOE, NOSURNAME, DANA}
    fresh = incremental(sandbox, result.delta_link or "", known)
    assert fresh.users.empty, "the new link works"


def test_incremental_without_a_link_reads_everything(sandbox: SandboxProcess) -> None:
    result = extract_from(sandbox, mode=Mode.INCREMENTAL, delta_link=None)
    assert result.mode == Mode.FULL and result.fell_back == "no saved delta link" and len(result.users) == 6


def test_a_new_user_with_unset_properties_is_read_by_id(sandbox: SandboxProcess) -> None:
    # Graph leaves properties never set out of delta items (and may send only changed ones):
    # such an item cannot stand for the whole user, so the user is read again by id.
    link, known = baseline(sandbox)
    new_id = "00000000-0000-0000-0000-0000000000aa"
    sandbox.graph.post(
        "/_sandbox/users",
        json={
            "id": new_id,
            "userPrincipalName": "new.hire@contoso.example",
            "givenName": "New",
            "accountEnabled": True,
        },
    ).raise_for_status()
    sandbox.graph.post(
        "/_sandbox/appRoleAssignments",
        json={"principalId": new_id, "appRoleId": "00000000-0000-0000-0000-000000000065"},
    ).raise_for_status()
    result = incremental(sandbox, link, known)
    [new] = result.users.to_dict("records")
    assert new["id"] == new_id and new["givenName"] == "New" and pd.isna(new["surname"]) and pd.isna(new["mail"])
    assert pd.isna(new["scopeReason"]) and new["appRoleAssignments"] == ["Standard User"]
    assert result.requests["graph.users_by_id"] == 1


def test_a_delta_link_of_another_endpoint_is_not_followed(sandbox: SandboxProcess) -> None:
    link, known = baseline(sandbox)
    elsewhere = link.replace(sandbox.graph_url, "https://127.0.0.1:9")
    result = extract_from(sandbox, mode=Mode.INCREMENTAL, delta_link=elsewhere, known=known)
    assert result.mode == Mode.FULL and result.fell_back == f"the saved delta link is not on {sandbox.graph_url}/v1.0"
    assert len(result.users) == 6
