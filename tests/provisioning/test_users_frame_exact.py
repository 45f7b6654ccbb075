"""Exact outputs of the two column builders that run over every user of a cycle: the role count
validate adds for GX (``_role_count``) and the USERS frame extract builds (``_Reader.build``,
``users_frame``). Both are vectorised for speed; these pin what they return, value by value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from include.provisioning.graph.assignments import UserRoles
from include.provisioning.graph.extract import _Reader
from include.provisioning.graph.frame import UserRow, users_frame
from include.provisioning.model import DEFAULT_ACCESS_ROLE_VALUE, QuarantinedUser
from include.provisioning.validate import _role_count
from include.provisioning.workspace import Workspace

ACCESS = DEFAULT_ACCESS_ROLE_VALUE

ROLE_ROWS: list[Any] = [
    ["Standard User"],
    ["Standard User", "Sales Manager"],  # several roles
    [],  # no role
    None,  # no list at all
    ["Sales Manager", "Sales Manager"],  # a repeat counts once
    ["Read Only", "Standard User", "Read Only", "Standard User", "Marketing User"],
    [ACCESS],  # the default access role alone counts
    [ACCESS, "Standard User"],  # ... and beside a real role (extract drops it; the count does not judge)
    ["Standard User", None],  # a null element is no role
    [None, np.nan],
    ["Standard User", "Sales Manager", "Read Only"],
    ["Sales Manager", "Standard User"],  # the same set as row 1 in another order
]
ROLE_COUNTS = [1, 2, 0, 0, 1, 3, 1, 2, 1, 0, 3, 2]


def test_role_count_of_lists_is_exact() -> None:
    counts = _role_count(pd.Series(ROLE_ROWS, dtype=object))
    assert counts.dtype == np.int64
    assert counts.tolist() == ROLE_COUNTS


def test_role_count_is_positional_whatever_the_index() -> None:
    roles = pd.Series(ROLE_ROWS, index=[50, 3, 7, 1, 0, 99, 12, 13, 2, 8, 4, 5], dtype=object)
    assert _role_count(roles).tolist() == ROLE_COUNTS
    assert _role_count(roles.iloc[::-1]).tolist() == ROLE_COUNTS[::-1]


def test_role_count_of_the_arrays_parquet_gives_back(tmp_path: Path) -> None:
    """Under Airflow validate reads the USERS frame from Parquet: each list is a NumPy array."""
    rows = [[] if r is None else [v for v in r if isinstance(v, str)] for r in ROLE_ROWS]
    workspace = Workspace(tmp_path)
    workspace.write_frame("users", pd.DataFrame({"appRoleAssignments": pd.Series(rows, dtype=object)}))
    roles = workspace.read_frame("users")["appRoleAssignments"]
    assert all(isinstance(value, np.ndarray) for value in roles)
    assert _role_count(roles).tolist() == [1, 2, 0, 0, 1, 3, 1, 2, 1, 0, 3, 2]
    mixed = pd.Series([np.array(["A", "B", "A"], dtype=object), ["A", "A"], np.array([], dtype=object)])
    assert _role_count(mixed).tolist() == [2, 1, 0]


def test_role_count_of_scalars_and_tuples_follows_explode() -> None:
    roles = pd.Series(["Standard User", ("A", "B", "A"), None, np.nan, ["A"], ()], dtype=object)
    assert _role_count(roles).tolist() == [1, 2, 0, 0, 1, 0]
    scalar_array = pd.Series([np.array("A", dtype=object), np.array(["A", "B"], dtype=object)], dtype=object)
    assert _role_count(scalar_array).tolist() == [1, 2]


@pytest.mark.parametrize("roles", [pd.Series([], dtype=object), pd.Series([[], None], dtype=object)])
def test_role_count_without_any_role(roles: pd.Series) -> None:
    counts = _role_count(roles)
    assert counts.dtype == np.int64
    assert counts.tolist() == [0] * len(roles)


def test_role_count_of_many_rows_matches_a_set_per_row() -> None:
    rng = np.random.default_rng(7)
    names = ["A", "B", "C", "D", ACCESS]
    rows = [list(rng.choice(names, size=rng.integers(0, 5))) for _ in range(5000)]
    expected = [len(set(row)) for row in rows]
    assert _role_count(pd.Series(rows, dtype=object)).tolist() == expected
    as_arrays = pd.Series([np.array(row, dtype=object) for row in rows], dtype=object)
    assert _role_count(as_arrays).tolist() == expected


# --- the USERS frame ----------------------------------------------------------------------------

ATTRIBUTES = ["mail", "surname", "userPrincipalName", "accountEnabled", "displayName"]
COLUMNS = ["id", *ATTRIBUTES, "appRoleAssignments", "assignedVia", "IsSoftDeleted", "scopeReason"]


def record(user_id: str, **values: Any) -> dict[str, Any]:
    base = {"id": user_id, "mail": f"{user_id}@x", "surname": user_id.upper()}
    base.update(userPrincipalName=f"{user_id}@x.example", accountEnabled=True, displayName=f"User {user_id}")
    base.update(values)
    return base


def test_build_gives_every_column_exactly() -> None:
    reader = _Reader(
        None,  # type: ignore[arg-type]  (build never calls Graph)
        service_principal_id="sp",
        select=["mail", "appRoleAssignments", "surname"],
        known={},
        also_fetch=(),
        progress=None,
    )
    assert reader.attributes == ATTRIBUTES
    several = UserRoles(["Sales Manager", "Standard User"], "direct; group:Sales")
    shared = UserRoles(["Standard User"], "group:All")
    missing_key = record("u09")
    del missing_key["surname"]  # Graph left a property out: None, like a null
    records = {
        "u01": record("u01"),
        "u02": record("u02", accountEnabled=False),
        "u03": record("u03"),
        "u04": record("u04"),
        "u05": record("u05"),
        "u07": record("u07"),
        "u09": missing_key,
        "u10": record("u10", mail=None),
        "u11": record("u11"),
        "u12": record("u12"),
        "u13": record("u13", accountEnabled=None),
        "zz": record("zz"),  # read but not asked for
    }
    reader.records.add(records.values())
    roles = {
        "u01": several,
        "u02": shared,
        "u05": shared,
        "u06": shared,
        "u07": UserRoles([], "direct", ["app role assignment a1 (direct) grants app role r1, which ..."]),
        "u08": UserRoles([], "direct", ["no role"]),
        "u09": shared,
        "u10": UserRoles([ACCESS], "direct"),
        "u11": shared,
        "u12": several,
        "u13": shared,
    }
    removed = {"u04": "deleted", "u05": "changed"}
    ids = ["u13", "u12", "u11", "u10", "u09", "u08", "u07", "u06", "u05", "u04", "u03", "u02", "u01"]

    frame, quarantined = reader.build(set(ids), roles, removed)

    assert quarantined == [
        QuarantinedUser(
            "u07", "u07@x.example", ["app role assignment a1 (direct) grants app role r1, which ..."], "User u07"
        ),
        QuarantinedUser("u08", None, ["no role"]),
    ]
    kept = ["u01", "u02", "u03", "u04", "u05", "u06", "u09", "u10", "u11", "u12", "u13"]
    gone = {"u04", "u05", "u06"}  # no record in the frame: deleted, changed in delta, not returned
    expected = pd.DataFrame(
        {
            "id": kept,
            "mail": [None if u in gone else (None if u == "u10" else f"{u}@x") for u in kept],
            "surname": [None if u in gone or u == "u09" else u.upper() for u in kept],
            "userPrincipalName": [None if u in gone else f"{u}@x.example" for u in kept],
            "accountEnabled": [None if u in gone else {"u02": False, "u13": None}.get(u, True) for u in kept],
            "displayName": [None if u in gone else f"User {u}" for u in kept],
            "appRoleAssignments": pd.Series(
                [
                    ["Sales Manager", "Standard User"],
                    ["Standard User"],
                    [],
                    [],
                    ["Standard User"],
                    ["Standard User"],
                    ["Standard User"],
                    [ACCESS],
                    ["Standard User"],
                    ["Sales Manager", "Standard User"],
                    ["Standard User"],
                ],
                dtype=object,
            ),
            "assignedVia": [
                "direct; group:Sales",
                "group:All",
                None,
                None,
                "group:All",
                "group:All",
                "group:All",
                "direct",
                "group:All",
                "direct; group:Sales",
                "group:All",
            ],
            "IsSoftDeleted": pd.Series([False, True, True, True, True, True, False, False, False, False, False]),
            "scopeReason": [None, "disabled", "unassigned", "deleted", "soft-deleted", "soft-deleted"] + [None] * 5,
        }
    )
    assert list(frame.columns) == COLUMNS
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["IsSoftDeleted"].dtype == bool and frame["appRoleAssignments"].dtype == object
    assert frame["accountEnabled"].tolist() == [True, False, True, None, None, None, True, True, True, True, None]
    assert isinstance(frame.index, pd.RangeIndex)
    # Each row owns a fresh list: the shared UserRoles stay untouched.
    lists = frame["appRoleAssignments"].tolist()
    assert all(type(value) is list for value in lists)
    assert len({id(value) for value in lists}) == len(lists)
    frame.at[1, "appRoleAssignments"].append("x")
    assert shared.roles == ["Standard User"] and frame.at[4, "appRoleAssignments"] == ["Standard User"]


def test_build_of_nobody() -> None:
    reader = _Reader(None, service_principal_id="sp", select=["mail"], known={}, also_fetch=(), progress=None)  # type: ignore[arg-type]
    frame, quarantined = reader.build(set(), {}, {})
    assert quarantined == []
    assert list(frame.columns) == ["id", "mail", "userPrincipalName", "accountEnabled", "displayName", *COLUMNS[6:]]
    assert frame.empty
    assert frame["IsSoftDeleted"].dtype == bool and frame["appRoleAssignments"].dtype == object


@pytest.mark.parametrize("attributes", [[], ["mail"], ["mail", "surname"], ["mail", "mail"]])
def test_users_frame_of_few_attributes(attributes: list[str]) -> None:
    rows = [
        UserRow("a", {"mail": "a@x", "surname": "A"}, ["R1", "R2"], "direct", None),
        UserRow("b", {"surname": "B"}, (), None, "unassigned"),
        UserRow("c", {}, np.array(["R1"], dtype=object), "direct", None),
        UserRow("d", None, [], None, "deleted"),
    ]
    frame = users_frame(rows, attributes)
    columns: dict[str, Any] = {"id": ["a", "b", "c", "d"]}
    for name in attributes:
        columns[name] = {"mail": ["a@x", None, None, None], "surname": ["A", "B", None, None]}[name]
    columns["appRoleAssignments"] = pd.Series([["R1", "R2"], [], ["R1"], []], dtype=object)
    columns["assignedVia"] = ["direct", None, "direct", None]
    columns["IsSoftDeleted"] = pd.Series([False, True, False, True], dtype=bool)
    columns["scopeReason"] = [None, "unassigned", None, "deleted"]
    pd.testing.assert_frame_equal(frame, pd.DataFrame(columns), check_exact=True)
    assert all(type(value) is list for value in frame["appRoleAssignments"])
