"""Bulk CSV formatted a column at a time: every cell is what ``format_value`` makes of its value,
and the bytes of a load's rows are pinned for values that need quoting, nulls, ``#N/A``,
booleans, numbers, unicode and line breaks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.provisioning.model import Action
from include.provisioning.salesforce.csv_out import (
    NOT_SENT,
    UnsendableValueError,
    format_column,
    format_value,
    ordered_columns,
)
from include.provisioning.salesforce.load import (
    DUPLICATE_KEY,
    MISSING_KEY,
    UNSENDABLE_VALUE,
    BulkLoader,
    LoadRequest,
    _Sending,
)

HOSTILE: list[Any] = [
    "plain",
    "",
    "#N/A",
    "x#N/A",
    "a,b",
    'say "hi"',
    "two\nlines",
    "cr\ronly",
    "crlf\r\nline",
    " lead",
    "trail ",
    "\tTab",
    "nbsp\xa0",
    "\u3000ideographic",
    "Zoë 🙂 東京",
    None,
    True,
    False,
    np.bool_(False),
    0,
    42,
    -1.5,
    float("nan"),
    dt.date(2024, 2, 29),
    NOT_SENT,
]


def expected(values: list[Any], update: bool) -> tuple[list[str], list[int]]:
    """The oracle: ``format_value`` of each value on its own (None where it refuses the value)."""
    cells = [cell(value, update) for value in values]
    return [c or "" for c in cells], [at for at, c in enumerate(cells) if c is None]


def cell(value: Any, update: bool) -> str | None:
    if value is NOT_SENT:
        return ""
    try:
        return format_value(value, update=update)
    except UnsendableValueError:
        return None


@pytest.mark.parametrize("update", [False, True])
def test_a_column_of_hostile_values_is_formatted_value_by_value(update: bool) -> None:
    cells, refused = format_column(HOSTILE, update=update)
    assert (cells, refused) == expected(HOSTILE, update)
    null = "#N/A" if update else ""
    assert cells[:15] == [
        "plain",
        null,
        "",
        "x#N/A",
        '"a,b"',
        '"say ""hi"""',
        '"two\nlines"',
        '"cr\ronly"',
        '"crlf\r\nline"',
        '" lead"',
        '"trail "',
        '"\tTab"',
        '"nbsp\xa0"',
        '"\u3000ideographic"',
        "Zoë 🙂 東京",
    ]
    assert cells[15:] == [null, "true", "false", "false", "0", "42", "-1.5", null, "2024-02-29", ""]
    assert refused == [2]


@pytest.mark.parametrize("update", [False, True])
def test_long_columns_with_a_few_hostile_texts(update: bool) -> None:
    values: list[Any] = [f"user{n}@contoso.example" for n in range(1000)]
    for at, hostile in [(3, "a,b"), (130, "#N/A"), (131, " x"), (640, ""), (999, 'q"')]:
        values[at] = hostile
    cells, refused = format_column(values, update=update)
    assert (cells, refused) == expected(values, update)
    assert refused == [130]
    assert cells[3] == '"a,b"' and cells[131] == '" x"' and cells[999] == '"q"""'
    assert cells[640] == ("#N/A" if update else "")
    assert cells[500] == "user500@contoso.example"
    values[130] = "fine"
    values[700] = NOT_SENT
    values[701] = None
    values[702] = True
    cells, refused = format_column(values, update=update)
    assert (cells, refused) == expected(values, update)
    assert cells[700:703] == ["", "#N/A" if update else "", "true"]


cell_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["#N/A", " ", "a,b", '"', "\r\n", "\n", "\xa0", "\x1f"]),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.just(NOT_SENT),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(cell_values, max_size=300), st.booleans())
def test_format_column_is_format_value_of_each_cell(values: list[Any], update: bool) -> None:
    assert format_column(values, update=update) == expected(values, update)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=400), st.booleans())
def test_columns_of_texts_only(values: list[str], update: bool) -> None:
    assert format_column(values, update=update) == expected(values, update)


