"""The one-writer lease: who may run a cycle's critical section right now.

A cycle reads the state (watermark, snapshot, escrow), writes to Salesforce and commits the
state; two of them interleaving would plan against state the other is changing. Airflow cannot
prevent that on its own: the DAG's ``max_active_runs`` does not bind backfill runs and a pool
serialises tasks, not runs (measured on Airflow 3.3.2; docs/decisions.md "Airflow"). So the state store
holds a named lease: a run takes it before reading the state and gives it back after the commit.
The lease expires (``expires_at``) so a holder that was killed cannot block writers forever; a
live holder renews it at every stage.

Rows are changed inside the store's write-lock transaction (the ``state_schema`` row), so two
acquirers on SQLite or PostgreSQL are serialised and exactly one wins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from include.provisioning.errors import LeaseBusyError, LeaseLostError

__all__ = ["Lease", "LeaseBusyError", "LeaseGrant", "LeaseLostError", "acquire", "current", "release", "renew"]
from include.provisioning.state import schema

WRITER_LEASE = "provisioning-writer"
"""The lease every writer of one state store competes for."""
DEFAULT_LEASE_TTL = dt.timedelta(minutes=60)
"""How long a lease lasts without renewal; stages renew it, so it only needs to outlast one stage."""


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: dt.datetime
    expires_at: dt.datetime

    def describe(self) -> str:
        return (
            f"lease {self.name!r} is held by {self.holder} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC unless renewed)"
        )


@dataclass(frozen=True)
class LeaseGrant:
    """The result of an attempt: ``granted`` with the lease, or the other holder's lease."""

    granted: bool
    lease: Lease
    took_over: Lease | None = None
    """An expired lease of another holder this grant replaced (its run is presumed dead)."""


def _row(conn: Connection, name: str) -> Lease | None:
    table = schema.leases
    row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
    if row is None:
        return None
    return Lease(row["name"], row["holder"], row["acquired_at"], row["expires_at"])


def acquire(
    conn: Connection, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime, *, force: bool = False
) -> LeaseGrant:
    """Take (or renew, for the same holder) the lease unless a live other holder has it.

    Must run inside the store's write-lock transaction. An expired lease of another holder — or,
    with ``force``, a live one (a person decided its holder is dead) — is replaced and reported
    in ``took_over``."""
    table = schema.leases
    current = _row(conn, name)
    expires = now + ttl
    if current is None:
        conn.execute(insert(table).values(name=name, holder=holder, acquired_at=now, expires_at=expires))
        return LeaseGrant(True, Lease(name, holder, now, expires))
    if current.holder == holder:
        conn.execute(update(table).where(table.c.name == name).values(expires_at=expires))
        return LeaseGrant(True, Lease(name, holder, current.acquired_at, expires))
    if current.expires_at > now and not force:
        return LeaseGrant(False, current)
    conn.execute(update(table).where(table.c.name == name).values(holder=holder, acquired_at=now, expires_at=expires))
    return LeaseGrant(True, Lease(name, holder, now, expires), took_over=current)


def renew(conn: Connection, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> Lease:
    """Extend ``holder``'s lease; :class:`LeaseLostError` when it is no longer theirs.

    An expired lease nobody else has taken yet is still ours: renewing it is safe because no
    other writer can have started meanwhile (starting needs the lease)."""
    current = _row(conn, name)
    if current is None or current.holder != holder:
        other = f"it is now held by {current.holder}" if current else "it was released"
        raise LeaseLostError(f"{holder} no longer holds lease {name!r}: {other}")
    expires = now + ttl
    conn.execute(update(schema.leases).where(schema.leases.c.name == name).values(expires_at=expires))
    return Lease(name, holder, current.acquired_at, expires)


def release(conn: Connection, name: str, holder: str) -> bool:
    """Give the lease back; False when ``holder`` did not hold it (nothing changes then)."""
    done = conn.execute(delete(schema.leases).where(schema.leases.c.name == name, schema.leases.c.holder == holder))
    return bool(done.rowcount)


def current(conn: Connection, name: str) -> Lease | None:
    return _row(conn, name)
