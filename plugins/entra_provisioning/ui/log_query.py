"""The provisioning log, searched, filtered and paged by key (read-only).

Pages are newest first and keyed by the row id: a page asks for rows with ``id < before``, so a
page costs the same on the millionth row as on the first and a row written between two pages
neither repeats nor disappears (no ``OFFSET``). The filters have ``(column, id)`` indexes in the
state store's schema (``schema.LOG_INDEXES``, version 5); a success is found in id order (most rows
are successes), action and time range walk the id order too.

The search box takes one text and decides what it is from its shape: an Entra object id (a GUID),
a Salesforce user id (15 or 18 letters and digits, ``005`` prefix, as Salesforce's key prefix for
User), or else a name: the start of the userPrincipalName or of the display name (Entra's
``displayName``, schema version 7), case-insensitive. An id reads one index; a name reads the UPN's
and the display name's (SQLite: each branch on its own, ``_select``). "Case-insensitive" is the
database's ``lower()``, applied to the search text too so both sides fold alike: PostgreSQL folds
by the database's character type (UTF-8: every letter), SQLite folds ASCII letters only, so there
``émile`` does not find ``Émile`` (``Émile`` and ``ÉMILE`` do). Rows written before version 7 have
no display name and are found by UPN and ids.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Text, and_, func, literal, literal_column, or_, select, union

from include.provisioning.model import Action, Status, salesforce_id_key
from include.provisioning.salesforce_messages import plain_message
from include.provisioning.state import schema
from include.provisioning.state.codec import loads, utc

LOG = schema.provisioning_log
MAX_PAGE = 500
"""The most rows one page may ask for."""
EXPORT_BATCH = 5_000
"""Rows read at a time while streaming an export (bounds memory at a million rows)."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SALESFORCE_USER_ID = re.compile(r"^005[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$")
UNSUCCESSFUL = LOG.c.status != literal_column(f"'{Status.SUCCESS.value}'")
"""The condition of the partial ``(status, id)`` index, written as the index has it: SQLite uses a
partial index only for a query that repeats its condition with the same literal (no parameter)."""
_PREFIX_END = "\U0010ffff"  # the largest code point: every text starting with the prefix sorts below it


@dataclass(frozen=True)
class LogFilter:
    """What the log view and the export select. Every field is optional; given ones all apply.

    ``search``: see the module docstring. ``since``/``until``: the row's ``at`` (UTC), ``since``
    inclusive and ``until`` exclusive. ``action``/``status``: the log's values (``model.Action``,
    ``model.Status``); an unknown value raises ``ValueError`` naming the allowed ones."""

    search: str | None = None
    cycle_id: str | None = None
    action: str | None = None
    status: str | None = None
    error_code: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.action is not None and self.action not in {a.value for a in Action}:
            raise ValueError(f"action {self.action!r} is not one of {', '.join(a.value for a in Action)}")
        if self.status is not None and self.status not in {s.value for s in Status}:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(s.value for s in Status)}")

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """SQL conditions for ``dialect`` ("sqlite" or "postgresql")."""
        found: list[ColumnElement[bool]] = []
        search = (self.search or "").strip()
        if search:
            found.append(_search_condition(search, dialect))
        return found + self.other_conditions()

    def other_conditions(self) -> list[ColumnElement[bool]]:
        """The conditions of every field but ``search`` (the same on both back ends)."""
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (LOG.c.cycle_id, self.cycle_id),
            (LOG.c.action, self.action),
            (LOG.c.status, self.status),
            (LOG.c.error_code, self.error_code),
        ):
            if value:
                found.append(column == value)
        if self.status and self.status != Status.SUCCESS.value:
            found.append(UNSUCCESSFUL)  # lets the status filter use its partial index
        if self.since is not None:
            found.append(LOG.c.at >= utc(self.since))
        if self.until is not None:
            found.append(LOG.c.at < utc(self.until))
        return found


def search_kind(search: str) -> str:
    """What the search text is taken for: ``entra_id``, ``sf_id`` or ``name`` (the start of a
    UPN or of a display name)."""
    if _GUID.match(search):
        return "entra_id"
    if _SALESFORCE_USER_ID.match(search):
        return "sf_id"
    return "name"


def lowered_key(column: Any, dialect: str) -> ColumnElement[str]:
    """``lower(column)`` as its index holds it (the UPN's and the display name's,
    ``schema.LOG_INDEXES``): PostgreSQL's under collation "C", so that a range of it is a prefix
    whatever the database's collation."""
    lowered = func.lower(column)
    return lowered.collate("C") if dialect == "postgresql" else lowered