def prepared(operation: str, rows: list[dict[str, Any]]) -> tuple[dict[str, bytes], dict[int, tuple[str, str]]]:
    """The CSV lines ``BulkLoader`` would send, by line ending, and the rows it refused."""
    action = Action.CREATE if operation == "insert" else Action.UPDATE
    request = LoadRequest(action, operation, rows)
    sending = _Sending(request, ordered_columns(rows, request.key_field))
    groups = BulkLoader(None, on_job_created=lambda *args: None)._prepare(sending, rows, 0)  # type: ignore[arg-type]
    lines = {ending: b"".join(group.lines) for ending, group in groups.items() if group.lines}
    refused = {at: (r.error_code, r.error_message) for at, r in sending.results.items()}
    return lines, refused


def test_the_bytes_of_an_insert() -> None:
    rows = [
        {"_entra_id": "e1", "Username": "zoë@x.example", "LastName": 'O"Neil, Jr.', "IsActive": True, "Title": None},
        {"_entra_id": "e2", "Username": "b@x.example", "LastName": "Two\nLines", "EmployeeNumber": 42, "Rate": 1.5},
        {"_entra_id": "e3", "Username": "c@x.example", "LastName": " pad ", "IsActive": False, "Title": "#N/A"},
        {"_entra_id": "e4", "Username": "B@X.example", "LastName": "Dup"},
        {"_entra_id": "e5", "Username": "", "LastName": "NoKey"},
        {"_entra_id": "e6", "Username": "d@x.example", "LastName": "Win\r\nLines", "Title": ""},
        {"_entra_id": "e7", "Username": "e@x.example", "LastName": "Mix\r\nand\nLF"},
        {
            "_entra_id": "e8",
            "Username": "f@x.example",
            "LastName": "東京",
            "Title": "Zoë 🙂",
            "IsActive": np.bool_(True),
        },
    ]
    lines, refused = prepared("insert", rows)
    # Columns: Username, EmployeeNumber, IsActive, LastName, Rate, Title
    lf = ['zoë@x.example,,true,"O""Neil, Jr.",,', 'b@x.example,42,,"Two\nLines",1.5,', "f@x.example,,true,東京,,Zoë 🙂"]
    assert lines == {
        "LF": "".join(f"{line}\n" for line in lf).encode("utf-8"),
        "CRLF": b'd@x.example,,,"Win\r\nLines",,\r\n',
    }
    assert sorted(refused) == [2, 3, 4, 6]
    assert refused[2] == (UNSENDABLE_VALUE, "Title: the value '#N/A' cannot be sent: Bulk API 2.0 reads it as null")
    assert refused[3][0] == DUPLICATE_KEY and "also for Entra user e2" in refused[3][1]
    assert refused[4][0] == MISSING_KEY
    assert refused[6][0] == UNSENDABLE_VALUE and refused[6][1].startswith("LastName: the values mix CRLF and LF")


def test_the_bytes_of_an_update() -> None:
    rows = [
        {"_entra_id": "e1", "Id": "005000000000001AAA", "Title": None, "IsActive": False, "Phone": ""},
        {"_entra_id": "e2", "Id": "005000000000002AAA", "Title": "Dev, Lead", "Department": float("nan")},
        {"_entra_id": "e3", "Id": "005000000000003AAA", "Title": "Zoë", "EmployeeNumber": 7},
        {"_entra_id": "e4", "Id": "005000000000001aaa", "Title": "case differs after 15"},
        {"_entra_id": "e5", "Id": None, "Title": "no id"},
    ]
    lines, refused = prepared("update", rows)
    # Columns: Id, Department, EmployeeNumber, IsActive, Phone, Title
    assert lines == {
        "LF": (
            "005000000000001AAA,,,false,#N/A,#N/A\n"
            '005000000000002AAA,#N/A,,,,"Dev, Lead"\n'
            "005000000000003AAA,,7,,,Zoë\n"
        ).encode()
    }
    assert sorted(refused) == [3, 4]
    assert refused[3][0] == DUPLICATE_KEY
    assert refused[4][0] == MISSING_KEY
