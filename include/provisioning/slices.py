"""Slices of a tenant by assignment date, for an initial sync run interval by interval.

A tenant's initial sync can run as an Airflow backfill: each run provisions the users whose
assignment to the app (direct, or their group's) was created in the run's data interval. Entra has
no such thing; it is how a long history becomes runs a person can watch, retry and re-run.

Rules (docs/decisions.md, "Initial sync as a backfill"):

- A user's assignment date is the earliest ``createdDateTime`` of the assignments that reach the
  user (Graph's ``appRoleAssignment``); an assignment without one counts as the oldest.
- A slice ``[start, end)`` takes the users assigned in it, plus users assigned *before* ``start``
  that no cycle has evaluated yet: the first interval of a backfill therefore takes everything
  older, and a run after a failed or skipped interval catches up.
- A slice never deactivates anyone outside it (users no longer assigned are not in any slice),
  and it does not save a delta link: the 20-minute DAG's next cycle is full and sees everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

_SECONDS = "%Y-%m-%dT%H:%M:%S"
"""Graph's createdDateTime is UTC ISO 8601; its first 19 characters compare as text."""


@dataclass(frozen=True)
class AssignmentWindow:
    """``[start, end)`` in UTC; ``start`` None means "from the beginning"."""

    start: dt.datetime | None
    end: dt.datetime

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"assignment window bounds must be timezone-aware, got {value!r}")
        if self.start is not None and self.start >= self.end:
            raise ValueError(f"empty assignment window: {self.start.isoformat()} is not before {self.end.isoformat()}")

    def describe(self) -> str:
        start = self.start.isoformat() if self.start is not None else "the beginning"
        return f"users assigned from {start} until {self.end.isoformat()} (and older ones not yet evaluated)"

    def to_json(self) -> dict[str, str | None]:
        return {"start": self.start.isoformat() if self.start else None, "end": self.end.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, str | None]) -> AssignmentWindow:
        start, end = data.get("start"), data.get("end")
        if end is None:
            raise ValueError("assignment window without an end")
        return cls(dt.datetime.fromisoformat(start) if start else None, dt.datetime.fromisoformat(end))

    def select(self, since: Mapping[str, str], evaluated: Collection[str]) -> set[str]:
        """Ids of ``since`` (user id → earliest assignment ``createdDateTime``) in this slice;
        ``evaluated``: ids some earlier cycle already evaluated (snapshot and seen users)."""
        end = _text(self.end)
        start = _text(self.start) if self.start is not None else ""
        chosen: set[str] = set()
        for user_id, created in since.items():
            key = created[:19]
            if key >= end:
                continue
            if key >= start or user_id not in evaluated:
                chosen.add(user_id)
        return chosen


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_SECONDS)
