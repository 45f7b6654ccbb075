"""The provisioning log as CSV, streamed, with spreadsheet formulas neutralised.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run as a formula
by a spreadsheet that opens the file (CSV injection); such a cell is prefixed with a single quote,
which spreadsheets show as text (OWASP, "CSV Injection":
https://owasp.org/www-community/attacks/CSV_Injection). Directory values (names, UPNs, Salesforce
error messages) come from outside, so every cell is treated this way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

COLUMNS = (
    "id",
    "at",
    "cycle_id",
    "action",
    "status",
    "entra_id",
    "user_principal_name",
    "sf_id",
    "error_code",
    "error_message",
    "changes",
)
"""The export's columns: a ``log_query.full_row``'s fields; ``changes`` is ``{property: [old, new]}`` JSON."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 1_000


def neutralise(value: Any) -> str:
    """``value`` as CSV cell text, quoted with a leading ``'`` when it could start a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cells(row: dict[str, Any]) -> list[str]:
    changes = {item["property"]: [item["old"], item["new"]] for item in row["changes"]}
    values = {**row, "changes": orjson.dumps(changes).decode() if changes else ""}
    return [neutralise(values[name]) for name in COLUMNS]


def csv_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header, then the rows, as text chunks of ``ROWS_PER_CHUNK`` rows (for a streamed answer)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(_cells(row))
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
