"""CSV as Bulk API 2.0 reads and writes it.

Rules, from "Prepare CSV Files" (Bulk API 2.0 and Bulk API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_prepare_csv.htm):

* the first row names the fields; files are UTF-8;
* the delimiter is the job's ``columnDelimiter`` (BACKQUOTE, CARET, COMMA, PIPE, SEMICOLON,
  TAB) and the record separator its ``lineEnding`` (LF, CRLF);
* a value holding the delimiter, a line break or a double quote is wrapped in double quotes
  and inner quotes are doubled; values are never trimmed (``John, Smith`` keeps the space),
  but a quote that does not open a field (``"John", "Smith"``) is an error;
* an empty value is ignored on update, ``#N/A`` sets the field to null.

How Salesforce reacts to broken files is not in the guide; what is modelled here comes from
reports of real jobs:

* data whose line breaks do not match ``lineEnding`` fails the whole job with
  ``ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF``
  (CRLF data in an LF job, or the reverse). The check is crude on the real service too: a
  CRLF inside a quoted value trips it in an LF job;
* a stray quote fails the job with ``InvalidBatch : Failed to parse CSV. Found unescaped
  quote. A value with quote should be within a quote``. That is also what a UTF-8 byte-order
  mark causes: Salesforce reads the three BOM bytes as the start of an unquoted first field,
  so ``\\ufeff"Id"`` is a stray quote and ``\\ufeffId`` an unknown field ``\\ufeffId``. The
  emulator keeps the BOM as data, exactly like that, instead of silently forgiving it.

Parsing is written for 100,000-row files: a file without any double quote (what
simple-salesforce and jsforce send for ordinary data) is split with ``str.split``; in a file
with quotes, lines without one are split too and the others go through one compiled regular
expression, so the per-character work stays in C (a value quoted across lines, or broken
quoting, sends the whole file through the expression).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

DELIMITERS: dict[str, str] = {
    "BACKQUOTE": "`",
    "CARET": "^",
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
}
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}
NULL_VALUE = "#N/A"
"""The value that sets a field to null (an empty value leaves it alone on update)."""

UNESCAPED_QUOTE = (
    "InvalidBatch : Failed to parse CSV. Found unescaped quote. A value with quote should be within a quote"
)
UNTERMINATED_QUOTE = "InvalidBatch : Failed to parse CSV. EOF reached before closing an opened quote"
EMPTY_FILE = "InvalidBatch : Failed to parse CSV header. The CSV data is empty"


class CsvFormatError(ValueError):
    """The uploaded data cannot be read at all; ``message`` becomes the job's ``errorMessage``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ParsedCsv:
    """An uploaded file: the header as written and every data row, values as uploaded."""

    header: list[str]
    rows: list[list[str]]


def line_ending_error(line_ending: str) -> str:
    return f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {line_ending}"


def _check_line_endings(text: str, line_ending: str) -> None:
    """Reject data whose line breaks are not the job's (see the module docstring).

    An LF file without any carriage return cannot hold a CRLF: that one-character search runs at
    memory speed, where looking for the two-character ``\\r\\n`` took 4 ms of a 20,000-row file."""
    if line_ending == "LF":
        if "\r" in text and "\r\n" in text:
            raise CsvFormatError(line_ending_error("LF"))
    elif text.count("\n") != text.count("\r\n"):
        raise CsvFormatError(line_ending_error("CRLF"))


@lru_cache(maxsize=16)
def _field_pattern(delimiter: str, newline: str) -> re.Pattern[str]:
    """One field and what ends it.

    The last alternative catches a character that cannot start a valid field, so
    ``findall`` never skips over broken input silently.
    """
    d = re.escape(delimiter)
    unquoted = f'(?:[^"{d}\\r]|\\r(?!\\n))*' if newline == "\r\n" else f'[^"{d}\\n]*'
    quoted = '(")([^"]*(?:""[^"]*)*)"'
    return re.compile(f"(?:{quoted}|({unquoted}))({d}|{re.escape(newline)}|\\Z)|(.)", re.DOTALL)


def _decode(data: bytes) -> str:
    # Salesforce only reads UTF-8; bytes that are not UTF-8 become U+FFFD rather than
    # failing the whole upload (the model then stores exactly what it was given).
    return data.decode("utf-8", errors="replace")


def parse_csv(data: bytes | str, column_delimiter: str = "COMMA", line_ending: str = "LF") -> ParsedCsv:
    """Split an upload into header and rows; raises ``CsvFormatError`` for unreadable data.

    Rows keep the number of values they were written with (a short or long row is the
    caller's business: it fails that record, not the file). Blank lines are skipped.
    """
    text = _decode(data) if isinstance(data, bytes) else data
    delimiter = DELIMITERS[column_delimiter]
    newline = LINE_ENDINGS[line_ending]
    _check_line_endings(text, line_ending)
    if text.endswith(newline):
        text = text[: -len(newline)]
    if '"' not in text:
        rows = [line.split(delimiter) for line in text.split(newline) if line]
    else:
        rows = _parse_lines(text, delimiter, newline) or _parse_quoted(text, delimiter, newline)
    if not rows:
        raise CsvFormatError(EMPTY_FILE)
    return ParsedCsv(header=rows[0], rows=rows[1:])


