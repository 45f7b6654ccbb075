"""The state database's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

JSON values are stored as text (encoded with orjson) rather than in a JSON column type: the
same bytes work on both back ends, and decoding a million small documents in Python is faster
than letting each driver do it its own way. Timestamps are always UTC; SQLite has no time zone
type, so :class:`UTCDateTime` strips the zone on the way in and puts it back on the way out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.sql import column, func, literal_column
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 8
"""Bump with a migration in ``store._migrate`` whenever a table changes shape."""

ID = String(64)
"""Entra object ids and cycle ids (both short); Salesforce ids are 18 characters."""


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every back end."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text, e.g. from a textual query
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a long-lived log.
AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

state_schema = Table(
    "state_schema",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("writer_lock_at", UTCDateTime, nullable=True),
    comment="One row: the schema version, and the row every cycle start locks (one writer).",
)

cycles = Table(
    "cycles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("owner", String(300), nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("committed_at", UTCDateTime, nullable=True),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("deactivated", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("escrowed", Integer, nullable=False, default=0),
    Column("held_back", Integer, nullable=False, default=0),
    # Of ``updated``, the users re-enabled (schema version 6).
    Column("reactivated", Integer, nullable=False, default=0, server_default="0"),
    Column("reason", Text, nullable=True),
    Column("phase_seconds", Text, nullable=False, default="{}"),
    Column("requests", Text, nullable=False, default="{}"),
    Column("mapping_fingerprint", String(128), nullable=True),
    # Who asked for the cycle, e.g. ``airflow:<dag_id>:<run_id>`` or ``cli``: a cleared Airflow
    # task resumes its run's uncommitted cycle instead of starting another (schema version 2).
    Column("run_key", String(250), nullable=True, index=True),
    # The stage the cycle last entered (``stages.STAGES``), so a monitor can show how far a running
    # cycle got; the stages' timings arrive only with the commit (schema version 5).
    Column("stage", String(16), nullable=True),
    # What stopped a cycle that did not commit: ``errors.FAILURE_KINDS`` (``reason`` holds the
    # message); null while it runs or when it committed, so the page says why (schema version 8).
    Column("failure_kind", String(16), nullable=True),
)

leases = Table(
    # The one-writer lease (schema version 2): a holder owns the critical section from reading the
    # state to committing it, whatever kind of run it is (scheduled, manual, backfill, the CLI).
    # ``expires_at`` lets a killed holder's lease lapse instead of blocking writers forever.
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

job_quarantine = Table(
    # Entra's quarantine of the provisioning job (schema version 3), one row: why automatic runs are
    # held back and until when, and the consecutive authentication failures that may start it.
    "job_quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reason_code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("since", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("notified_code", String(64), nullable=True),
    Column("auth_failures", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)

watermark = Table(
    "watermark",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delta_link", Text, nullable=True),
    Column("mapping_fingerprint", String(128), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

snapshot = Table(
    "snapshot",
    metadata,
    Column("entra_id", ID, primary_key=True),
    Column("sf_id", String(18), nullable=True),
    Column("match_value", Text, nullable=True),
    Column("is_active", Boolean, nullable=False),
    Column("fields", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("last_cycle_id", ID, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

seen = Table(
    # Users a cycle evaluated that have no Salesforce link (quarantined, escrowed before their first
    # success, out of scope and never provisioned), with the roles they had: incremental cycles skip
    # them until Graph reports a change, their roles change, or their escrow retry is due.
    "seen",
    metadata,
    Column("entra_id", ID, primary_key=True),
    Column("roles", Text, nullable=False),
    Column("last_cycle_id", ID, nullable=True),
)

escrow = Table(
    "escrow",
    metadata,
    Column("entra_id", ID, primary_key=True),
    Column("action", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False, index=True),
    Column("error_code", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("last_cycle_id", ID, nullable=True),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("cycle_id", ID, nullable=False, index=True),
    Column("entra_id", ID, nullable=False),
    Column("upn", Text, nullable=True),
    Column("reasons", Text, nullable=False),
    # Entra's displayName, so the page names a quarantined user as the log does (schema version 7).
    Column("display_name", Text, nullable=True),
)

LOG_INDEXES = (
    Index("ix_provisioning_log_cycle_id_id", "cycle_id", "id"),
    Index("ix_provisioning_log_entra_id_id", "entra_id", "id"),
    Index("ix_provisioning_log_sf_id_id", "sf_id", "id"),
    # Partial indexes: successful rows, most of a large log, pay nothing for them. Successes are
    # found in id order at once; the rarer statuses and error codes through these. A query uses them
    # by repeating the index's condition literally (``log_query.UNSUCCESSFUL``: SQLite's rule).
    Index(
        "ix_provisioning_log_status_id",
        "status",
        "id",
        sqlite_where=column("status") != literal_column("'Success'"),
        postgresql_where=column("status") != literal_column("'Success'"),
    ),
    Index(
        "ix_provisioning_log_error_code_id",
        "error_code",
        "id",
        sqlite_where=column("error_code").is_not(None),
        postgresql_where=column("error_code").is_not(None),
    ),
    # A time range that ended in the past reads its window here (``log_query.window_in_the_past``).
    Index("ix_provisioning_log_at_id", "at", "id"),
    # SQLite compares text bytewise; PostgreSQL by the database's collation, under which a prefix
    # range is not "starts with": its index (and the search, ``log_query.upn_key``) use "C".
    # On SQLite with action and status, so a prefix search with those filters picks its page's ids
    # from the index alone (``log_query._select``) instead of reading every row of the prefix.
    Index("ix_provisioning_log_upn_lower_action_status", func.lower(column("upn")), "action", "status").ddl_if(
        dialect="sqlite"
    ),
    Index("ix_provisioning_log_upn_lower_c", func.lower(column("upn")).collate("C")).ddl_if(dialect="postgresql"),
    # The display name the same way (schema version 7): a name search is a prefix of either.
    Index(
        "ix_provisioning_log_display_name_lower_action_status",
        func.lower(column("display_name")),
        "action",
        "status",
    ).ddl_if(dialect="sqlite"),
    Index("ix_provisioning_log_display_name_lower_c", func.lower(column("display_name")).collate("C")).ddl_if(
        dialect="postgresql"
    ),
)
"""The log's indexes, named so ``database._migrate`` can create them in an older database."""
LOG_SPARSE_INDEXES = ("ix_provisioning_log_status_id", "ix_provisioning_log_error_code_id")
"""The log's partial indexes, which hold only its rarer rows: a bulk load keeps them in place
(``deferred_indexes``' ``keep``) instead of building them again."""

provisioning_log = Table(
    "provisioning_log",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("cycle_id", ID, nullable=False),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("entra_id", ID, nullable=False),
    Column("upn", Text, nullable=True),
    Column("sf_id", String(18), nullable=True),
    Column("changes", Text, nullable=False),
    Column("error_code", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    # Entra's displayName (schema version 7; null in older rows and for users known by id alone).
    Column("display_name", Text, nullable=True),
    # Keyset paging of the log (newest first, ``id < last seen``) under a filter (schema version 5):
    # each filter's column followed by ``id``, so PostgreSQL reads one page of the index in order
    # (SQLite's indexes end in the rowid anyway). The UPN and the display name are searched
    # case-insensitively by prefix.
    *LOG_INDEXES,
)

bulk_jobs = Table(
    "bulk_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("cycle_id", ID, nullable=False),
    Column("operation", String(32), nullable=False),
    Column("key_field", String(80), nullable=False),
    Column("keys", Text, nullable=False),
    Column("records", Text, nullable=True),  # v4: {entra id: [UPN, action]} for the provisioning log
    Column("state", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
