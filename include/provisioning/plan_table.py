"""A plan as the diff decided it, its planned changes built a batch of users at a time.

The diff decides column-wise (``diff.py``): which plan list each user ends in, and the frames the
values come from. Building every ``PlannedChange`` at once (two dicts per user) took some 2.5 GB at
a million users in the plan task, only to be encoded into the plan file and dropped. A
``PlanTable`` keeps the decisions (a few arrays) and the diff's frames, and builds the changes of
``BUILD_BATCH`` users at a time, in the plan's order: the plan file is written row group by row
group from them (``PlanCodec.encode_batches``), and ``to_plan`` builds the whole ``Plan`` where it
is held in memory anyway (the command line's cycle, tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import Action, Plan, PlannedChange, QuarantinedUser

PLAN_GROUPS = ("creates", "updates", "deactivations", "reactivations", "held_back", "unchanged")
"""The lists of a ``Plan`` holding planned changes, in the plan file's order."""
WRITE_GROUPS = ("creates", "updates", "deactivations", "reactivations")
"""The groups ``Plan.writes()`` sends, in its order."""
GROUP_OF_ACTION = {
    Action.CREATE: PLAN_GROUPS.index("creates"),
    Action.UPDATE: PLAN_GROUPS.index("updates"),
    Action.DISABLE: PLAN_GROUPS.index("deactivations"),
    Action.REACTIVATE: PLAN_GROUPS.index("reactivations"),
    Action.OTHER: PLAN_GROUPS.index("unchanged"),
}
"""The group code (position in ``PLAN_GROUPS``) of each action the diff decides."""
NO_GROUP = -1
"""The group code of a user with no planned change (held with a reason: ``quarantined``)."""
BUILD_BATCH = 20_000
"""Users whose ``PlannedChange`` objects are built at a time."""


class Segment(Protocol):
    """Users the diff decided about in one step (creates, users with a link, leavers), and what
    their changes are built from."""

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        """The changes of the segment's users at ``rows`` (its own row numbers, ascending)."""
        ...


@dataclass
class PlanTable:
    """Every user of a cycle by position: the plan list it ends in and where its change comes from.

    Arrays by person: ``group`` (position in ``PLAN_GROUPS``, ``NO_GROUP`` for the quarantined),
    ``segment`` (index into ``segments``) and ``row`` (the user's row in that segment)."""

    group: np.ndarray
    segment: np.ndarray
    row: np.ndarray
    segments: list[Segment]
    entra_ids: list[str]
    upn: list[str | None]
    """By person; the segments read it as they build, so ``name`` reaches the changes."""
    quarantined: list[QuarantinedUser]
    held_back_reason: str | None = None

    def people(self, group: str) -> np.ndarray:
        """Positions of the users in ``group``, ascending (the plan's order within a list)."""
        return np.flatnonzero(self.group == PLAN_GROUPS.index(group))

    def count(self, group: str) -> int:
        return int(np.count_nonzero(self.group == PLAN_GROUPS.index(group)))

    def ids(self, group: str) -> list[str]:
        return [self.entra_ids[person] for person in self.people(group).tolist()]

    def hold_back_deactivations(self, reason: str) -> None:
        """Move every deactivation to ``held_back`` (as ``STAGED_DELETE``) with ``reason``."""
        self.group[self.group == PLAN_GROUPS.index("deactivations")] = PLAN_GROUPS.index("held_back")
        self.held_back_reason = reason

    def nameless(self) -> list[str]:
        """Entra ids of the writes and held-back users without a UPN (see ``name``)."""
        sent = np.isin(self.group, [PLAN_GROUPS.index(g) for g in (*WRITE_GROUPS, "held_back")])
        return [self.entra_ids[p] for p in np.flatnonzero(sent).tolist() if self.upn[p] is None]

    def name(self, upns: Mapping[str, str]) -> None:
        """Give users without a UPN the one in ``upns`` (Entra id → UPN)."""
        for person, entra_id in enumerate(self.entra_ids):
            if self.upn[person] is None and entra_id in upns:
                self.upn[person] = upns[entra_id]

    def batches(self, group: str, size: int = BUILD_BATCH) -> Iterator[list[PlannedChange]]:
        """The changes of ``group``, at most ``size`` at a time, in the plan's order."""
        people = self.people(group)
        for start in range(0, len(people), size):
            changes = self._build(people[start : start + size])
            if group == "held_back":
                changes = [dataclasses.replace(c, action=Action.STAGED_DELETE) for c in changes]
            yield changes

    def grouped(self) -> Iterator[tuple[str, PlannedChange]]:
        """(group, change) of every planned change, in the plan file's order."""
        for group in PLAN_GROUPS:
            for batch in self.batches(group):
                for change in batch:
                    yield group, change

    def to_plan(self) -> Plan:
        """The whole plan (every change built)."""
        plan = Plan(held_back_reason=self.held_back_reason, quarantined=list(self.quarantined))
        with collector_paused():
            for group in PLAN_GROUPS:
                target = getattr(plan, group)
                for batch in self.batches(group):
                    target.extend(batch)
        return plan

    def _build(self, people: np.ndarray) -> list[PlannedChange]:
        """The changes of ``people`` (positions, ascending), each built by its segment."""
        built: dict[int, PlannedChange] = {}
        segments = self.segment[people]
        for segment in np.unique(segments).tolist():
            at = np.flatnonzero(segments == segment)
            changes = self.segments[segment].build(self.row[people[at]])
            built.update(zip(at.tolist(), changes, strict=True))
        return [built[i] for i in range(len(people))]
