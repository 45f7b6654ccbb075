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
from typing import Any, Protocol

import numpy as np
import pandas as pd

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import Action, Plan, PlannedChange, QuarantinedUser, salesforce_name

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
_NAMED = (*WRITE_GROUPS, "held_back")
"""The groups whose changes reach the provisioning log named (``PlanTable.name``)."""
_NAMED_GROUPS = [PLAN_GROUPS.index(group) for group in _NAMED]


class PersonTexts:
    """A text per person (a UPN, a display name) kept as the USERS frame's column rather than as a
    million Python strings (160 MB for the two at 1,000,000 users): the changes of a batch
    ``load`` theirs at once, anything else reads one by one; persons past the column have none.
    A value set (``name``) overrides the column's."""

    def __init__(self, column: pd.Series | None, size: int) -> None:
        self._column = column.reset_index(drop=True) if column is not None else pd.Series([], dtype=object)
        self._size = size
        self._set: dict[int, str | None] = {}
        self._loaded: dict[int, str | None] = {}

    @classmethod
    def of(cls, values: list[str | None]) -> PersonTexts:
        return cls(pd.Series(values, dtype=object), len(values))

    def __len__(self) -> int:
        return self._size

    def load(self, people: np.ndarray) -> None:
        """Read the texts of ``people`` (positions) at once, for the reads that follow (it replaces
        the previous load)."""
        inside = people[people < len(self._column)]
        values = self._column.iloc[inside].to_numpy(dtype=object, na_value=None).tolist()
        self._loaded = dict(zip(inside.tolist(), values, strict=True))

    def missing(self, people: np.ndarray) -> np.ndarray:
        """Which of ``people`` have no text (None)."""
        inside = people < len(self._column)
        absent = np.ones(len(people), dtype=bool)
        absent[inside] = self._column.iloc[people[inside]].isna().to_numpy(dtype=bool)
        for i, person in enumerate(people.tolist()):
            if person in self._set:
                absent[i] = self._set[person] is None
        return absent

    def __getitem__(self, person: int) -> str | None:
        if person in self._set:
            return self._set[person]
        if person in self._loaded:
            return self._loaded[person]
        if person >= len(self._column):
            return None
        value = self._column.iloc[person]
        return None if value is None or pd.isna(value) else value

    def __setitem__(self, person: int, value: str | None) -> None:
        self._set[person] = value


class Segment(Protocol):
    """Users the diff decided about in one step (creates, users with a link, leavers), and what
    their changes are built from."""

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        """The changes of the segment's users at ``rows`` (its own row numbers, ascending)."""
        ...


PlanColumns = dict[str, Any]
"""A batch of one group's changes as the plan file's columns (``artifacts.PLAN_COLUMNS`` but
``group``), all of one length: each a list of texts (None for null) or an Arrow string array.
The JSON columns (``changes``, ``desired``, ``roles``) hold exactly the text ``PlanCodec`` makes
of the ``PlannedChange`` objects the segment's ``build`` would give."""


