"""The page store of an extraction (include/provisioning/graph/user_pages.py): what ``take`` gives
back must be what the parsed records held, whatever the pages' column types."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from include.provisioning.graph.frame import attribute_columns
from include.provisioning.graph.user_pages import UserPages, _arrow_column

ATTRIBUTES = ["mail", "accountEnabled", "businessPhones", "extensionAttribute3", "employeeOrgData"]


def _values(pages: UserPages, ids: list[str]) -> dict[str, list[Any]]:
    taken = pages.take(pages.positions(ids))
    return {name: v if isinstance(v, list) else v.to_pylist() for name, v in taken.items()}


def test_take_gives_back_the_records_values_across_pages_of_other_types() -> None:
    first = [
        {"id": "a", "mail": "a@x", "accountEnabled": True, "businessPhones": ["1"], "employeeOrgData": None},
        {"id": "b", "mail": None, "accountEnabled": None, "businessPhones": [], "employeeOrgData": {"division": "D"}},
        {"mail": "no-id@x"},  # no id: not kept
    ]
    second = [
        # mail absent (Graph left it out), the extension attributes' object present
        {"id": "c", "accountEnabled": False, "onPremisesExtensionAttributes": {"extensionAttribute3": "E3"}},
        {"id": "d", "mail": "d@x", "accountEnabled": True, "businessPhones": None},
    ]
    third = [{"id": "e", "mail": "e@x", "accountEnabled": "yes"}]  # a text where booleans were
    pages = UserPages(ATTRIBUTES)
    for page in (first, second, third):
        pages.add(page)
    assert len(pages) == 5
    order = ["e", "d", "zz", "c", "b", "a"]
    by_id = {r["id"]: r for r in [*first[:2], *second, *third]}
    expected = dict(zip(ATTRIBUTES, attribute_columns([by_id.get(i) for i in order], ATTRIBUTES), strict=True))
    assert _values(pages, order) == expected
    taken = pages.take(pages.positions(order))
    assert isinstance(taken["mail"], pa.ChunkedArray) and taken["mail"].type == pa.large_string()
    assert isinstance(taken["accountEnabled"], list)  # bool on two pages, text on one: Python values
    assert taken["accountEnabled"] == ["yes", True, None, False, None, True]
    assert taken["employeeOrgData"] == [None, None, None, None, {"division": "D"}, None]


def test_a_user_read_twice_keeps_the_later_record() -> None:
    pages = UserPages(["mail"])
    pages.add([{"id": "a", "mail": "old@x"}, {"id": "b", "mail": "b@x"}])
    pages.add([{"id": "a", "mail": "new@x"}])
    assert _values(pages, ["a", "b"]) == {"mail": ["new@x", "b@x"]}


def test_keep_only_and_missing() -> None:
    pages = UserPages(["mail"])
    pages.add([{"id": str(n), "mail": f"{n}@x"} for n in range(10)])
    pages.add([{"id": "x", "mail": "x@x"}], wanted={"y"})  # nobody wanted on this page
    pages.add([{"id": str(n), "mail": f"{n}@x"} for n in range(10, 20)], wanted={"12", "15"})
    assert len(pages) == 12
    pages.keep_only({"3", "12", "99"})
    assert len(pages) == 2
    assert sorted(pages.missing({"3", "12", "15", "99"})) == ["15", "99"]
    assert _values(pages, ["12", "3", "15"]) == {"mail": ["12@x", "3@x", None]}
    assert UserPages(["mail"]).missing({"a"}) == ["a"]


@pytest.mark.parametrize(
    ("values", "expected_type"),
    [
        (["a", None, "b"], pa.large_string()),
        ([None, None], pa.null()),
        ([], pa.null()),
        ([True, None, False], pa.bool_()),
        (["a", True], None),  # mixed: the Python list itself
        (["a", 1], None),
        ([1, 2], None),
        (["a", ["b"]], None),
        ([{"k": "v"}, None], None),
    ],
)
def test_a_page_column_is_arrow_only_when_all_text_all_booleans_or_all_null(
    values: list[Any], expected_type: pa.DataType | None
) -> None:
    column = _arrow_column(values)
    if expected_type is None:
        assert column is values
    else:
        assert isinstance(column, pa.Array) and column.type == expected_type and column.to_pylist() == values
