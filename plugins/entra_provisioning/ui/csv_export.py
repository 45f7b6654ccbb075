"""The provisioning log as CSV, streamed, with spreadsheet formulas neutralised.

Cells are made exactly as the report e-mail's CSV makes them (``report.neutralize``: a cell that a
spreadsheet could run as a formula, one starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage
return or their full-width forms, gets a leading ``'``; OWASP "CSV Injection":
https://owasp.org/www-community/attacks/CSV_Injection), every cell quoted, RFC 4180 line ends,
UTF-8 with a byte-order mark so spreadsheets detect the encoding. Directory values (names, UPNs,
Salesforce error messages) come from outside, so every cell is treated this way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from include.provisioning.report import neutralize

COLUMNS = (
    "id",
    "at",
    "cycle_id",
    "action",
    "status",
    "entra_id",
    "user_principal_name",
    "display_name",
    "sf_id",
    "error_code",
    "error_message",
    "changes",
)
"""The export's columns: a ``log_query.full_row``'s fields; ``changes`` is ``{property: [old, new]}`` JSON."""
HEADER = {"display_name": "Display name"}
"""Header cells that differ from the field's name (the issue names the display name's column)."""
ROWS_PER_CHUNK = 1_000
BYTE_ORDER_MARK = "\ufeff"


def _cells(row: dict[str, Any]) -> list[str]:
    changes = {item["property"]: [item["old"], item["new"]] for item in row["changes"]}
    values = {**row, "changes": orjson.dumps(changes).decode() if changes else ""}
    return [neutralize(values[name]) for name in COLUMNS]


def csv_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The byte-order mark and header, then the rows, as text chunks of ``ROWS_PER_CHUNK`` rows
    (for a streamed answer)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    buffer.write(BYTE_ORDER_MARK)
    writer.writerow([HEADER.get(name, name) for name in COLUMNS])
    for count, row in enumerate(rows, start=1):
        writer.writerow(_cells(row))
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
