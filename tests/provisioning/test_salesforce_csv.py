"""Bulk API 2.0 CSV writing: value rules, column order, line endings, size splits, and hostile
values read back unchanged by the sandbox's Bulk CSV reader and by Python's csv module."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.provisioning.model import Action, FieldChange, PlannedChange
from include.provisioning.salesforce.csv_out import (
    CRLF,
    LF,
    UnsendableValueError,
    chunk_rows,
    encode_header,
    encode_row,
    format_value,
    line_ending_of,
    ordered_columns,
)
from include.provisioning.stages import bulk_rows
from include.sandbox.salesforce.bulk_csv import parse_csv


@pytest.mark.parametrize(
    ("value", "update", "cell"),
    [
        (None, True, "#N/A"),
        (None, False, ""),
        ("", True, "#N/A"),
        ("", False, ""),
        (True, True, "true"),
        (False, False, "false"),
        (42, False, "42"),
        ("plain", True, "plain"),
        ("a,b", True, '"a,b"'),
        ('say "hi"', True, '"say ""hi"""'),
        ("two\nlines", True, '"two\nlines"'),
        ("cr\ronly", True, '"cr\ronly"'),
        (" lead", True, '" lead"'),
        ("trail ", True, '"trail "'),
        ("=1+1", True, "=1+1"),
        ("Zoë 🙂", True, "Zoë 🙂"),
        (float("nan"), True, "#N/A"),
        (pd.NA, True, "#N/A"),
        (pd.NaT, False, ""),
        (np.bool_(True), True, "true"),
        (dt.date(2024, 2, 29), True, "2024-02-29"),
        (dt.datetime(2024, 2, 29, 13, 5, tzinfo=dt.UTC), True, "2024-02-29T13:05:00+00:00"),
    ],
)
def test_format_value(value: object, update: bool, cell: str) -> None:
    assert format_value(value, update=update) == cell


def test_the_literal_null_marker_cannot_be_sent() -> None:
    with pytest.raises(UnsendableValueError, match="#N/A"):
        format_value("#N/A", update=False)


def test_a_planned_clear_travels_as_the_typed_null_and_reaches_the_csv_as_null() -> None:
    """The diff's clear (``FieldChange(old, None)``) becomes ``#N/A``, Bulk API 2.0's null, in the
    update CSV; the other changes of the row go as they are. (The text "#N/A" is refused above.)"""
    change = PlannedChange(
        "e1",
        "adele.vance@contoso.example",
        Action.UPDATE,
        "005000000000003AAA",
        {"Title": FieldChange("Account Executive", None), "LastName": FieldChange("Vance", "Vance-Married")},
    )
    [row] = bulk_rows([change], keyed=True)
    columns = ordered_columns([row], "Id")
    cells = [format_value(row[c], update=True) for c in columns]
    assert dict(zip(columns, cells, strict=True)) == {
        "Id": "005000000000003AAA",
        "LastName": "Vance-Married",
        "Title": "#N/A",
    }


def test_columns_are_sorted_with_the_key_first_and_private_names_left_out() -> None:
    rows = [{"_entra_id": "e1", "Username": "a", "LastName": "x"}, {"Email": "e", "Username": "b", "Alias": "q"}]
    assert ordered_columns(rows, "Username") == ["Username", "Alias", "Email", "LastName"]
    assert ordered_columns([{"Id": "1", "IsActive": False}], "Id") == ["Id", "IsActive"]


def test_line_ending_follows_crlf_values_and_refuses_a_mix() -> None:
    assert line_ending_of(["a", '"b\nc"']) == LF
    assert line_ending_of(["a", '"b\r\nc"']) == CRLF
    with pytest.raises(UnsendableValueError, match="CRLF and LF"):
        line_ending_of(['"b\r\nc"', '"d\ne"'])


def test_chunks_stay_under_the_byte_limit_and_keep_every_row_in_order() -> None:
    columns = ["Username", "LastName"]
    rows = [(f"u{i}@x.example", f"e{i}", encode_row([f"u{i}@x.example", "Ø" * (i % 7)], LF)) for i in range(200)]
    limit = 500
    chunks = list(chunk_rows(columns, rows, LF, limit))
    assert len(chunks) > 5
    header = encode_header(columns, LF)
    for chunk in chunks:
        assert len(chunk.data) <= limit
        assert chunk.data.startswith(header)
        parsed = parse_csv(chunk.data, "COMMA", "LF")
        assert [row[0] for row in parsed.rows] == chunk.keys
    assert [k for c in chunks for k in c.keys] == [r[0] for r in rows]
    assert [e for c in chunks for e in c.entra_ids] == [r[1] for r in rows]


# Text Salesforce can store: no NUL or surrogates; "#N/A" alone and CRLF/LF mixes are refused
# by design (tested above), so they are left out of the round trip.
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40).filter(
    lambda v: v != "#N/A" and not ("\r\n" in v and v.count("\n") > v.count("\r\n"))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(text, min_size=3, max_size=3), min_size=1, max_size=8))
def test_hostile_values_round_trip_through_bulk_csv(rows: list[list[str]]) -> None:
    columns = ["Id", "LastName", "Title"]
    formatted = [[format_value(v, update=True) for v in row] for row in rows]
    ending = CRLF if any(line_ending_of(f) == CRLF for f in formatted) else LF
    if ending == CRLF and any(("\n" in v and "\r\n" not in v) for row in rows for v in row):
        return  # such rows go to separate jobs (the loader splits them); covered by the loader tests
    data = b"".join([encode_header(columns, ending), *(encode_row(f, ending) for f in formatted)])
    expected = [["#N/A" if v == "" else v for v in row] for row in rows]
    assert parse_csv(data, "COMMA", ending).rows == expected
    assert list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1:] == expected
