"""Bulk API 2.0 CSV rules (include/sandbox/salesforce/bulk_csv.py), without HTTP."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.sandbox.salesforce import bulk_csv
from include.sandbox.salesforce.bulk_csv import (
    DELIMITERS,
    UNESCAPED_QUOTE,
    UNTERMINATED_QUOTE,
    CsvFormatError,
    line_ending_error,
    parse_csv,
    write_csv,
    write_results_csv,
)


def test_header_and_rows_values_untrimmed() -> None:
    parsed = parse_csv(b"LastName,FirstName\n Smith,John \nDoe,\n")
    assert parsed.header == ["LastName", "FirstName"]
    assert parsed.rows == [[" Smith", "John "], ["Doe", ""]]


def test_quoted_values_hold_delimiter_newline_and_doubled_quotes() -> None:
    data = b'Title,Street\n"Director, Marketing","1 Main St\nSuite ""B"""\n'
    assert parse_csv(data).rows == [["Director, Marketing", '1 Main St\nSuite "B"']]


def test_empty_quoted_value_and_lone_quoted_empty_row() -> None:
    assert parse_csv(b'Title\n""\nx\n').rows == [[""], ["x"]]
    assert parse_csv(b"Title\n\nx\n").rows == [["x"]], "a blank line is not a record"


@pytest.mark.parametrize(("name", "char"), sorted(DELIMITERS.items()))
def test_every_documented_delimiter(name: str, char: str) -> None:
    data = f'LastName{char}Title\nSmith{char}"a{char}b"\n'.encode()
    parsed = parse_csv(data, column_delimiter=name)
    assert parsed.rows == [["Smith", f"a{char}b"]]
    text = write_csv(parsed.header, parsed.rows, name)
    assert text == f'LastName{char}Title\n"Smith"{char}"a{char}b"\n'


def test_crlf_job_reads_crlf_and_keeps_crlf_inside_quotes() -> None:
    parsed = parse_csv(b'LastName,Street\r\nSmith,"a\r\nb"\r\n', line_ending="CRLF")
    assert parsed.rows == [["Smith", "a\r\nb"]]
    assert write_csv(parsed.header, parsed.rows, line_ending="CRLF") == 'LastName,Street\r\n"Smith","a\r\nb"\r\n'


@pytest.mark.parametrize(
    ("data", "line_ending"),
    [(b"LastName\r\nSmith\r\n", "LF"), (b"LastName\nSmith\n", "CRLF"), (b'LastName\n"a\r\nb"\n', "LF")],
)
def test_line_endings_that_do_not_match_the_job_fail_the_file(data: bytes, line_ending: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        parse_csv(data, line_ending=line_ending)
    assert caught.value.message == line_ending_error(line_ending)
    assert caught.value.message.startswith("ClientInputError : LineEnding is invalid on user data.")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'LastName,Title\nSmith,"unterminated\n', UNTERMINATED_QUOTE),
        (b'LastName,Title\nSm"ith,x\n', UNESCAPED_QUOTE),
        (b'LastName,Title\n"Smith", "John"\n', UNESCAPED_QUOTE),
        (b'LastName,Title\n"Smith"x,y\n', UNESCAPED_QUOTE),
        # a UTF-8 byte-order mark before a quoted first header is a stray quote to Salesforce
        (b'\xef\xbb\xbf"LastName"\nSmith\n', UNESCAPED_QUOTE),
    ],
)
def test_malformed_quotes_fail_the_file(data: bytes, message: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        parse_csv(data)
    assert caught.value.message == message


def test_bom_before_an_unquoted_header_becomes_part_of_the_first_name() -> None:
    # what then fails the job as "Field name not found : \ufeffLastName"
    assert parse_csv(b"\xef\xbb\xbfLastName\nSmith\n").header == ["\ufeffLastName"]


def test_empty_upload_is_refused() -> None:
    with pytest.raises(CsvFormatError):
        parse_csv(b"")


def test_rows_keep_their_own_width() -> None:
    parsed = parse_csv(b"A,B,C\n1,2\n1,2,3,4\n")
    assert parsed.rows == [["1", "2"], ["1", "2", "3", "4"]]


def test_na_and_unicode_pass_through_as_text() -> None:
    parsed = parse_csv("LastName,Title\nZoë,#N/A\n日本,\n".encode())
    assert parsed.rows == [["Zoë", "#N/A"], ["日本", ""]]


def test_results_quote_every_value_and_write_null_as_nothing() -> None:
    text = write_csv(
        ["sf__Id", "sf__Created", "LastName"], [["005x", "true", 'O"Neil'], ["", "false", None]], quote_header=[1, 1, 0]
    )
    assert text == '"sf__Id","sf__Created",LastName\n"005x","true","O""Neil"\n"","false",\n'


def test_header_only_when_no_rows() -> None:
    assert write_csv(["sf__Id", "LastName"], [], quote_header=[True, False]) == '"sf__Id",LastName\n'


def test_python_csv_reads_what_we_write() -> None:
    rows = [["a,b", 'q"q', "line\nbreak", ""], ["x", "y", "z", "w"]]
    text = write_csv(["A", "B", "C", "D"], rows)
    assert list(csv.reader(io.StringIO(text)))[1:] == rows


# --- round trips with hostile values --------------------------------------------------------

_lf_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30).filter(lambda v: "\r\n" not in v)
_crlf_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30).map(
    lambda v: v.replace("\r\n", "\n").replace("\r", "").replace("\n", "\r\n")
)


