"""Bulk API 2.0 CSV, written explicitly: fixed column order, one value rule, measured size.

Why not ``csv.DictWriter`` through simple-salesforce's ``records=``: it orders columns from a set
(a different header every run) and writes None as an empty value, which an update *ignores*; the
engine needs None to mean "clear the field" (``#N/A``). The rules ("Prepare CSV Files", Bulk
API 2.0 Developer Guide):

* COMMA delimiter; the record separator is the job's ``lineEnding``;
* a value holding the delimiter, a double quote or a line break is wrapped in double quotes with
  inner quotes doubled; values are never trimmed, so a value with leading or trailing white
  space is quoted too (harmless, and it keeps any reader from trimming it);
* booleans are ``true``/``false``;
* an empty value is *not sent* (ignored on update, unset on insert); ``#N/A`` sets null.

Two values cannot travel in a Bulk CSV at all, and are refused with a reason rather than
mangled: the literal text ``#N/A`` (Salesforce would store null) and a value with both CRLF and
a lone LF line break (the line-ending check of either job kind trips on one of them). A value
holding CRLF goes into a CRLF job, as an LF job rejects CRLF anywhere in the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from include.provisioning.errors import RecordError
from include.provisioning.model import NULL_MARKER

LF = "LF"
CRLF = "CRLF"
NEWLINES = {LF: "\n", CRLF: "\r\n"}
MAX_JOB_BYTES = 100 * 1024 * 1024
"""Bulk API 2.0: at most 100 MB of raw CSV per job (150 MB once base64-encoded)."""


class UnsendableValueError(RecordError, ValueError):
    """A value Bulk API 2.0 CSV cannot carry; ``field`` names the column."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def ordered_columns(rows: Iterable[Mapping[str, Any]], key_field: str) -> list[str]:
    """The union of the fields in ``rows`` (names starting with ``_`` are the caller's own),
    sorted, with ``key_field`` first: the same request always gives the same header."""
    names = {n for n in set(chain.from_iterable(rows)) if not n.startswith("_")}
    names.discard(key_field)
    return [key_field, *sorted(names)]


def is_null(value: Any) -> bool:
    """None, NaN, pandas' NA/NaT: what a DataFrame cell holds when there is no value."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-likes are values, not nulls
        return False


def format_value(value: Any, *, update: bool) -> str:
    """One value as a CSV cell. Nulls (and "") become ``#N/A`` in an update, nothing in an
    insert. Raises ``UnsendableValueError`` for the literal ``#N/A``."""
    if type(value) is str:  # the common case first: this runs for every cell of 100,000 rows
        text = value
    elif isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    elif is_null(value):
        return NULL_MARKER if update else ""
    elif isinstance(value, dt.date):
        text = value.isoformat()  # dates and datetimes as Salesforce reads them (ISO 8601)
    else:
        text = str(value)
    if not text:
        return NULL_MARKER if update else ""
    if '"' in text or "," in text or "\n" in text or "\r" in text or text[0].isspace() or text[-1].isspace():
        return '"' + text.replace('"', '""') + '"'
    if text == NULL_MARKER:
        raise UnsendableValueError("", "the value '#N/A' cannot be sent: Bulk API 2.0 reads it as null")
    return text


class _NotSent:
    def __repr__(self) -> str:
        return "NOT_SENT"


NOT_SENT: Any = _NotSent()
"""A cell of a field the row does not have: empty in an insert and in an update alike."""


def format_column(values: Sequence[Any], *, update: bool) -> tuple[list[str], list[int]]:
    """``format_value`` of every value of one column (``NOT_SENT`` gives ""): the cells, and
    the positions of the values that cannot be sent (their cells are "")."""
    if set(map(type, values)) == {str}:
        return _format_texts(list(values), update)
    text_cells, text_unsendable = _format_texts([value for value in values if type(value) is str], update)
    texts = iter(text_cells)
    known = {NOT_SENT: "", None: NULL_MARKER if update else "", True: "true", False: "false"}
    cells: list[str] = []
    unsendable: list[int] = []
    for at, value in enumerate(values):
        if type(value) is str:
            cells.append(next(texts))
        elif value is NOT_SENT or value is None or value is True or value is False:
            cells.append(known[value])
        else:
            cells.append(_cell(value, update, at, unsendable))
    if text_unsendable:
        text_at = [at for at, value in enumerate(values) if type(value) is str]
        unsendable = sorted([*unsendable, *(text_at[i] for i in text_unsendable)])
    return cells, unsendable


_PIECE = 128
"""Texts checked together when a column holds a text that needs quoting: the other pieces of
the column are still taken as they are."""