class ColumnSegment(Segment, Protocol):
    """A segment that also gives its changes as the plan file's columns, no ``PlannedChange`` per
    user (a first sync's million creates: building and then encoding the objects was most of the
    plan file's write)."""

    def plan_columns(self, rows: np.ndarray, *, named: bool) -> PlanColumns | None:
        """``build(rows)`` as columns; ``named``: a change without a display name takes the
        Salesforce user's (``PlanTable.name``). None when this batch cannot be (a value JSON cannot
        hold): the caller builds the objects, whose encoding then names the user."""
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
    upn: PersonTexts
    """By person; the segments read it as they build, so ``name`` reaches the changes."""
    display_name: PersonTexts
    """By person, like ``upn``."""
    quarantined: list[QuarantinedUser]
    held_back_reason: str | None = None
    named: bool = False
    """``name`` was called: a write or held-back change still without a display name then gets
    the Salesforce user's as it is built."""

    @classmethod
    def of(cls, plan: Plan) -> PlanTable:
        """The table of a plan whose changes are built already (a plan made elsewhere, tests)."""
        changes = [change for group in PLAN_GROUPS for change in getattr(plan, group)]
        groups = [code for code, group in enumerate(PLAN_GROUPS) for _ in getattr(plan, group)]
        table = cls(
            group=np.array(groups, dtype=np.int8),
            segment=np.zeros(len(changes), dtype=np.int16),
            row=np.arange(len(changes)),
            segments=[],
            entra_ids=[c.entra_id for c in changes],
            upn=PersonTexts.of([c.user_principal_name for c in changes]),
            display_name=PersonTexts.of([c.display_name for c in changes]),
            quarantined=list(plan.quarantined),
            held_back_reason=plan.held_back_reason,
        )
        table.segments.append(_Built(table, changes))
        return table

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
        """Entra ids of the writes and held-back users without a UPN or display name (see ``name``)."""
        sent = np.flatnonzero(np.isin(self.group, _NAMED_GROUPS))
        nameless = sent[self.upn.missing(sent) | self.display_name.missing(sent)]
        return [self.entra_ids[p] for p in nameless.tolist()]

    def name(self, known: Mapping[str, tuple[str | None, str | None]]) -> None:
        """Give the writes and held-back users without a UPN or display name the ones ``known``
        has (Entra id → (UPN, display name), the provisioning log's); a change still without a
        display name gets the Salesforce user's, ``FirstName LastName`` of its ``desired`` (see
        ``stages._name_the_gone``)."""
        self.named = True
        sent = np.flatnonzero(np.isin(self.group, _NAMED_GROUPS))
        for person in sent[self.upn.missing(sent) | self.display_name.missing(sent)].tolist():
            upn, display_name = known.get(self.entra_ids[person], (None, None))
            self.upn[person] = self.upn[person] or upn
            self.display_name[person] = self.display_name[person] or display_name

    def batches(self, group: str, size: int | None = None) -> Iterator[list[PlannedChange]]:
        """The changes of ``group``, at most ``size`` (``BUILD_BATCH``) at a time, in the plan's order."""
        people, size = self.people(group), size or BUILD_BATCH
        for start in range(0, len(people), size):
            yield self._finish(group, self._build(people[start : start + size]))

    def encoded(self, group: str, size: int | None = None) -> Iterator[list[PlannedChange] | PlanColumns]:
        """``batches``, each given as columns (``PlanColumns``) where its segment can (every user
        of the batch in one ``ColumnSegment``), else as the changes."""
        people, size = self.people(group), size or BUILD_BATCH
        for start in range(0, len(people), size):
            batch = people[start : start + size]
            columns = self._columns(group, batch)
            yield columns if columns is not None else self._finish(group, self._build(batch))

    def _columns(self, group: str, people: np.ndarray) -> PlanColumns | None:
        if group == "held_back" or not len(people):  # held back: the changes' action is rewritten
            return None
        segments = self.segment[people]
        first = int(segments[0])
        columns = getattr(self.segments[first], "plan_columns", None)
        if columns is None or not bool((segments == first).all()):
            return None
        self.upn.load(people)
        self.display_name.load(people)
        return columns(self.row[people], named=self.named and group in _NAMED)

    def _finish(self, group: str, changes: list[PlannedChange]) -> list[PlannedChange]:
        """Built ``changes`` of ``group`` as the plan holds them (held back, named)."""
        if group == "held_back":
            changes = [dataclasses.replace(c, action=Action.STAGED_DELETE) for c in changes]
        if self.named and group in _NAMED:
            for change in changes:
                if change.display_name is None:
                    change.display_name = salesforce_name(change.desired)
        return changes

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
        self.upn.load(people)
        self.display_name.load(people)
        segments = self.segment[people]
        for segment in np.unique(segments).tolist():
            at = np.flatnonzero(segments == segment)
            changes = self.segments[segment].build(self.row[people[at]])
            built.update(zip(at.tolist(), changes, strict=True))
        return [built[i] for i in range(len(people))]


class _Built:
    """The segment of ``PlanTable.of``: changes built already, given back with the table's names."""

    def __init__(self, table: PlanTable, changes: list[PlannedChange]) -> None:
        self.table, self.changes = table, changes

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        upn, display_name = self.table.upn, self.table.display_name
        return [
            dataclasses.replace(self.changes[row], user_principal_name=upn[row], display_name=display_name[row])
            for row in rows.tolist()
        ]