def _table(values: st.SearchStrategy[str], min_width: int = 1) -> st.SearchStrategy[tuple[list[str], list[list[str]]]]:
    return st.integers(min_value=min_width, max_value=5).flatmap(
        lambda width: st.tuples(
            st.lists(values.filter(bool), min_size=width, max_size=width),
            st.lists(st.lists(values, min_size=width, max_size=width), max_size=8),
        )
    )


@settings(max_examples=300, deadline=None)
@given(table=_table(_lf_text), delimiter=st.sampled_from(sorted(DELIMITERS)))
def test_round_trip_fully_quoted_lf(table: tuple[list[str], list[list[str]]], delimiter: str) -> None:
    header, rows = table
    text = write_csv(header, rows, delimiter, "LF")
    parsed = parse_csv(text.encode("utf-8"), delimiter, "LF")
    assert (parsed.header, parsed.rows) == (header, rows)


@settings(max_examples=200, deadline=None)
@given(table=_table(_crlf_text), delimiter=st.sampled_from(sorted(DELIMITERS)))
def test_round_trip_fully_quoted_crlf(table: tuple[list[str], list[list[str]]], delimiter: str) -> None:
    header, rows = table
    text = write_csv(header, rows, delimiter, "CRLF")
    parsed = parse_csv(text.encode("utf-8"), delimiter, "CRLF")
    assert (parsed.header, parsed.rows) == (header, rows)


@settings(max_examples=300, deadline=None)
@given(table=_table(_lf_text, min_width=2), delimiter=st.sampled_from(sorted(DELIMITERS)))
def test_round_trip_minimal_quoting(table: tuple[list[str], list[list[str]]], delimiter: str) -> None:
    """What clients send: only values that need it are quoted (the quote-free fast path
    and the quoted path must agree)."""
    header, rows = table
    text = write_csv(header, rows, delimiter, "LF", quote_values=False)
    parsed = parse_csv(text.encode("utf-8"), delimiter, "LF")
    assert (parsed.header, parsed.rows) == (header, rows)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet='ab,"\n\r ', max_size=40), line_ending=st.sampled_from(["LF", "CRLF"]))
def test_line_by_line_reading_agrees_with_reading_the_whole_text(text: str, line_ending: str) -> None:
    """Any text, well-formed or not: the same rows, or the same error, as one pass of the field
    pattern over the whole text (``_parse_quoted``, what every quoted file went through before)."""
    newline = "\r\n" if line_ending == "CRLF" else "\n"

    def outcome(read: Any) -> Any:
        try:
            return read()
        except CsvFormatError as exc:
            return exc.message

    whole = text[: -len(newline)] if text.endswith(newline) else text

    def one_pass() -> Any:
        bulk_csv._check_line_endings(text, line_ending)
        rows = bulk_csv._parse_quoted(whole, ",", newline) if '"' in whole else None
        if rows is None:
            return parse_csv(text, "COMMA", line_ending)
        if not rows:
            raise CsvFormatError(bulk_csv.EMPTY_FILE)
        return bulk_csv.ParsedCsv(rows[0], rows[1:])

    assert outcome(lambda: parse_csv(text, "COMMA", line_ending)) == outcome(one_pass)


_result_text = st.text(alphabet='ab,;|^`\t"\n\r é', max_size=12)


@settings(max_examples=500, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=5),
    rows=st.lists(
        st.tuples(_result_text, _result_text, st.lists(_result_text, max_size=7)),
        max_size=8,
    ),
    delimiter=st.sampled_from(sorted(DELIMITERS)),
    line_ending=st.sampled_from(["LF", "CRLF"]),
)
def test_results_writer_is_write_csv_of_the_padded_rows(
    width: int, rows: list[tuple[str, str, list[str]]], delimiter: str, line_ending: str
) -> None:
    """``write_results_csv`` writes what ``write_csv`` wrote for ``[sf__Id, second, *row]`` with
    each row cut or padded to the header (how ``Job`` rendered its results before): values with
    quotes, delimiters and line breaks, short and long rows, every delimiter and line ending."""
    header = ["sf__Id", "sf__Error", *(f"F{i}" for i in range(width))]
    padded = [[first, second, *(row[:width] + [""] * (width - len(row)))] for first, second, row in rows]
    flags = [True, True] + [False] * width
    expected = write_csv(header, padded, delimiter, line_ending, quote_header=flags)
    assert write_results_csv(header, rows, delimiter, line_ending) == expected
