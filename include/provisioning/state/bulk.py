"""Fast many-row statements on the transaction's own driver connection.

SQLAlchemy Core's executemany builds a parameter dict per row and runs type processors per
value, which costs more than the database itself at 100,000 rows; and on PostgreSQL an
``ON CONFLICT`` upsert does not qualify for its multi-row INSERT path. So the few statements
that move whole tables go straight to the driver, inside the same transaction:

* SQLite: one multi-row ``INSERT ... VALUES (...), (...), ...`` per ``SQLITE_VARIABLES``
  parameters, run with ``executemany`` (a sixth less CPU than one row per step, measured);
* PostgreSQL: ``COPY ... FROM STDIN`` in the text format (psycopg2's ``copy_expert``), built a
  column at a time: the server parses rows without planning a statement, and spends a third of
  the CPU an ``INSERT ... SELECT FROM unnest(arrays)`` cost it (measured at 850,000 users).
  COPY cannot ``ON CONFLICT``, so an upsert there deletes the keys it is given, then copies
  the rows: the same whole rows in the end, which is why it must name every column.

Values must already be in driver form: ``bind`` converts one value through a column's
SQLAlchemy type (used once per batch for the shared timestamp, not per row).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Column, Connection, Table

PAGE = 5_000
"""Ids per ``IN`` list on SQLite (its limit is 32,766 variables)."""
SQLITE_VARIABLES = 999
"""Parameters per multi-row INSERT on SQLite (every version's limit; more measured no faster)."""
PG_PAGE = 20_000
"""Rows per COPY on PostgreSQL (the text of one page is held in memory)."""


_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
"""What COPY's text format escapes inside a value, backslash first."""
_NONE = type(None)


def _copy_column(values: Sequence[Any], encoding: str) -> list[bytes]:
    """One column in COPY's text format: ``\\N`` for NULL, ``t``/``f``, numbers as Python prints
    them, text with its backslashes, tabs and line breaks escaped; encoded value by value (bytes
    join into lines far faster than text of mixed widths)."""
    if not set(map(type, values)) <= {str, _NONE}:
        return [_copy_value(value).encode(encoding) for value in values]
    return [
        b"\\N"
        if value is None
        else (_escape(value) if "\\" in value or "\t" in value or "\n" in value or "\r" in value else value).encode(
            encoding
        )
        for value in values
    ]


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    return _escape(str(value))


def _escape(text: str) -> str:
    for special, escaped in _ESCAPES:
        text = text.replace(special, escaped)
    return text


class Bulk:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.postgres = conn.dialect.name == "postgresql"
        self.raw = conn.connection.driver_connection
        self._quote = conn.dialect.identifier_preparer.quote

    def bind(self, column: Column[Any], value: Any) -> Any:
        """``value`` as the driver expects it for ``column`` (e.g. a UTC timestamp on SQLite)."""
        processor = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        value = processor(value) if processor is not None else value
        if self.postgres and isinstance(value, dt.datetime):
            return value.isoformat()  # psycopg2 quotes a string far faster than it adapts a datetime
        return value

    def _names(self, columns: Sequence[str]) -> str:
        return ", ".join(self._quote(name) for name in columns)

    def insert(self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        self._write(table, columns, rows, "")

    def upsert(self, table: Table, key: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert or replace whole rows by ``key``; a key given twice keeps its last row.
        ``columns`` must be all of the table's: on PostgreSQL the rows are replaced (deleted, then
        copied), which would reset a column left out where ``ON CONFLICT`` keeps it."""
        if set(columns) != set(table.c.keys()):
            raise ValueError(f"upsert into {table.name} must name every column, not {list(columns)}")
        at = list(columns).index(key)
        rows = list({row[at]: row for row in rows}.values())
        if self.postgres:
            self.delete_in(table, key, [row[at] for row in rows])
            self._write(table, columns, rows, "")
            return
        updates = ", ".join(f"{self._quote(c)} = excluded.{self._quote(c)}" for c in columns if c != key)
        self._write(table, columns, rows, f" ON CONFLICT ({self._quote(key)}) DO UPDATE SET {updates}")

    def _write(self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], tail: str) -> None:
        if not rows:
            return
        cursor = self.raw.cursor()
        try:
            if self.postgres:
                self._copy(cursor, table, columns, rows)
                return
            head = f"INSERT INTO {self._quote(table.name)} ({self._names(columns)}) VALUES "
            one = f"({', '.join('?' for _ in columns)})"
            per = max(1, SQLITE_VARIABLES // len(columns))  # rows per statement
            whole = len(rows) - len(rows) % per
            if whole:
                flat = (list(chain.from_iterable(rows[start : start + per])) for start in range(0, whole, per))
                cursor.executemany(f"{head}{', '.join([one] * per)}{tail}", flat)
            if whole < len(rows):
                rest = rows[whole:]
                cursor.execute(f"{head}{', '.join([one] * len(rest))}{tail}", list(chain.from_iterable(rest)))
        finally:
            cursor.close()

    def _copy(self, cursor: Any, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """``COPY`` the rows in, a page at a time, in the text format (rows keep their order, so a
        serial id numbers them as an INSERT would)."""
        from psycopg2.extensions import encodings  # PostgreSQL only

        sql = f"COPY {self._quote(table.name)} ({self._names(columns)}) FROM STDIN"
        encoding = encodings[self.raw.encoding]  # COPY takes the bytes as they come
        for start in range(0, len(rows), PG_PAGE):
            page = [_copy_column(column, encoding) for column in zip(*rows[start : start + PG_PAGE], strict=True)]
            lines = b"\n".join(map(b"\t".join, zip(*page, strict=True)))
            cursor.copy_expert(sql, io.BytesIO(lines + b"\n"), size=1 << 20)

    def delete_in(self, table: Table, key: str, ids: Sequence[Any]) -> None:
        if not ids:
            return
        cursor = self.raw.cursor()
        try:
            for sql, params in self._in(f"DELETE FROM {self._quote(table.name)}", key, ids):
                cursor.execute(sql, params)
        finally:
            cursor.close()

    def select_in(
        self, table: Table, columns: Sequence[str], key: str, ids: Sequence[Any]
    ) -> Iterator[tuple[Any, ...]]:
        """Rows whose ``key`` is one of ``ids``, as plain driver tuples."""
        if not ids:
            return
        cursor = self.raw.cursor()
        try:
            head = f"SELECT {self._names(columns)} FROM {self._quote(table.name)}"
            for sql, params in self._in(head, key, ids):
                cursor.execute(sql, params)
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def stream(
        self, table: Table, columns: Sequence[str], order_by: str | None = None, batch: int = 20_000
    ) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table``, fetched a batch at a time (on PostgreSQL through a server-side
        cursor, since psycopg2 otherwise loads the whole result before returning the first row)."""
        order = f" ORDER BY {self._quote(order_by)}" if order_by else ""
        sql = f"SELECT {self._names(columns)} FROM {self._quote(table.name)}{order}"
        cursor = self.raw.cursor(name=f"stream_{table.name}") if self.postgres else self.raw.cursor()
        try:
            if self.postgres:
                cursor.itersize = batch
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def _in(self, head: str, key: str, ids: Sequence[Any]) -> Iterator[tuple[str, Any]]:
        column = self._quote(key)
        if self.postgres:  # one array parameter, however many ids
            yield f"{head} WHERE {column} = ANY(%s)", (list(ids),)
            return
        for start in range(0, len(ids), PAGE):
            chunk = list(ids[start : start + PAGE])
            yield f"{head} WHERE {column} IN ({', '.join('?' for _ in chunk)})", chunk
