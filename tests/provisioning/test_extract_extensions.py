"""Extraction of Entra's custom-data sources from the sandbox: ``extensionAttribute1`` read through
``onPremisesExtensionAttributes`` and a directory extension, in a full read and through delta."""

from __future__ import annotations

from typing import Any

import pandas as pd

from include.provisioning.model import Mode
from tests.provisioning.test_extract_full import ADELE, ALEX, MEGAN, extract_from
from tests.sandbox_process import SandboxProcess

DIVISION = "extension_0123456789abcdef0123456789abcdef_division"
SELECT = ["userPrincipalName", "extensionAttribute1", DIVISION, "appRoleAssignments"]
COLUMNS = ["id", "userPrincipalName", "extensionAttribute1", DIVISION]


def patch(sandbox: SandboxProcess, user_id: str, body: dict[str, Any]) -> None:
    sandbox.graph.patch(f"/_sandbox/users/{user_id}", json=body).raise_for_status()


def extension_attributes(**fields: str | None) -> dict[str, Any]:
    return {"onPremisesExtensionAttributes": fields}


def values(users: pd.DataFrame) -> list[dict[str, Any]]:
    frame = users[COLUMNS].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def test_full_read_gives_one_column_per_source(sandbox: SandboxProcess) -> None:
    patch(sandbox, ADELE, {**extension_attributes(extensionAttribute1="20150123105347.1Z"), DIVISION: "EMEA"})
    patch(sandbox, ALEX, extension_attributes(extensionAttribute2="not read"))
    users = extract_from(sandbox, select=SELECT).users
    by_id = {row["id"]: row for row in values(users)}
    assert by_id[ADELE] == {
        "id": ADELE,
        "userPrincipalName": "adele.vance@contoso.example",
        "extensionAttribute1": "20150123105347.1Z",
        DIVISION: "EMEA",
    }
    assert by_id[ALEX] == {
        "id": ALEX,
        "userPrincipalName": "alex.wilber@contoso.example",
        "extensionAttribute1": None,
        DIVISION: None,
    }
    assert "onPremisesExtensionAttributes" not in users.columns and "extensionAttribute2" not in users.columns


def test_delta_carries_extension_attribute_and_directory_extension_changes(sandbox: SandboxProcess) -> None:
    patch(sandbox, ADELE, {**extension_attributes(extensionAttribute1="20150123105347.1Z"), DIVISION: "EMEA"})
    full = extract_from(sandbox, select=SELECT)
    known = {row["id"]: list(row["appRoleAssignments"]) for row in full.users.to_dict("records")}

    patch(sandbox, ADELE, extension_attributes(extensionAttribute1="20200704000000.0Z"))
    first = extract_from(sandbox, select=SELECT, mode=Mode.AUTO, delta_link=full.delta_link, known=known)
    assert first.mode is Mode.INCREMENTAL and first.fell_back is None
    assert values(first.users) == [
        {
            "id": ADELE,
            "userPrincipalName": "adele.vance@contoso.example",
            "extensionAttribute1": "20200704000000.0Z",
            DIVISION: "EMEA",
        }
    ]
    # Adele's delta item held every selected property: she was not read again.
    assert "graph.users_by_id" not in first.requests

    # Megan has no directory extension value, which Graph leaves out of her delta item: she is
    # re-read by id, and her division is null like any attribute without a value.
    patch(sandbox, MEGAN, extension_attributes(extensionAttribute1="20240101000000.0Z"))
    patch(sandbox, ADELE, {DIVISION: "APAC"})
    second = extract_from(sandbox, select=SELECT, mode=Mode.AUTO, delta_link=first.delta_link, known=known)
    assert values(second.users) == [
        {
            "id": ADELE,
            "userPrincipalName": "adele.vance@contoso.example",
            "extensionAttribute1": "20200704000000.0Z",
            DIVISION: "APAC",
        },
        {
            "id": MEGAN,
            "userPrincipalName": "megan.bowen@contoso.example",
            "extensionAttribute1": "20240101000000.0Z",
            DIVISION: None,
        },
    ]
    assert second.requests.get("graph.users_by_id") == 1

    patch(sandbox, ADELE, {DIVISION: None})
    third = extract_from(sandbox, select=SELECT, mode=Mode.AUTO, delta_link=second.delta_link, known=known)
    assert values(third.users) == [
        {
            "id": ADELE,
            "userPrincipalName": "adele.vance@contoso.example",
            "extensionAttribute1": "20200704000000.0Z",
            DIVISION: None,
        }
    ]