def _parse_lines(text: str, delimiter: str, newline: str) -> list[list[str]] | None:
    """The rows of a file where some values are quoted, line by line: every line is split, then
    the lines with a quote are parsed again through the field pattern alone. None when such a line
    holds an odd number of quotes (a quoted value runs onto the next line, or a stray quote) or
    cannot be read: the whole text is then parsed as one (``_parse_quoted``), which also words any
    error. A file of the loader's has a quote on few lines (one in a hundred), so the split and the
    search for quotes are each one comprehension over the lines rather than a loop with a branch."""
    lines = [line for line in text.split(newline) if line]
    rows = [line.split(delimiter) for line in lines]
    for position in [position for position, line in enumerate(lines) if '"' in line]:
        line = lines[position]
        if line.count('"') % 2:
            return None
        try:
            (rows[position],) = _parse_quoted(line, delimiter, newline)
        except (CsvFormatError, ValueError):
            return None
    return rows


def _parse_quoted(text: str, delimiter: str, newline: str) -> list[list[str]]:
    pattern = _field_pattern(delimiter, newline)
    rows: list[list[str]] = []
    row: list[str] = []
    for opening, quoted, plain, end, bad in pattern.findall(text):
        if bad:
            raise CsvFormatError(_describe_error(pattern, text))
        row.append(quoted.replace('""', '"') if opening else plain)
        if end == delimiter:
            continue
        if row != [""] or opening:  # a truly blank line is skipped, a lone "" is a value
            rows.append(row)
        row = []
        if not end:
            break
    return rows


def _describe_error(pattern: re.Pattern[str], text: str) -> str:
    """Find where parsing broke (error path only) and word it the way Salesforce does."""
    for match in pattern.finditer(text):
        if match.group(5):
            pos = match.start()
            if text.startswith('"', pos) and not re.compile('"[^"]*(?:""[^"]*)*"').match(text, pos):
                return UNTERMINATED_QUOTE
            return UNESCAPED_QUOTE
    return UNESCAPED_QUOTE


def _needs_quotes(value: str, delimiter: str) -> bool:
    return delimiter in value or '"' in value or "\n" in value or "\r" in value


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def format_value(value: str, delimiter: str) -> str:
    """Minimal quoting: only values that would otherwise be misread are quoted."""
    return quote(value) if _needs_quotes(value, delimiter) else value


def write_csv(
    header: Sequence[str],
    rows: Iterable[Sequence[str | None]],
    column_delimiter: str = "COMMA",
    line_ending: str = "LF",
    *,
    quote_header: Sequence[bool] | None = None,
    quote_values: bool = True,
) -> str:
    """Render a results file.

    Salesforce quotes every value in its result files (``"001...","true","Acme"``) and
    writes null as nothing between two delimiters; header cells are quoted where
    ``quote_header`` says so (the ``"sf__Id"`` columns are, the uploaded names are not).
    """
    delimiter = DELIMITERS[column_delimiter]
    newline = LINE_ENDINGS[line_ending]
    flags = list(quote_header) if quote_header is not None else [False] * len(header)
    head = delimiter.join(
        quote(name) if flag else format_value(name, delimiter) for name, flag in zip(header, flags, strict=True)
    )
    out = [head]
    if quote_values:
        between = f'"{delimiter}"'
        for row in rows:
            if None not in row and '"' not in "".join(row):  # the common row: quote all at once
                out.append(f'"{between.join(row)}"')
            else:
                out.append(delimiter.join("" if v is None else quote(v) for v in row))
    else:
        for row in rows:
            out.append(delimiter.join("" if v is None else format_value(v, delimiter) for v in row))
    return newline.join(out) + newline


def write_results_csv(
    header: Sequence[str],
    rows: Iterable[tuple[str, str, Sequence[str]]],
    column_delimiter: str = "COMMA",
    line_ending: str = "LF",
) -> str:
    """An ingest job's ``successfulResults`` or ``failedResults``: ``write_csv`` of
    ``[sf__Id, second, *row]`` with the two ``sf__`` header cells quoted, where each ``row`` (the
    values as uploaded) is cut or padded with "" to the uploaded header's width (``header``
    holds the two ``sf__`` names, then the uploaded ones). The same text as ``write_csv``.

    Why not ``write_csv``: a 200,000-row result built a list per row and joined every row twice;
    here a row that fits the header is joined once, and the joined text shows whether any value
    holds a quote (only then is the row written value by value)."""
    delimiter = DELIMITERS[column_delimiter]
    newline = LINE_ENDINGS[line_ending]
    width = len(header) - 2
    between = f'"{delimiter}"'
    joined_quotes = 2 * (width - 1)  # the quotes that ``between.join`` itself puts into a row of ``width``
    out = [write_csv(header, (), column_delimiter, line_ending, quote_header=[True, True] + [False] * width)]
    for first, second, uploaded in rows:
        row = uploaded if len(uploaded) == width else [*uploaded[:width], *([""] * (width - len(uploaded)))]
        body = between.join(row)
        if body.count('"') == joined_quotes and '"' not in first and '"' not in second:
            out.append(f'"{first}{between}{second}{between}{body}"{newline}')
        else:
            out.append(delimiter.join(quote(value) for value in (first, second, *row)) + newline)
    return "".join(out)