def upn_key(dialect: str) -> ColumnElement[str]:
    """The lower-cased UPN as its index holds it (``lowered_key``)."""
    return lowered_key(LOG.c.upn, dialect)


def _starts_with(column: Any, search: str, dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``search``, case-insensitively, as a range of ``lowered_key`` (an
    index range, where ``LIKE`` would be a scan on PostgreSQL outside collation "C"). The search
    text is lowered by the database, as the column is (see the module notes)."""
    prefix = func.lower(literal(search, Text))
    key = lowered_key(column, dialect)
    return and_(key >= prefix, key < prefix.concat(_PREFIX_END))


def search_alternatives(search: str, dialect: str) -> list[ColumnElement[bool]]:
    """The conditions a row may meet to match ``search`` (any one of them), each readable from
    one index: one for an id, two for a name (its UPN starts with it, its display name does)."""
    kind = search_kind(search)
    if kind == "entra_id":
        return [LOG.c.entra_id == search.lower()]  # Graph writes object ids in lower case
    if kind == "sf_id":
        if len(search) == 18:
            return [or_(LOG.c.sf_id == search, LOG.c.sf_id == salesforce_id_key(search))]
        # A 15-character id matches its 18-character form (the same id plus a case checksum).
        in_range = and_(LOG.c.sf_id >= search, LOG.c.sf_id <= search + "ZZZ")
        return [or_(LOG.c.sf_id == search, and_(in_range, func.substr(LOG.c.sf_id, 1, 15) == search))]
    return [_starts_with(LOG.c.upn, search, dialect), _starts_with(LOG.c.display_name, search, dialect)]


def _search_condition(search: str, dialect: str) -> ColumnElement[bool]:
    """``search_alternatives`` as one condition."""
    alternatives = search_alternatives(search, dialect)
    return alternatives[0] if len(alternatives) == 1 else or_(*alternatives)


def _select(
    log_filter: LogFilter, dialect: str, before: int | None, limit: int, *, by_time: bool = False
) -> Select[Any]:
    """At most ``limit`` of the filter's rows, newest first. With ``by_time``
    (``window_in_the_past``) and for a ranged search on SQLite the ids are chosen first, ordered by
    ``id + 0``, an expression no index holds, so neither planner walks the id order from the newest
    row down to the matches; each reads the range from its index (``(at, id)``; the UPN's or the
    display name's, which also hold action and status) and sorts the ids it found, reading the
    table only for the ``limit`` rows shown. On SQLite a name search picks ``limit`` ids from each
    of its two indexes on its own and keeps the newest ``limit`` of both: with ``OR`` SQLite reads
    each matching row from the table to check the other filters. The rows and their order are the
    same either way."""
    conditions = log_filter.other_conditions()
    if before is not None:
        conditions.append(_key_below(log_filter, dialect, before))
    search = (log_filter.search or "").strip()
    alternatives = search_alternatives(search, dialect) if search else []
    ranged = _ranged_on_sqlite(log_filter, dialect)
    if ranged and len(alternatives) > 1:
        newest_first = (LOG.c.id + 0).desc()
        branches = [
            select(LOG.c.id).where(alternative, *conditions).order_by(newest_first).limit(limit).subquery()
            for alternative in alternatives
        ]
        found = union(*(select(branch.c.id) for branch in branches)).subquery()
        ids = select(found.c.id).order_by(found.c.id.desc()).limit(limit)
        return select(LOG).where(LOG.c.id.in_(ids.scalar_subquery())).order_by(LOG.c.id.desc())
    if alternatives:
        conditions.insert(0, _search_condition(search, dialect))
    if by_time or ranged:
        ids = select(LOG.c.id).where(*conditions).order_by((LOG.c.id + 0).desc()).limit(limit)
        return select(LOG).where(LOG.c.id.in_(ids.scalar_subquery())).order_by(LOG.c.id.desc())
    return select(LOG).where(*conditions).order_by(LOG.c.id.desc()).limit(limit)


def window_in_the_past(conn: Connection, log_filter: LogFilter) -> bool:
    """Whether the filter's time range is better read from the ``at`` index than by walking the
    ids down from the newest: when it has an end (``until``) and covers less time than the log
    holds after that end. The log is written in time order, so the time after the window stands
    for the rows an id walk would read before reaching it, and the window's length for the rows
    the index would read. Two index lookups (oldest and newest ``at``); False for an empty log."""
    if log_filter.until is None:
        return False
    # Separate queries: SQLite answers min() or max() from an index only when it is the query's one aggregate.
    oldest = conn.execute(select(func.min(LOG.c.at))).scalar()
    newest = conn.execute(select(func.max(LOG.c.at))).scalar()
    if oldest is None or newest is None:
        return False
    oldest, newest = utc(oldest), utc(newest)
    until = min(utc(log_filter.until), newest)
    since = max(utc(log_filter.since), oldest) if log_filter.since is not None else oldest
    return until - since < newest - until


def _key_below(log_filter: LogFilter, dialect: str, before: int) -> ColumnElement[bool]:
    """``id < before``. For a range search on SQLite written ``id + 0 < before``: with the range's
    bounds as parameters SQLite cannot tell how few rows it selects and would rather walk the whole
    table in id order (saving a sort) than read the range's index, unless the id term is no index
    term at all (the SQLite query planner's documented way to rule one out)."""
    return (LOG.c.id + 0 < before) if _ranged_on_sqlite(log_filter, dialect) else (LOG.c.id < before)


def _ranged_on_sqlite(log_filter: LogFilter, dialect: str) -> bool:
    """A search that is a range of an index (a name prefix, a 15-character Salesforce id) on SQLite."""
    search = (log_filter.search or "").strip()
    kind = search_kind(search) if search else None
    return dialect == "sqlite" and (kind == "name" or (kind == "sf_id" and len(search) == 15))


def page(
    conn: Connection, log_filter: LogFilter, *, before: int | None = None, limit: int = 50, full: bool = False
) -> dict[str, Any]:
    """One page, newest first: ``{"rows": [row...], "next_before": id | None}``; pass
    ``next_before`` as ``before`` for the next page (None: this was the last). ``limit`` is
    clamped to 1..``MAX_PAGE``. Rows are ``summary_row`` dicts (``full_row`` with ``full``)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    query = _select(log_filter, conn.dialect.name, before, limit + 1, by_time=window_in_the_past(conn, log_filter))
    rows = conn.execute(query).mappings().all()
    more = len(rows) > limit
    shape = full_row if full else summary_row
    shown = [shape(row) for row in rows[:limit]]
    return {"rows": shown, "next_before": shown[-1]["id"] if more else None}


def export_rows(connect: Any, log_filter: LogFilter) -> Iterator[dict[str, Any]]:
    """Every row the filter selects, newest first, as ``full_row`` dicts, read ``EXPORT_BATCH``
    at a time by key; ``connect()`` gives a connection context (one per batch, so a long export
    holds no read transaction open between batches)."""
    before: int | None = None
    while True:
        with connect() as conn:
            by_time = window_in_the_past(conn, log_filter)
            query = _select(log_filter, conn.dialect.name, before, EXPORT_BATCH, by_time=by_time)
            rows = conn.execute(query).mappings().all()
        for row in rows:
            yield full_row(row)
        if len(rows) < EXPORT_BATCH:
            return
        before = rows[-1]["id"]


def one_row(conn: Connection, row_id: int) -> dict[str, Any] | None:
    """The log row ``row_id`` as ``full_row``, or None."""
    row = conn.execute(select(LOG).where(LOG.c.id == row_id)).mappings().first()
    return None if row is None else full_row(row)


def summary_row(row: Any) -> dict[str, Any]:
    """A list row: ``id``, ``at`` (ISO 8601 UTC), ``cycle_id``, ``action``, ``status``,
    ``entra_id``, ``user_principal_name``, ``display_name`` (None in rows before schema version 7),
    ``sf_id``, ``error_code``, ``error_message`` and ``changed`` (the names of the changed properties)."""
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "cycle_id": row["cycle_id"],
        "action": row["action"],
        "status": row["status"],
        "entra_id": row["entra_id"],
        "user_principal_name": row["upn"],
        "display_name": row["display_name"],
        "sf_id": row["sf_id"],
        "error_code": row["error_code"],
        "error_message": plain_message(row["error_message"]),  # rows stored before the loader did it
        "changed": sorted((loads(row["changes"]) or {}).keys()),
    }


def full_row(row: Any) -> dict[str, Any]:
    """``summary_row`` with ``changes``: ``[{"property", "old", "new"}]`` in property order
    (``old`` is None for a create; ``new`` None is a clear)."""
    changes = loads(row["changes"]) or {}
    return {
        **summary_row(row),
        "changes": [{"property": name, "old": pair[0], "new": pair[1]} for name, pair in sorted(changes.items())],
    }