def _format_texts(texts: list[str], update: bool) -> tuple[list[str], list[int]]:
    """``format_column`` of texts (``str`` only): a column of texts that need no quoting (most
    columns: names, addresses, codes) is checked at once, in C, and its texts are its cells."""
    if _plain_texts(texts):
        return texts, []
    if len(texts) > _PIECE:
        cells: list[str] = []
        unsendable: list[int] = []
        for start in range(0, len(texts), _PIECE):
            piece, refused = _format_texts(texts[start : start + _PIECE], update)
            cells += piece
            unsendable += [start + at for at in refused]
        return cells, unsendable
    unsendable = []
    return [_cell(text, update, at, unsendable) for at, text in enumerate(texts)], unsendable


def _cell(value: Any, update: bool, at: int, unsendable: list[int]) -> str:
    """``format_value``, or "" with ``at`` added to ``unsendable``."""
    try:
        return format_value(value, update=update)
    except UnsendableValueError:
        unsendable.append(at)
        return ""


def _plain_texts(texts: list[str]) -> bool:
    """Whether every text is its own cell: none is empty, starts or ends with white space,
    holds a comma, a double quote or a line break, or contains ``#N/A`` (those take
    ``format_value``, which also refuses the literal ``#N/A``)."""
    if not all(texts):  # an empty text
        return False
    # White space at either end: strip() hands back the very text when it has none to strip.
    if list(map(str.strip, texts)) != texts:
        return False
    joined = "".join(texts)
    return not ('"' in joined or "," in joined or "\n" in joined or "\r" in joined or NULL_MARKER in joined)


def line_ending_of(values: Sequence[str], columns: Sequence[str] | None = None) -> str:
    """The job line ending a row of formatted values needs (``LF`` unless a value holds CRLF);
    raises ``UnsendableValueError`` naming the column(s) when the row holds both CRLF and a
    lone LF."""
    if not any("\n" in value for value in values):
        return LF
    crlf: list[str] = []
    lone_lf: list[str] = []
    for at, value in enumerate(values):
        if "\n" not in value:
            continue
        name = columns[at] if columns is not None else ""
        n_crlf = value.count("\r\n")
        if n_crlf:
            crlf.append(name)
        if value.count("\n") > n_crlf:
            lone_lf.append(name)
    if crlf and lone_lf:
        names = ", ".join(dict.fromkeys(n for n in (*crlf, *lone_lf) if n))
        raise UnsendableValueError(
            names, "the values mix CRLF and LF line breaks, which no Bulk API 2.0 job line ending accepts"
        )
    return CRLF if crlf else LF


@dataclass
class CsvChunk:
    """One job's upload: the encoded CSV and, in row order, each row's key value and entra id."""

    line_ending: str
    columns: list[str]
    data: bytes
    keys: list[str] = field(default_factory=list)
    entra_ids: list[str] = field(default_factory=list)

    @property
    def key_map(self) -> dict[str, str]:
        return dict(zip(self.keys, self.entra_ids, strict=True))

    def __len__(self) -> int:
        return len(self.keys)


def encode_header(columns: Sequence[str], line_ending: str) -> bytes:
    return (",".join(format_value(c, update=False) for c in columns) + NEWLINES[line_ending]).encode("utf-8")


def encode_row(values: Sequence[str], line_ending: str) -> bytes:
    """One record line from already formatted values."""
    return (",".join(values) + NEWLINES[line_ending]).encode("utf-8")


def chunk_rows(
    columns: list[str],
    rows: Iterable[tuple[str, str, bytes]],
    line_ending: str,
    max_bytes: int = MAX_JOB_BYTES,
) -> Iterator[CsvChunk]:
    """Cut ``(key, entra id, encoded line)`` rows into uploads of at most ``max_bytes`` bytes
    each, header included, measured as they are added. The caller has refused rows that alone
    would not fit (``len(header) + len(line) > max_bytes``)."""
    header = encode_header(columns, line_ending)
    parts: list[bytes] = [header]
    size = len(header)
    keys: list[str] = []
    entra_ids: list[str] = []
    for key, entra_id, line in rows:
        if size + len(line) > max_bytes and keys:
            # The parts go before the chunk is handed out: its job runs while this waits.
            chunk = CsvChunk(line_ending, columns, b"".join(parts), keys, entra_ids)
            parts, size, keys, entra_ids = [header], len(header), [], []
            yield chunk
        parts.append(line)
        size += len(line)
        keys.append(key)
        entra_ids.append(entra_id)
    if keys:
        data = b"".join(parts)
        del parts
        yield CsvChunk(line_ending, columns, data, keys, entra_ids)
