"""Entra's escrow schedule: when a record that failed is tried again, and when we give up.

Entra retries a failed record after 6 h, 12 h, 24 h and then daily until 28 days after the
first failure (``SyncOptions.escrow_schedule_hours`` carries that list of waits). Attempt *n*
(the n-th failure in a row) waits ``schedule[n - 1]`` hours; a failure after the last wait
drops the record from escrow — it is logged as a final failure and an administrator must act.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def check_schedule(schedule_hours: Sequence[float]) -> tuple[float, ...]:
    """The schedule as a tuple; negative or non-numeric waits are configuration errors."""
    waits = tuple(schedule_hours)
    for index, hours in enumerate(waits):
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours < 0:
            raise ValueError(f"escrow schedule: wait #{index + 1} is {hours!r}; every wait must be hours >= 0")
    return waits


def next_attempt_at(attempts: int, now: dt.datetime, schedule_hours: Sequence[float]) -> dt.datetime | None:
    """When to retry after the ``attempts``-th failure in a row, or None once the schedule is used up."""
    if attempts < 1:
        return now  # never really tried (unprocessed): due at once
    if attempts > len(schedule_hours):
        return None
    return now + dt.timedelta(hours=float(schedule_hours[attempts - 1]))


def give_up_note(attempts: int, first_failed_at: dt.datetime) -> str:
    """The sentence appended to the final failure's message when escrow drops a record."""
    return (
        f"[escrow: giving up after {attempts} failed attempts since {first_failed_at:%Y-%m-%d %H:%M} UTC; "
        "the record is no longer retried automatically]"
    )
