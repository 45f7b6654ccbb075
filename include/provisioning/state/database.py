"""Opening the state database: engine options per back end, and the schema version check.

SQLite is the zero-setup default, so it gets what makes it safe for this use: WAL (readers
never block the writer, and a killed process leaves a consistent file), a busy timeout (a
second process waits for the lock instead of failing at once) and its folder created.
PostgreSQL gets pre-ping so a connection the server dropped between cycles is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from include.provisioning.state import schema
from include.provisioning.state.codec import StateConfigError

SUPPORTED = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536
"""SQLite's page cache per connection (its default is 2 MiB), allocated as pages are read: a
million users' commit inserts a part of the plan into the log (and its indexes), then the
snapshot, then the log again, and with 2 MiB each table's pages evicted the other's. 64 MiB took
the commit from 64 to 46 CPU-s at 1,000,000 users (docs/decisions.md, Production)."""


SQLITE_PAGE_SIZE = 16_384
"""Bytes per page of a state database SQLite creates (its default is 4,096). A first sync's commit
writes a million users' log and snapshot in one transaction, far beyond the page cache: each page
it spills to the WAL and reads back is a system call, and 16 KiB pages took the commit of a
1,000,000-user sync from 39 to 32 CPU-s (11 to 7 s of it system time; docs/decisions.md,
Production). An existing database keeps the page size it was created with."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # Before WAL is switched on, which writes a new database's header; ignored by an existing one.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # negative: in KiB, not pages
    finally:
        cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for ``url``; only SQLite and PostgreSQL are supported (the message says so)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StateConfigError(f"state database URL {url!r} is not a SQLAlchemy URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StateConfigError(
            f"state database URL uses {backend!r}; the state store supports {', '.join(SUPPORTED)} "
            "(e.g. sqlite:///.state/provisioning.db or postgresql+psycopg2://user:pw@host:5432/db)"
        )
    options: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        options.update(pool_pre_ping=True, insertmanyvalues_page_size=5000)
    try:
        engine = create_engine(parsed, **options)
    except NoSuchModuleError as exc:
        raise StateConfigError(f"state database URL {url!r}: no driver for it ({exc})") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create missing tables; refuse a database written by a newer version of this product."""
    if inspect(engine).has_table(schema.state_schema.name):
        with engine.connect() as conn:
            found = conn.execute(select(schema.state_schema.c.version)).scalar()
        if found is not None and found > schema.SCHEMA_VERSION:
            raise StateConfigError(
                f"the state database has schema version {found}, newer than this code understands "
                f"({schema.SCHEMA_VERSION}); upgrade the product (or point it at another database) "
                "rather than letting an old version write to it"
            )
    schema.metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        found = conn.execute(select(schema.state_schema.c.version)).scalar()
        if found is None:
            conn.execute(insert(schema.state_schema).values(id=1, version=schema.SCHEMA_VERSION))
        elif found < schema.SCHEMA_VERSION:
            _migrate(conn, found)


def index_names(conn: Any, table: str) -> set[str]:
    """Names of ``table``'s indexes, read from the catalogue (SQLAlchemy's inspector does not
    report SQLite's expression indexes, so ``checkfirst`` cannot be trusted for them)."""
    if conn.dialect.name == "sqlite":
        query = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table")
    else:
        query = text("SELECT indexname FROM pg_indexes WHERE tablename = :table AND schemaname = current_schema()")
    return {name for (name,) in conn.execute(query, {"table": table})}


def _migrate(conn: Any, found: int) -> None:
    """Bring an older schema up to date, one version at a time. New tables were already created
    by ``create_all``; this adds what ``create_all`` cannot (columns of existing tables)."""
    if found < 1:
        raise StateConfigError(
            f"the state database has schema version {found} and no migration to {schema.SCHEMA_VERSION}"
        )
    if found < 7:
        # Issue 9: the log names users by display name too. Added first, because the log's index
        # creation below (versions 5 and 6) creates every index of ``LOG_INDEXES``, its own too.
        # Rows written before keep a null display name: the store never had one to copy (the
        # snapshot holds Salesforce's fields, not Entra's name); they are found by UPN and ids.
        conn.execute(text("ALTER TABLE provisioning_log ADD COLUMN display_name TEXT"))
        # The quarantine names its users the same way; earlier rows keep a null name too.
        conn.execute(text("ALTER TABLE quarantine ADD COLUMN display_name TEXT"))
    if found < 2:
        conn.execute(text("ALTER TABLE cycles ADD COLUMN run_key VARCHAR(250)"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_cycles_run_key ON cycles (run_key)"))
    if found < 4:  # who each row of a recorded Bulk job is, for a crashed run's log rows
        conn.execute(text("ALTER TABLE bulk_jobs ADD COLUMN records TEXT"))
    if found < 5:  # issue 9: the stage a running cycle reached, and the log's keyset-paging indexes
        conn.execute(text("ALTER TABLE cycles ADD COLUMN stage VARCHAR(16)"))
        # The single-column log indexes became (column, id) pairs for keyset paging.
        conn.execute(text("DROP INDEX IF EXISTS ix_provisioning_log_cycle_id"))
        conn.execute(text("DROP INDEX IF EXISTS ix_provisioning_log_entra_id"))
        for index in schema.LOG_INDEXES:
            index.create(conn)  # each for its dialect (``ddl_if``); a version 3 database has none of them
    if found < 6:  # issue 8: reactivations counted apart (a part of ``updated``; older cycles say 0)
        conn.execute(text("ALTER TABLE cycles ADD COLUMN reactivated INTEGER NOT NULL DEFAULT 0"))
        # The log's time-window index and SQLite's UPN index with action and status came after
        # version 5's first indexes: a version 5 store may have the old UPN index and lack these
        # (created with version 7's below).
        conn.execute(text("DROP INDEX IF EXISTS ix_provisioning_log_upn_lower"))
    if found < 7:  # the display name's indexes, and those a version 5 store may lack (above)
        present = index_names(conn, "provisioning_log")
        for index in schema.LOG_INDEXES:
            if index.name not in present:
                index.create(conn)  # skipped on the other dialect (``ddl_if``)
    if found < 8:  # why a cycle that did not commit stopped (its kind; the message is ``reason``)
        conn.execute(text("ALTER TABLE cycles ADD COLUMN failure_kind VARCHAR(16)"))
    conn.execute(update(schema.state_schema).where(schema.state_schema.c.id == 1).values(version=schema.SCHEMA_VERSION))
