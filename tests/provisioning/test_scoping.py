"""Scoping filters: every Entra operator, the null rule, AND within a filter, OR across."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from include.provisioning.scoping import ScopingError, ScopingFilters

USERS = pd.DataFrame(
    {
        "id": ["u1", "u2", "u3", "u4", "u5"],
        "department": ["Sales", "sales", None, "", "Sales Ops"],
        "userPrincipalName": ["a@contoso.com", "b@fabrikam.com", "c@contoso.com", "d@contoso.com.evil", "e@x.com"],
        "accountEnabled": [True, False, True, False, True],
        "employeeId": ["1500000", "999", None, "abc", "2000000"],
        "userAccountControl": [512, 514, None, 2, 0],
        "flagText": ["True", "false", None, "", "yes"],
    }
)


def in_scope(clause: dict[str, Any], users: pd.DataFrame = USERS) -> list[str]:
    filters = ScopingFilters.load([{"clauses": [clause]}])
    mask = filters.evaluate(users)
    assert mask.dtype == bool
    # Per-record evaluation (provisioning on demand) decides the same.
    assert [filters.evaluate_row(r) for r in users.to_dict("records")] == mask.tolist()
    return users.loc[mask, "id"].tolist()


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ({"attribute": "department", "operator": "EQUALS", "value": "Sales"}, ["u1"]),  # case-sensitive
        ({"attribute": "department", "operator": "NOT EQUALS", "value": "Sales"}, ["u2", "u5"]),  # null/empty: false
        ({"attribute": "department", "operator": "IS NULL"}, ["u3", "u4"]),  # empty counts as null
        ({"attribute": "department", "operator": "IS NOT NULL"}, ["u1", "u2", "u5"]),
        ({"attribute": "department", "operator": "Includes", "value": "Sal"}, ["u1", "u5"]),
        ({"attribute": "userPrincipalName", "operator": "ENDS_WITH", "value": "@contoso.com"}, ["u1", "u3"]),
        # Entra's "common scoping filters" examples
        (
            {"attribute": "userPrincipalName", "operator": "REGEX MATCH", "value": r".*\@contoso.com"},
            ["u1", "u3", "u4"],
        ),
        ({"attribute": "userPrincipalName", "operator": "NOT REGEX MATCH", "value": r".*\@contoso.com"}, ["u2", "u5"]),
        ({"attribute": "employeeId", "operator": "REGEX MATCH", "value": "(1[0-9][0-9][0-9][0-9][0-9][0-9])"}, ["u1"]),
        ({"attribute": "department", "operator": "NOT REGEX MATCH", "value": "^Sales"}, ["u2"]),
        ({"attribute": "accountEnabled", "operator": "IS TRUE"}, ["u1", "u3", "u5"]),
        ({"attribute": "accountEnabled", "operator": "IS FALSE"}, ["u2", "u4"]),
        ({"attribute": "flagText", "operator": "IS TRUE"}, ["u1"]),
        ({"attribute": "flagText", "operator": "IS FALSE"}, ["u2"]),
        ({"attribute": "employeeId", "operator": "Greater_Than", "value": 1000000}, ["u1", "u5"]),
        ({"attribute": "employeeId", "operator": "Greater_Than_OR_EQUALS", "value": "2000000"}, ["u5"]),
        ({"attribute": "employeeId", "operator": "Greater_Than", "value": 0}, ["u1", "u2", "u5"]),  # "abc" is no number
        ({"attribute": "userAccountControl", "operator": "&", "value": 2}, ["u2", "u4"]),  # ACCOUNTDISABLE bit
        ({"attribute": "userAccountControl", "operator": "!&", "value": 2}, ["u1", "u5"]),  # null: false
        # Operator names are matched without regard to case, spaces and underscores.
        ({"attribute": "department", "operator": "not_equals", "value": "Sales"}, ["u2", "u5"]),
        ({"attribute": "department", "operator": "greater than", "value": 1}, []),
    ],
)
def test_operator(clause: dict[str, Any], expected: list[str]) -> None:
    assert in_scope(clause) == expected


def test_clauses_and_filters_or() -> None:
    filters = ScopingFilters.load(
        [
            {
                "name": "Contoso sales",
                "clauses": [
                    {"attribute": "department", "operator": "EQUALS", "value": "Sales"},
                    {"attribute": "userPrincipalName", "operator": "ENDS_WITH", "value": "@contoso.com"},
                ],
            },
            {
                "name": "Everyone at x.com",
                "clauses": [{"attribute": "userPrincipalName", "operator": "ENDS_WITH", "value": "@x.com"}],
            },
        ]
    )
    assert USERS.loc[filters.evaluate(USERS), "id"].tolist() == ["u1", "u5"]
    assert filters.attributes() == ["department", "userPrincipalName"]


def test_no_filters_means_everyone() -> None:
    filters = ScopingFilters.load(None)
    assert not filters
    assert filters.evaluate(USERS).tolist() == [True] * 5
    assert ScopingFilters.load([]).attributes() == []


def test_result_keeps_the_frame_index() -> None:
    users = USERS.set_index(pd.Index([10, 20, 30, 40, 50]))
    mask = ScopingFilters.load(
        [{"clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}]
    ).evaluate(users)
    assert mask.index.tolist() == [10, 20, 30, 40, 50]


def test_boolean_values_compare_as_entra_prints_them() -> None:
    assert in_scope({"attribute": "accountEnabled", "operator": "EQUALS", "value": True}) == ["u1", "u3", "u5"]


def test_a_missing_column_is_an_error() -> None:
    filters = ScopingFilters.load([{"clauses": [{"attribute": "city", "operator": "IS NULL"}]}])
    with pytest.raises(KeyError, match="no column"):
        filters.evaluate(USERS)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"clauses": []}, "scoping: expected a list of filters, found dict"),
        ([{"clauses": []}], "scoping filter 1: 'clauses' must be a non-empty list"),
        (
            [{"clauses": [{"attribute": "department", "operator": "LIKE", "value": "x"}]}],
            "scoping filter 1 clause 1 (department): unknown operator 'LIKE'; valid operators: EQUALS, NOT EQUALS, "
            "IS TRUE, IS FALSE, IS NULL, IS NOT NULL, REGEX MATCH, NOT REGEX MATCH, Greater_Than, "
            "Greater_Than_OR_EQUALS, Includes, ENDS_WITH, &, !&",
        ),
        (
            [{"name": "Sales", "clauses": [{"attribute": "department", "operator": "EQUALS"}]}],
            "scoping filter 1 (Sales) clause 1 (department): EQUALS needs a value",
        ),
        (
            [{"clauses": [{"attribute": "department", "operator": "IS NULL", "value": "x"}]}],
            "scoping filter 1 clause 1 (department): IS NULL takes no value, found 'x'",
        ),
        (
            [{"clauses": [{"attribute": "mail", "operator": "REGEX MATCH", "value": "(oops"}]}],
            "scoping filter 1 clause 1 (mail): '(oops' is not a valid regular expression: missing ), unterminated "
            "subpattern at position 0",
        ),
        (
            [{"clauses": [{"attribute": "employeeId", "operator": "Greater_Than", "value": "ten"}]}],
            "scoping filter 1 clause 1 (employeeId): Greater_Than needs a whole number, found 'ten'",
        ),
        (
            [{"clauses": [{"operator": "IS NULL"}]}],
            "scoping filter 1 clause 1: 'attribute' is required (a Graph user attribute name such as department)",
        ),
        (
            [{"clauses": [{"attribute": "x", "operator": "IS NULL", "val": 1}]}],
            "scoping filter 1 clause 1: unknown key(s) val; a clause has attribute, operator and value",
        ),
        (
            [{"title": "x", "clauses": [{"attribute": "x", "operator": "IS NULL"}]}],
            "scoping filter 1: unknown key(s) title; a filter has name and clauses",
        ),
    ],
)
def test_load_errors(section: Any, message: str) -> None:
    with pytest.raises(ScopingError) as err:
        ScopingFilters.load(section)
    assert str(err.value) == message
