"""Build a table's secondary indexes once after a bulk load instead of row by row during it.

A tenant's initial sync writes a million rows into an empty provisioning log, which carries seven
secondary indexes (``schema.LOG_INDEXES``), three of them on values in random order (Entra ids,
lower-cased UPNs and display names). SQLite updates every index for every row inserted; creating
an index afterwards sorts the rows once. Measured on 878,706 log rows of a 1,000,000-user sync
(docs/decisions.md, Production): 33.9 s with the indexes in place, 13.9 s dropping them first and
creating them again after the load (4.3 s of inserts, 7.3 s of index builds), on this 2-core machine.

The rule is the usual one of bulk loaders: rebuild when the load adds at least as many rows as the
table holds (and enough rows to matter); otherwise keep the indexes and update them. It applies on
SQLite only, inside the caller's transaction: SQLite's DDL is transactional, so a failed commit
rolls the indexes back with the rows, and readers (WAL mode) keep seeing the committed database,
indexes included, until the commit. On PostgreSQL ``DROP INDEX`` would lock the table against the
Provisioning page's readers for the whole commit; COPY maintains its indexes there.

The indexes come back from their own SQL in ``sqlite_master``, so a database keeps exactly the
indexes it had (those of its schema version), whatever this code's schema says.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator

from sqlalchemy import Connection, Table

MIN_ROWS = 50_000
"""Below this many new rows the indexes are updated in place (rebuilding costs more than it saves)."""


def should_rebuild(adding: int, holding: int) -> bool:
    """Whether a load of ``adding`` rows into a table of about ``holding`` rows rebuilds its indexes."""
    return adding >= MIN_ROWS and adding >= holding


def _approximate_rows(conn: Connection, table: Table) -> int:
    """Rows the table holds, from its largest rowid (no count over a large log: deleted rows only
    make it larger, so the rule errs towards keeping the indexes)."""
    return int(conn.exec_driver_sql(f'SELECT coalesce(max(rowid), 0) FROM "{table.name}"').scalar_one())


@contextlib.contextmanager
def deferred_indexes(conn: Connection, table: Table, *, adding: int, keep: Collection[str] = ()) -> Iterator[bool]:
    """Within ``conn``'s transaction: drop ``table``'s secondary indexes, let the caller insert,
    then create them again; yields whether it did (SQLite only, and only when ``should_rebuild``).

    ``keep`` names indexes left in place: partial indexes that hold few of the rows (the log's
    unsuccessful rows and error codes). Updating those costs next to nothing, while creating one
    again reads the whole table (0.3 s each for 878,706 log rows, most of its build).

    An exception from the caller propagates without re-creating the indexes: the caller's
    transaction rolls back, and with it the drop."""
    if conn.dialect.name != "sqlite" or not should_rebuild(adding, _approximate_rows(conn, table)):
        yield False
        return
    raw = conn.connection.driver_connection
    # Automatic indexes (a primary key's, UNIQUE) have no SQL and cannot be dropped: they stay.
    indexes = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
        (table.name,),
    ).fetchall()
    indexes = [(name, sql) for name, sql in indexes if name not in keep]
    for name, _sql in indexes:
        raw.execute(f'DROP INDEX "{name}"')
    yield True
    for _name, sql in indexes:
        raw.execute(sql)
