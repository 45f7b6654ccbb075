"""Fast many-row statements on the transaction's own driver connection.

SQLAlchemy Core's executemany builds a parameter dict per row and runs type processors per
value, which costs more than the database itself at 100,000 rows; and on PostgreSQL an
``ON CONFLICT`` upsert does not qualify for its multi-row INSERT path. So the few statements
that move whole tables go straight to the driver, inside the same transaction:
``executemany`` on SQLite (in-process, already fast) and, on PostgreSQL, one
``INSERT ... SELECT * FROM unnest(column arrays)`` per page (measured faster than
``execute_values`` here, and it takes ``ON CONFLICT`` like any INSERT; no COPY). Values must already be in driver form:
``bind`` converts one value through a column's SQLAlchemy type (used once per batch for the
shared timestamp, not per row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table

PAGE = 5_000
"""Ids per ``IN`` list on SQLite (its limit is 32,766 variables)."""
PG_PAGE = 20_000
"""Rows per multi-row INSERT on PostgreSQL."""


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
        """Insert or replace by ``key``; a key given twice keeps its last row (PostgreSQL refuses
        to touch one row twice in a statement)."""
        at = list(columns).index(key)
        rows = list({row[at]: row for row in rows}.values())
        updates = ", ".join(f"{self._quote(c)} = excluded.{self._quote(c)}" for c in columns if c != key)
        self._write(table, columns, rows, f" ON CONFLICT ({self._quote(key)}) DO UPDATE SET {updates}")

    def _write(self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], tail: str) -> None:
        if not rows:
            return
        head = f"INSERT INTO {self._quote(table.name)} ({self._names(columns)}) "
        cursor = self.raw.cursor()
        try:
            if self.postgres:
                # One array per column, unnested server-side: psycopg2 quotes arrays in C, and the
                # server parses one expression per column instead of one per value.
                arrays = ", ".join(f"%s::{table.c[name].type.compile(dialect=self.dialect)}[]" for name in columns)
                sql = f"{head}SELECT * FROM unnest({arrays}){tail}"
                for start in range(0, len(rows), PG_PAGE):
                    cursor.execute(sql, [list(column) for column in zip(*rows[start : start + PG_PAGE], strict=True)])
            else:
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"{head}VALUES ({marks}){tail}", rows)
        finally:
            cursor.close()

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
