"""Entra's quarantine of the provisioning job, kept in the state store.

Entra quarantines a provisioning job when most of its writes fail or its credentials keep failing:
automatic cycles then run only once a day and one e-mail goes to the notification address (another
when the reason changes); a successful cycle, or an administrator's reset, lifts it
(Microsoft Learn, "Application provisioning in quarantine status"). Here "automatic" means
scheduled and backfill runs; a run a person starts goes ahead. This module keeps the state (one
row); ``quarantine_rules.py`` decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from include.provisioning.state import schema


@dataclass(frozen=True)
class JobQuarantine:
    """The job's quarantine row. ``active`` when a reason is set."""

    reason_code: str | None
    reason: str | None
    since: dt.datetime | None
    next_attempt_at: dt.datetime | None
    notified_code: str | None
    auth_failures: int

    @property
    def active(self) -> bool:
        return self.reason_code is not None

    def holds(self, now: dt.datetime) -> bool:
        """Whether automatic runs must still wait at ``now``."""
        return self.active and self.next_attempt_at is not None and now < self.next_attempt_at

    def describe(self) -> str:
        if not self.active:
            return "not quarantined"
        until = f"{self.next_attempt_at:%Y-%m-%d %H:%M} UTC" if self.next_attempt_at else "further notice"
        since = f"{self.since:%Y-%m-%d %H:%M} UTC" if self.since else "?"
        return f"quarantined since {since} ({self.reason_code}: {self.reason}); next attempt {until}"


NOT_QUARANTINED = JobQuarantine(None, None, None, None, None, 0)


def read(conn: Connection) -> JobQuarantine:
    row = conn.execute(select(schema.job_quarantine).where(schema.job_quarantine.c.id == 1)).mappings().first()
    if row is None:
        return NOT_QUARANTINED
    return JobQuarantine(
        row["reason_code"],
        row["reason"],
        row["since"],
        row["next_attempt_at"],
        row["notified_code"],
        row["auth_failures"],
    )


def write(conn: Connection, now: dt.datetime, **values: object) -> None:
    table = schema.job_quarantine
    if conn.execute(select(table.c.id).where(table.c.id == 1)).first() is None:
        conn.execute(insert(table).values(id=1, auth_failures=0, updated_at=now))
    conn.execute(update(table).where(table.c.id == 1).values(updated_at=now, **values))
