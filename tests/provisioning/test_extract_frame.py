"""The USERS frame builder and the scope rules (pure logic)."""

from __future__ import annotations

import pandas as pd

from include.provisioning.graph.frame import UserRow, graph_attributes, scope_reason, select_clause, users_frame
from include.provisioning.model import SCOPE_REASONS


def test_attributes_drop_computed_names_keep_order_and_add_what_extraction_needs() -> None:
    select = ["mail", "appRoleAssignments", "givenName", "id", "IsSoftDeleted", "mail", "", "surname"]
    attributes = graph_attributes(select)
    assert attributes == ["mail", "givenName", "surname", "userPrincipalName", "accountEnabled", "displayName"]
    assert select_clause(attributes) == "id,mail,givenName,surname,userPrincipalName,accountEnabled,displayName"
    assert graph_attributes(["displayName", "accountEnabled", "userPrincipalName"]) == [
        "displayName",
        "accountEnabled",
        "userPrincipalName",
    ]


def test_scope_reasons_from_most_to_least_final() -> None:
    enabled = {"accountEnabled": True}
    disabled = {"accountEnabled": False}
    assert scope_reason(assigned=True, record=enabled, removed=None) is None
    assert scope_reason(assigned=True, record={}, removed=None) is None
    assert scope_reason(assigned=True, record=disabled, removed=None) == "disabled"
    assert scope_reason(assigned=False, record=disabled, removed=None) == "unassigned"
    assert scope_reason(assigned=False, record=None, removed=None) == "soft-deleted"
    assert scope_reason(assigned=True, record=enabled, removed="changed") == "soft-deleted"
    assert scope_reason(assigned=False, record=None, removed="deleted") == "deleted"
    reasons = {"disabled", "unassigned", "soft-deleted", "deleted"}
    assert reasons <= set(SCOPE_REASONS)


def test_frame_columns_values_and_types() -> None:
    rows = [
        UserRow("u1", {"id": "u1", "mail": "a@x", "accountEnabled": True}, ["Standard User"], "direct", None),
        UserRow("u2", None, [], None, "deleted"),
    ]
    frame = users_frame(rows, ["mail", "surname", "accountEnabled"])
    assert list(frame.columns) == [
        "id",
        "mail",
        "surname",
        "accountEnabled",
        "appRoleAssignments",
        "assignedVia",
        "IsSoftDeleted",
        "scopeReason",
    ]
    first, second = frame.to_dict("records")
    assert first["mail"] == "a@x" and pd.isna(first["surname"]) and first["accountEnabled"] is True
    assert first["appRoleAssignments"] == ["Standard User"] and first["assignedVia"] == "direct"
    assert bool(first["IsSoftDeleted"]) is False
    assert pd.isna(first["scopeReason"])
    assert pd.isna(second["mail"]) and second["appRoleAssignments"] == [] and second["scopeReason"] == "deleted"
    assert bool(second["IsSoftDeleted"]) is True
    assert frame["IsSoftDeleted"].dtype == bool
    # Each row owns its list: changing one never changes another.
    shared = ["Standard User"]
    twins = users_frame([UserRow("a", {}, shared, "direct", None), UserRow("b", {}, shared, "direct", None)], [])
    twins.at[0, "appRoleAssignments"].append("x")
    assert twins.at[1, "appRoleAssignments"] == ["Standard User"] and shared == ["Standard User"]


def test_an_empty_frame_still_has_every_column() -> None:
    frame = users_frame([], ["mail"])
    assert frame.empty
    assert list(frame.columns) == [
        "id",
        "mail",
        "appRoleAssignments",
        "assignedVia",
        "IsSoftDeleted",
        "scopeReason",
    ]
