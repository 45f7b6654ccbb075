"""Plan the Salesforce writes of a cycle: match, compare, and decide per user.

Entra's provisioning service works one user at a time; here every step is a column operation on
the whole frame (merges for matching, vectorised comparisons for updates), and Python objects are
built only for the result, so a million users plan in seconds.

The rules (Entra's, see ``docs/external-apis.md``):

* **Linking.** A user in the snapshot keeps its Salesforce id (Entra remembers the target id).
  Any other user is matched on the table's matching fields in precedence order, first match
  wins: in full mode against the org (``Username`` case-insensitively, other fields exactly), in
  incremental mode against the snapshot's ``match_value`` (it cannot see the org; a Salesforce
  user this product never linked then shows up only as the loader's ``DUPLICATE_USERNAME``, so
  the cycle should choose full mode when in doubt). A Salesforce user linked to a user who is
  still in scope (or not part of this cycle) is never matched by another one; two users matching
  one Salesforce user on the same field, or one user matching two, are held with a reason.
* **Creates** (in scope, no link): every mapped field, defaults for nulls, nulls not sent. A
  user with reasons in ``blocks_create`` (rules that guard creation only, such as ``mail``
  missing) is held with them instead.
  Two creates with one Username (case-insensitive), or a create whose Username a Salesforce user
  already has, are held with a reason instead of failing in Salesforce.
* **Updates**: ``apply: always`` fields whose desired value differs from the current one after
  normalising (booleans, null vs "", 15/18-character ids, Username case); a null (or "") is not
  sent, except for ``clear_when_null`` fields with a value, whose change is ``FieldChange(old,
  None)``: the typed null the CSV writer sends as Bulk's ``#N/A``. A linked user with reasons
  in ``blocks_update`` is held with them instead of written.
* **Reactivations**: in scope and linked to an inactive user: ``IsActive`` true plus changes.
* **Deactivations**: soft-deleted (unassigned, disabled, deleted, out of scope) and linked to an
  active user: ``IsActive`` false and nothing else. Users linked to nothing are left alone.
* **Accidental-deletion threshold**: too many deactivations (count, or share of the managed
  users) move all of them to ``held_back``.

``desired`` is what Salesforce holds after the write for the fields the table manages
(the state store keeps it as the snapshot, which is what incremental cycles compare with).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import (
    SALESFORCE_ID_KEY,
    Action,
    FieldChange,
    Plan,
    PlannedChange,
    QuarantinedUser,
    salesforce_name,
)
from include.provisioning.plan_table import GROUP_OF_ACTION, NO_GROUP, PersonTexts, PlanColumns, PlanTable, Segment
from include.provisioning.settings import SyncOptions
from include.provisioning.shares import percent, percent_of
from include.provisioning.state.codec import json_bytes

USERNAME = "Username"
IS_ACTIVE = "IsActive"
NOT_TARGET_COLUMNS = frozenset(
    {"id", "IsSoftDeleted", "scopeReason", "ProfileName", "appRoleAssignments", "assignedVia", "userPrincipalName"}
)
"""MAPPED-frame columns that are not Salesforce fields (``_``-prefixed columns are skipped too)."""
MIN_MANAGED_FOR_SHARE = 20
"""Below this many managed users the share rule is not applied: 3 leavers of 10 are not an accident."""

_ID18 = r"[A-Za-z0-9]{18}"
_TRUE_TEXT = frozenset({"true", "1"})


@dataclass
class DiffInput:
    mapped: pd.DataFrame
    """MAPPED frame with ``ProfileId`` resolved, plus ``IsSoftDeleted`` from the USERS frame."""
    users: pd.DataFrame
    """USERS frame (id, userPrincipalName, appRoleAssignments, IsSoftDeleted, scopeReason): every
    user of this cycle; each ends in exactly one list of the plan."""
    snapshot: pd.DataFrame
    """SNAPSHOT frame: entra_id, sf_id, match_value, is_active, fields."""
    org: pd.DataFrame | None
    """ORG frame in full mode; None in incremental mode (current values come from the snapshot)."""
    matching: list[str]
    """Target fields used for matching, by precedence."""
    defaults: dict[str, Any]
    """Target field → value used on create when the mapped value is null."""
    create_only: set[str]
    """Fields mapped ``apply: on_create``: sent on create, never compared or updated."""
    clear_when_null: set[str]
    """Fields whose null desired value clears Salesforce's value (``#N/A``) instead of being skipped."""
    managed_count: int
    """Users this product manages (the snapshot's size), the base of the share rule."""
    options: SyncOptions
    blocks_create: dict[str, list[str]] = field(default_factory=dict)
    """Entra id → reasons of rules that guard creation only (validate's ``create`` expectations,
    the mapping's ``on_create`` fields): such a user is held if it would be created, and written
    as usual if it is linked to a Salesforce user."""
    blocks_update: dict[str, list[str]] = field(default_factory=dict)
    """Entra id → reasons of rules that guard updates only: such a user is held if it is linked to
    a Salesforce user (update, reactivation or no change), and created as usual otherwise."""


# -- normalisation ------------------------------------------------------------------------------


def _as_text(values: pd.Series) -> pd.Series:
    """String form for comparing and joining: nulls and "" become NA, integral floats lose ".0"."""
    if values.dtype.kind == "f":
        finite = values.dropna()
        if len(finite) and bool((finite == np.floor(finite)).all()):
            values = values.astype("Int64")
    if values.dtype.kind == "b":
        values = values.map({True: "true", False: "false"})
    if isinstance(values.dtype, pd.StringDtype):
        text = values
    else:
        text = values.astype(object).where(values.notna(), None).astype("str")
    return text.where(text != "", pd.NA)


def _looks_boolean(values: pd.Series) -> bool:
    if values.dtype.kind == "b" or str(values.dtype) == "boolean":
        return True
    present = values.dropna()
    if present.empty:
        return False
    kind = pd.api.types.infer_dtype(present, skipna=True)
    if kind == "boolean":
        return True
    return kind == "string" and bool(present.str.lower().isin(("true", "false")).all())


def _comparable(values: pd.Series, name: str, boolean: bool) -> pd.Series:
    """The form two values of one field are compared in (Salesforce's view of equality)."""
    text = _as_text(values)
    if boolean:
        lowered = text.str.lower()
        return lowered.where(~lowered.isin(("1", "0")), lowered.map({"1": "true", "0": "false"}))
    if name == USERNAME:
        return text.str.lower()
    if name.endswith("Id"):
        long_ids = text.str.fullmatch(_ID18).fillna(False).astype(bool)
        return text.where(~long_ids, text.str.slice(0, 15))
    return text


def _match_key(values: pd.Series, name: str) -> pd.Series:
    text = _as_text(values)
    return text.str.lower() if name == USERNAME else text


UNIQUE_FIELDS = (USERNAME, "FederationIdentifier", "CommunityNickname")
"""User fields Salesforce keeps unique (Username across every org, the others within the org)."""
CASE_INSENSITIVE = frozenset({USERNAME, "CommunityNickname"})


def _unique_key(values: pd.Series, name: str) -> pd.Series:
    """How Salesforce compares ``name`` for uniqueness (the sandbox does the same)."""
    text = _as_text(values)
    return text.str.lower() if name in CASE_INSENSITIVE else text


def _key15(ids: pd.Series) -> pd.Series:
    """Salesforce ids compare on their case-sensitive 15-character form."""
    return _as_text(ids).str.slice(0, SALESFORCE_ID_KEY)


def _objects(values: pd.Series) -> np.ndarray:
    """An object array with every null as None (what dataclasses and JSON should hold).

    Arrow-backed text makes a new Python string per cell; a column with few distinct values (a
    profile, a locale, a department) instead shares one string per value, which saves hundreds
    of megabytes on a million users that each keep their values in a plan entry.
    """
    if isinstance(values.dtype, pd.StringDtype) and len(values) > 1000:
        sample = values.iloc[:: max(1, len(values) // 1000)]
        if sample.nunique(dropna=True) <= 100:
            codes, uniques = pd.factorize(values)
            table = np.append(uniques.astype(object).to_numpy(), None)
            return table[codes]  # code -1 (null) picks the trailing None
    return values.astype(object).where(values.notna(), None).to_numpy(copy=True)


def _python(values: pd.Series | np.ndarray | list[Any]) -> list[Any]:
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return _objects(series).tolist()


def _to_bool(values: pd.Series) -> np.ndarray:
    """Salesforce booleans: True/False, or "true"/"false" (and "1"/"0") as Bulk CSV has them."""
    if values.dtype.kind == "b":
        return values.to_numpy(dtype=bool)
    text = _as_text(values).str.strip().str.lower()
    return text.isin(_TRUE_TEXT).to_numpy(dtype=bool)


# -- who is who ----------------------------------------------------------------------------------


def _roles(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    # A Parquet list cell is a NumPy array: ``tolist`` builds its list in C, the same strings.
    items = value.tolist() if isinstance(value, np.ndarray) else list(value)
    return items if all(type(v) is str for v in items) else [str(v) for v in items]


def _unique_ids(frame: pd.DataFrame, what: str) -> pd.Series:
    if "id" not in frame:
        raise ValueError(f"diff: the {what} frame has no 'id' column")
    ids = frame["id"].astype(object)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise ValueError(f"diff: user {repeated.iloc[0]} appears twice in the {what} frame")
    return ids


def _positions(keys: pd.Series | np.ndarray, among: pd.Series | np.ndarray) -> np.ndarray:
    """Position of each of ``keys`` in ``among`` (unique values), -1 when absent."""
    index = pd.Index(np.asarray(among, dtype=object), dtype=object)
    return index.get_indexer(pd.Index(np.asarray(keys, dtype=object), dtype=object))


@dataclass
class _People:
    """Everyone this cycle decides about, by position: the USERS frame, then mapped-only ids."""

    ids: np.ndarray
    upn: PersonTexts
    display_name: PersonTexts
    """Entra's ``displayName`` (None when the USERS frame has no such column or no value)."""
    raw_roles: np.ndarray
    """The USERS frame's ``appRoleAssignments`` as read (None past its rows): ``roles`` turns one
    into a list when its change is built (a million lists held for the whole diff took 75 MB)."""
    soft: np.ndarray
    mapped_row: np.ndarray
    """Row of the MAPPED frame, -1 when the user has none (its mapping failed upstream)."""

    @property
    def in_scope(self) -> np.ndarray:
        return ~self.soft & (self.mapped_row >= 0)

    def roles(self, person: int) -> list[str]:
        return _roles(self.raw_roles[person])

    @classmethod
    def of(cls, d: DiffInput) -> _People:
        user_ids = _unique_ids(d.users, "USERS")
        mapped_ids = _unique_ids(d.mapped, "MAPPED")
        extra_rows = np.flatnonzero(~mapped_ids.isin(user_ids).to_numpy())
        extra = mapped_ids.iloc[extra_rows]
        ids = np.concatenate([user_ids.to_numpy(), extra.to_numpy()]).astype(object)
        upn = PersonTexts(d.users.get("userPrincipalName"), len(ids))
        names = PersonTexts(d.users.get("displayName"), len(ids))
        raw_roles = np.full(len(ids), None, dtype=object)
        if "appRoleAssignments" in d.users:
            raw_roles[: len(user_ids)] = d.users["appRoleAssignments"].to_numpy(dtype=object)
        soft = [
            frame["IsSoftDeleted"].fillna(False).astype(bool).to_numpy()
            if "IsSoftDeleted" in frame
            else np.zeros(len(frame), dtype=bool)
            for frame in (d.users, d.mapped.iloc[extra_rows])
        ]
        return cls(
            ids=ids,
            upn=upn,
            display_name=names,
            raw_roles=raw_roles,
            soft=np.concatenate(soft),
            mapped_row=_positions(ids, mapped_ids),
        )


# -- the Salesforce side --------------------------------------------------------------------------


@dataclass
class _Targets:
    """Salesforce users as this cycle can see them, one per 15-character id (``key``)."""

    key: np.ndarray
    sf_id: np.ndarray
    active: np.ndarray
    match_keys: dict[str, pd.Series]
    """Matching field (and ``Username``, when known) → its key per target."""
    source_row: np.ndarray
    """Row of the ORG frame (full mode) or the SNAPSHOT frame (incremental) behind each target."""

    @classmethod
    def from_org(cls, org: pd.DataFrame, matching: Sequence[str]) -> _Targets:
        for column in ("Id", IS_ACTIVE):
            if column not in org:
                raise ValueError(f"diff: the ORG frame has no {column!r} column (query it with the users)")
        keys = _key15(org["Id"])
        rows = np.flatnonzero(keys.notna().to_numpy() & ~keys.duplicated().to_numpy())
        names = [n for n in dict.fromkeys([*matching, USERNAME]) if n in org]
        return cls(
            key=keys.iloc[rows].to_numpy(dtype=object),
            sf_id=org["Id"].iloc[rows].to_numpy(dtype=object),
            active=_to_bool(org[IS_ACTIVE].iloc[rows]),
            match_keys={n: _match_key(org[n].iloc[rows], n).reset_index(drop=True) for n in names},
            source_row=rows,
        )

    @classmethod
    def from_snapshot(cls, snapshot: pd.DataFrame, matching: Sequence[str]) -> _Targets:
        """Incremental mode sees only what this product linked; ``match_value`` stands for every
        matching field (the snapshot does not say which one matched)."""
        keys = _key15(snapshot["sf_id"]) if len(snapshot) else pd.Series([], dtype="str")
        rows = np.flatnonzero(keys.notna().to_numpy() & ~keys.duplicated(keep="last").to_numpy())
        values = snapshot["match_value"].iloc[rows] if len(rows) else pd.Series([], dtype=object)
        active = snapshot["is_active"].iloc[rows] if len(rows) else pd.Series([], dtype=bool)
        return cls(
            key=keys.iloc[rows].to_numpy(dtype=object),
            sf_id=snapshot["sf_id"].iloc[rows].to_numpy(dtype=object) if len(rows) else np.array([], dtype=object),
            active=active.fillna(False).astype(bool).to_numpy(),
            match_keys={n: _match_key(values, n).reset_index(drop=True) for n in matching},
            source_row=rows,
        )


# -- linking --------------------------------------------------------------------------------------


class _Linker:
    """Links people to targets: the snapshot's links first, then matching in precedence order.

    Results are arrays by person position: ``target`` (-1 when unlinked), ``match_value``,
    ``from_snapshot``, ``snapshot_row`` (own SNAPSHOT row or -1) and ``problems`` (reasons a
    user is held instead of written).
    """

    def __init__(self, d: DiffInput, people: _People, targets: _Targets, desired: pd.DataFrame):
        self.d, self.people, self.targets, self.desired = d, people, targets, desired
        n = len(people.ids)
        self.target = np.full(n, -1, dtype=np.int64)
        self.match_value: list[Any] = [None] * n
        self.problems: dict[int, list[str]] = {}
        self.snapshot_row = np.full(n, -1, dtype=np.int64)
        self.from_snapshot = np.zeros(n, dtype=bool)
        self.taken = np.zeros(len(targets.key), dtype=bool)

    def run(self) -> _Linker:
        lost = self._snapshot_links()
        self._reserve_owned()
        open_people = (self.target < 0) & (self.people.mapped_row >= 0) & ~lost
        for name in self.d.matching:
            if name in self.desired and name in self.targets.match_keys:
                self._match_on(name, open_people)
        return self

    def _hold(self, person: int, reason: str) -> None:
        self.problems.setdefault(int(person), []).append(reason)

    def _snapshot_links(self) -> np.ndarray:
        """Entra remembers the target id; in full mode only ids the org still has count."""
        snapshot = self.d.snapshot
        lost = np.zeros(len(self.people.ids), dtype=bool)
        if not len(snapshot):
            return lost
        entra_ids = snapshot["entra_id"].astype(object)
        last = np.flatnonzero(~entra_ids.duplicated(keep="last").to_numpy())
        found = _positions(self.people.ids, entra_ids.iloc[last])
        self.snapshot_row = np.where(found >= 0, last[found], -1)
        known = np.flatnonzero(self.snapshot_row >= 0)
        rows = self.snapshot_row[known]
        self.target[known] = _positions(_key15(snapshot["sf_id"].iloc[rows]), self.targets.key)
        for person, value in zip(known, snapshot["match_value"].iloc[rows].tolist(), strict=True):
            self.match_value[person] = value
        self.from_snapshot = self.target >= 0
        return self._settle_shared()

    def _settle_shared(self) -> np.ndarray:
        """Two people linked to one Salesforce user (a recreated Entra user, a damaged snapshot):
        the one in scope keeps it, among equals the first; the rest lose the link and do not
        rematch. In-scope losers are held with the reason."""
        lost = np.zeros(len(self.target), dtype=bool)
        linked = np.flatnonzero(self.target >= 0)
        frame = pd.DataFrame(
            {"person": linked, "target": self.target[linked], "in_scope": self.people.in_scope[linked]}
        )
        shared = frame[frame.duplicated("target", keep=False)]
        for tpos, group in shared.groupby("target", sort=False):
            ordered = group.sort_values(["in_scope", "person"], ascending=[False, True])
            keeper = self.people.ids[int(ordered["person"].iloc[0])]
            for person, in_scope in zip(ordered["person"].iloc[1:], ordered["in_scope"].iloc[1:], strict=True):
                self.target[person] = -1
                self.from_snapshot[person] = False
                lost[person] = True
                if in_scope:
                    self._hold(
                        person,
                        f"linked to Salesforce user {self.targets.sf_id[tpos]}, which Entra user {keeper} "
                        "is also linked to",
                    )
        return lost

    def _reserve_owned(self) -> None:
        """A Salesforce user stays with its owner unless the owner is leaving this cycle: owners in
        scope, held upstream, or simply not part of an incremental cycle keep theirs."""
        snapshot = self.d.snapshot
        if not len(snapshot):
            return
        soft = pd.Series(self.people.soft, index=pd.Index(self.people.ids, dtype=object))
        leaving = snapshot["entra_id"].astype(object).map(soft).fillna(False).astype(bool).to_numpy()
        position = _positions(_key15(snapshot["sf_id"]).to_numpy(dtype=object)[~leaving], self.targets.key)
        self.taken[position[position >= 0]] = True

    def _match_on(self, name: str, open_people: np.ndarray) -> None:
        people = np.flatnonzero(open_people & (self.target < 0) & self._unheld())
        if not len(people):
            return
        raw = self.desired[name].iloc[self.people.mapped_row[people]]
        left = pd.DataFrame(
            {"person": people, "key": _match_key(raw, name).to_numpy(dtype=object), "raw": raw.to_numpy(dtype=object)}
        )
        free = np.flatnonzero(~self.taken)
        right = pd.DataFrame({"target": free, "key": self.targets.match_keys[name].iloc[free].to_numpy(dtype=object)})
        pairs = left[left["key"].notna()].merge(right[right["key"].notna()], on="key", how="inner")
        if not pairs.empty:
            self._accept(name, pairs)

    def _unheld(self) -> np.ndarray:
        flags = np.ones(len(self.target), dtype=bool)
        if self.problems:
            flags[list(self.problems)] = False
        return flags

    def _accept(self, name: str, pairs: pd.DataFrame) -> None:
        """Link unambiguous pairs. One user matching several Salesforce users is held; several
        in-scope users matching one are all held; a leaver never claims a shared one."""
        sf_ids = self.targets.sf_id
        per_person = pairs.groupby("person")["target"].nunique()
        for person in per_person.index[per_person.to_numpy() > 1]:
            if self.people.in_scope[person]:
                hits = pairs[pairs["person"] == person]
                self._hold(
                    person,
                    f"ambiguous match: {len(hits)} Salesforce users have {name} = {hits['raw'].iloc[0]!r} "
                    f"({', '.join(str(sf_ids[t]) for t in hits['target'])})",
                )
        pairs = pairs[pairs["person"].map(per_person).to_numpy() == 1]
        pairs = pairs.assign(in_scope=self.people.in_scope[pairs["person"].to_numpy()])
        per_target = pairs.groupby("target")["in_scope"].agg(["size", "sum"])
        alone = pairs["target"].map(per_target["size"]).to_numpy() == 1
        in_scope_there = pairs["target"].map(per_target["sum"]).to_numpy()
        wins = alone | (pairs["in_scope"].to_numpy() & (in_scope_there == 1))
        for person, tpos, raw in zip(pairs["person"][wins], pairs["target"][wins], pairs["raw"][wins], strict=True):
            self.target[person] = tpos
            self.match_value[person] = raw
            self.taken[tpos] = True
        crowded = pairs[~alone & pairs["in_scope"].to_numpy() & (in_scope_there > 1)]
        for tpos, group in crowded.groupby("target", sort=False):
            names = ", ".join(str(self.people.ids[p]) for p in group["person"])
            for person in group["person"]:
                self._hold(
                    person,
                    f"Salesforce user {sf_ids[tpos]} ({name} = {group['raw'].iloc[0]!r}) matches {len(group)} "
                    f"Entra users ({names}); only one may match",
                )


# -- the plan -------------------------------------------------------------------------------------


def _target_fields(mapped: pd.DataFrame) -> list[str]:
    return [c for c in mapped.columns if c not in NOT_TARGET_COLUMNS and not str(c).startswith("_")]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    if not columns:
        return [{} for _ in range(len(frame))]
    values = [_python(frame[c]) for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _shared_changes(values: pd.Series, limit: int = 1000) -> dict[Any, FieldChange]:
    """One ``FieldChange(None, v)`` per distinct value of a low-cardinality column (else empty)."""
    try:
        distinct = pd.unique(values.dropna())
    except TypeError:  # unhashable values
        return {}
    if len(distinct) > limit:
        return {}
    return {value: FieldChange(None, value) for value in _python(pd.Series(distinct, dtype=object))}


class _Planner:
    """Turns links into one outcome per person: a plan list (and the segment its change is built
    from) or a held (quarantined) user.

    Everything that can be is decided column-wise first (a million users must plan in seconds);
    the ``PlannedChange`` objects are built later, a batch at a time (``PlanTable``).
    """

    def __init__(self, d: DiffInput):
        self.d = d
        self.people = _People.of(d)
        self.fields = _target_fields(d.mapped)
        self.desired = d.mapped[self.fields].reset_index(drop=True)
        self.targets = (
            _Targets.from_org(d.org, d.matching)
            if d.org is not None
            else _Targets.from_snapshot(d.snapshot, d.matching)
        )
        self.links = _Linker(d, self.people, self.targets, self.desired).run()
        n = len(self.people.ids)
        self.open = np.ones(n, dtype=bool)
        self.held: dict[int, QuarantinedUser] = {}
        self.entra_ids = [str(i) for i in self.people.ids]
        self.sf_ids = _python(pd.Series(self.targets.sf_id, dtype=object))
        self.table = PlanTable(
            group=np.full(n, NO_GROUP, dtype=np.int8),
            segment=np.full(n, -1, dtype=np.int16),
            row=np.full(n, -1, dtype=np.int64),
            segments=[],
            entra_ids=self.entra_ids,
            upn=self.people.upn,
            display_name=self.people.display_name,
            quarantined=[],
        )

    def plan(self) -> PlanTable:
        people = self.people
        for person, reasons in self.links.problems.items():
            self._hold(person, *reasons)
        for person in np.flatnonzero(~people.soft & (people.mapped_row < 0)):
            self._hold(person, "no mapped values: the mapping produced no row for this user")
        self._creates(np.flatnonzero(self.open & people.in_scope & (self.links.target < 0)))
        self._stayers(np.flatnonzero(self.open & people.in_scope & (self.links.target >= 0)))
        self._leavers(np.flatnonzero(self.open & people.soft))
        self.table.quarantined = [self.held[person] for person in sorted(self.held)]
        _apply_threshold(self.table, self.d.managed_count, self.d.options)
        return self.table

    # -- outcomes

    def _hold(self, person: int, *reasons: str) -> None:
        self.open[person] = False
        people = self.people
        self.held[int(person)] = QuarantinedUser(
            self.entra_ids[person], people.upn[person], list(reasons), people.display_name[person]
        )

    def _add(self, segment: Segment, people: np.ndarray, actions: Sequence[Action] | Action) -> None:
        """``people`` (positions) are decided: ``segment`` builds their changes, by their order."""
        table = self.table
        table.segment[people] = len(table.segments)
        table.row[people] = np.arange(len(people))
        if isinstance(actions, Action):
            table.group[people] = GROUP_OF_ACTION[actions]
        else:
            table.group[people] = np.array([GROUP_OF_ACTION[a] for a in actions], dtype=np.int8)
        table.segments.append(segment)

    def _change(
        self,
        person: int,
        action: Action,
        *,
        sf_id: str | None = None,
        changes: dict[str, FieldChange] | None = None,
        desired: dict[str, Any] | None = None,
        match_value: Any = None,
    ) -> PlannedChange:
        return PlannedChange(
            self.entra_ids[person],
            self.people.upn[person],
            action,
            sf_id,
            {} if changes is None else changes,
            match_value,
            {} if desired is None else desired,
            self.people.roles(person),
            self.people.display_name[person],
        )

    def _match_value(self, person: int, desired: dict[str, Any]) -> Any:
        """The matched value for a fresh match; for a remembered link (or a create) the value of
        the first matching field it will have (a renamed UPN moves the Username along)."""
        links = self.links
        if links.target[person] >= 0 and not links.from_snapshot[person]:
            return links.match_value[person]
        for name in self.d.matching:
            value = desired.get(name)
            if value is not None:
                return value
        return links.match_value[person]

    # -- current Salesforce values of linked people

    def _current(self, people: np.ndarray, fields: list[str]) -> pd.DataFrame:
        index = pd.RangeIndex(len(people))
        tpos = self.links.target[people]
        if self.d.org is not None:
            missing = [f for f in fields if f not in self.d.org]
            if missing:
                raise ValueError(
                    f"diff: the ORG frame lacks {', '.join(missing)} (query every field the mapping writes)"
                )
            return self.d.org[fields].iloc[self.targets.source_row[tpos]].set_axis(index)
        rows = self._own_or_target_row(people)
        records = [f if isinstance(f, dict) else {} for f in self.d.snapshot["fields"].iloc[rows]]
        if not records:
            return pd.DataFrame({f: pd.Series([], dtype=object) for f in fields})
        return pd.DataFrame.from_records(records, index=index, columns=fields).astype(object)

    def _own_or_target_row(self, people: np.ndarray) -> np.ndarray:
        own = self.links.snapshot_row[people]
        use_own = self.links.from_snapshot[people] & (own >= 0)
        return np.where(use_own, own, self.targets.source_row[self.links.target[people]])

    def _active(self, people: np.ndarray) -> np.ndarray:
        if self.d.org is not None or not len(people):
            return self.targets.active[self.links.target[people]]
        rows = self._own_or_target_row(people)
        return self.d.snapshot["is_active"].iloc[rows].fillna(False).astype(bool).to_numpy()

    # -- creates

    def _hold_guarded(self, people: np.ndarray, blocks: dict[str, list[str]]) -> np.ndarray:
        """Hold those of ``people`` (all open) with reasons in ``blocks``, rules that guard the write
        they are about to get (``DiffInput.blocks_create`` / ``blocks_update``); the rest go on."""
        if not blocks:
            return people
        for person in people.tolist():
            reasons = blocks.get(self.entra_ids[person])
            if reasons:
                self._hold(person, *reasons)
        return people[self.open[people]]

    def _creates(self, people: np.ndarray) -> None:
        people = self._hold_guarded(people, self.d.blocks_create)
        if not len(people):
            return
        self.open[people] = False
        creates = _Creates(self, people)
        unique = [name for name in UNIQUE_FIELDS if name in creates.columns]
        blocked = self._duplicate_usernames(people, creates.frame(np.arange(len(people)), unique))
        for i, reason in blocked.items():
            self._hold(people[i], reason)
        if blocked:
            sent = np.ones(len(people), dtype=bool)
            sent[list(blocked)] = False
            creates.keep(np.flatnonzero(sent))
        self._add(creates, creates.people, Action.CREATE)

    def _duplicate_usernames(self, people: np.ndarray, rows: pd.DataFrame) -> dict[int, str]:
        """Creates Salesforce would refuse because a value it keeps unique is taken (Username:
        DUPLICATE_USERNAME; FederationIdentifier: DUPLICATE_VALUE; CommunityNickname when a table
        maps it: DUPLICATE_COMM_NICKNAME) are held with the reason, instead of being sent and
        retried with the same value from escrow. Usernames are checked against what the cycle can
        see (the org, or the snapshot); the other fields against the org (full cycles)."""
        blocked: dict[int, str] = {}
        for name in UNIQUE_FIELDS:
            if name not in rows:
                continue
            known = self.targets.match_keys.get(name) if name == USERNAME else self._org_keys(name)
            for i, reason in self._clashes(people, rows, name, known).items():
                blocked.setdefault(i, reason)
        return blocked

    def _org_keys(self, name: str) -> pd.Series | None:
        """The org's ``name`` per target (full cycles only), as compared for uniqueness."""
        org = self.d.org
        if org is None or name not in org:
            return None
        return _unique_key(org[name].iloc[self.targets.source_row], name).reset_index(drop=True)

    def _clashes(self, people: np.ndarray, rows: pd.DataFrame, name: str, known: pd.Series | None) -> dict[int, str]:
        keys = _unique_key(rows[name], name)
        clash = keys.isin(known.dropna()).to_numpy() if known is not None else np.zeros(len(keys), dtype=bool)
        repeat = keys.duplicated().to_numpy() & keys.notna().to_numpy()
        if not (clash.any() or repeat.any()):
            return {}
        existing = {} if known is None else {k: i for i, k in enumerate(known.tolist()) if isinstance(k, str)}
        first: dict[str, int] = {}
        blocked: dict[int, str] = {}
        case = " (case-insensitive)" if name in CASE_INSENSITIVE else ""
        for i, (key, value) in enumerate(zip(keys.tolist(), rows[name], strict=True)):
            if not isinstance(key, str):
                continue
            if key in existing:
                owner = (
                    "which another Entra user is linked to"
                    if self.links.taken[existing[key]]
                    else f"which no Entra user is linked to ({name} is not a matching attribute)"
                )
                blocked[i] = (
                    f"{name} {value!r} already belongs to Salesforce user {self.sf_ids[existing[key]]}, "
                    f"{owner} (duplicate {name})"
                )
            elif key in first:
                other = people[first[key]]
                blocked[i] = (
                    f"{name} {value!r} is also the {name} of Entra user {self.entra_ids[other]} "
                    f"({self.people.upn[other]}), created in this cycle; Salesforce keeps {name} unique{case}"
                )
            else:
                first[key] = i
        return blocked

    # -- users in scope with a Salesforce user: update, reactivate or nothing

    def _stayers(self, people: np.ndarray) -> None:
        people = self._hold_guarded(people, self.d.blocks_update)
        if not len(people):
            return
        self.open[people] = False
        stayers = _Stayers(self, people)
        actions = [
            Action.OTHER if not touched else (Action.UPDATE if active else Action.REACTIVATE)
            for touched, active in zip(stayers.touched.tolist(), stayers.active.tolist(), strict=True)
        ]
        self._add(stayers, people, actions)

    # -- soft-deleted users: deactivate or nothing

    def _leavers(self, people: np.ndarray) -> None:
        """Deactivate linked active leavers (IsActive only); the rest need nothing. A Salesforce
        user an in-scope user now links to (a recreated Entra user) is not deactivated for its
        previous owner, and one Salesforce user is deactivated once."""
        self.open[people] = False
        if not len(people):
            return
        leavers = _Leavers(self, people)
        self._add(leavers, people, [Action.DISABLE if k == _Leavers.DISABLE else Action.OTHER for k in leavers.kind])


class _Creates:
    """Creates: every mapped field (defaults for nulls), nulls not sent.

    Their values are taken from the diff's MAPPED columns a batch at a time (``frame``), defaults
    applied then: a copy of every create's row (with each defaulted column made of Python
    strings) took a gigabyte at a million users, held until the plan file was written."""

    def __init__(self, planner: _Planner, people: np.ndarray) -> None:
        self.planner, self.people = planner, people
        self.mapped_row = planner.people.mapped_row[people]
        desired, defaults = planner.desired, planner.d.defaults
        self.columns = [*desired.columns, *(name for name in defaults if name not in desired)]
        if IS_ACTIVE not in self.columns:
            self.columns.append(IS_ACTIVE)

    @functools.cached_property
    def shared(self) -> dict[str, dict[Any, FieldChange]]:
        """By field, one ``FieldChange`` per repeated value (a profile, a locale: it is immutable,
        so its creates share it). Made when ``build`` first needs it: the plan file's creates are
        encoded from columns (``plan_columns``), which need none (a full read of every column)."""
        return {name: _shared_changes(self._column(name, self.mapped_row)) for name in self.columns}

    def keep(self, rows: np.ndarray) -> None:
        """Only the creates at ``rows`` go ahead (the rest were held)."""
        self.people, self.mapped_row = self.people[rows], self.mapped_row[rows]

    def frame(self, rows: np.ndarray, columns: list[str] | None = None) -> pd.DataFrame:
        """The desired values (defaults applied, ``IsActive`` true) of the creates at ``rows``."""
        at = self.mapped_row[rows]
        names = self.columns if columns is None else columns
        return pd.DataFrame({name: self._column(name, at) for name in names}, index=pd.RangeIndex(len(rows)))

    def _column(self, name: str, at: np.ndarray) -> pd.Series:
        if name == IS_ACTIVE:
            return pd.Series(True, index=pd.RangeIndex(len(at)))
        desired = self.planner.desired
        if name in desired:
            column = desired[name].iloc[at].reset_index(drop=True)
        else:
            column = pd.Series([None] * len(at), dtype=object)
        defaults = self.planner.d.defaults
        if name not in defaults:
            return column
        default = defaults[name]
        if isinstance(default, str) and (_arrow_text(column) or bool(column.isna().all())):
            # Stays Arrow text (the same values): ``plan_columns`` then quotes it in Arrow, where
            # object text took the per-value Python way (~a quarter of a million creates' encoding).
            text = column if _arrow_text(column) else pd.Series(pd.array([None] * len(at), dtype=_ARROW_TEXT))
            return text.where(text.notna() & (text != ""), default)
        column = column.astype(object)
        return column.where(column.notna() & (column != ""), default)

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        planner = self.planner
        frame = self.frame(rows)
        columns = list(frame.columns)
        values = [_python(frame[c].where(frame[c] != "", None)) for c in columns]
        shared = self.shared
        built = []
        for person, row in zip(self.people[rows].tolist(), zip(*values, strict=True), strict=True):
            sent = {name: value for name, value in zip(columns, row, strict=True) if value is not None}
            changes = {name: shared[name].get(value) or FieldChange(None, value) for name, value in sent.items()}
            match = planner._match_value(person, sent)
            built.append(planner._change(person, Action.CREATE, changes=changes, desired=sent, match_value=match))
        return built

    def plan_columns(self, rows: np.ndarray, *, named: bool) -> PlanColumns | None:
        """``build(rows)`` as the plan file's columns (``ColumnSegment``): the same values, each
        field's JSON made once per distinct value and the rows' objects joined by Arrow."""
        planner, people = self.planner, self.planner.people
        frame = self.frame(rows)
        names = list(frame.columns)
        persons = self.people[rows]
        each = persons.tolist()  # the batch's people as ints, for the per-person lookups
        if not all(isinstance(name, str) for name in names):
            return None
        values: dict[str, np.ndarray] = {}  # as ``build`` sends them (None: not sent), where needed

        def value_of(name: str) -> np.ndarray:
            if name not in values:
                values[name] = _objects(frame[name].where(frame[name] != "", None))
            return values[name]

        try:
            fields = []
            for name in names:
                plain = _plain_text(frame[name])
                fields.append(_json_fields(name, value_of(name)) if plain is None else _text_fields(name, plain))
            roles = [json_bytes(people.roles(person)).decode() for person in each]
        except TypeError:  # a value JSON cannot hold: the objects' encoding names the user
            return None
        matching = {name: value_of(name) for name in planner.d.matching if name in frame}
        display_names = [people.display_name[person] for person in each]
        if named:
            parts = {name: value_of(name) for name in ("FirstName", "LastName") if name in frame}
            for i, name in enumerate(display_names):
                if name is None:
                    display_names[i] = salesforce_name({part: column[i] for part, column in parts.items()})
        return {
            "entra_id": [planner.entra_ids[person] for person in each],
            "upn": [people.upn[person] for person in each],
            "action": [Action.CREATE.value] * len(rows),
            "sf_id": [None] * len(rows),
            "match_value": self._match_values(persons, matching),
            "changes": _json_objects([change for _, change in fields], len(rows)),
            "desired": _json_objects([value for value, _ in fields], len(rows)),
            "roles": roles,
            "display_name": display_names,
        }

    def _match_values(self, persons: np.ndarray, values: dict[str, np.ndarray]) -> list[Any]:
        """``_Planner._match_value`` of each of ``persons`` (its create's values ``values``, None
        where not sent): the first matching field sent, else the link's value."""
        links = self.planner.links
        matched = np.empty(len(persons), dtype=object)
        matched[:] = [links.match_value[person] for person in persons.tolist()]
        fresh = (links.target[persons] >= 0) & ~links.from_snapshot[persons]
        chosen = fresh.copy()
        for name in self.planner.d.matching:
            column = values.get(name)
            if column is None:
                continue
            sent = np.fromiter((value is not None for value in column), dtype=bool, count=len(column))
            take = sent & ~chosen
            matched[take] = column[take]
            chosen |= take
        return matched.tolist()


def _json_fields(name: str, values: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The JSON members of field ``name`` for each row's ``desired`` (``,"name":value``) and
    ``changes`` (``,"name":[null,value]``), null where the value is None (not sent). Each distinct
    value is encoded once when the column is all text or all booleans (a factorized mixed column
    would take ``1`` for ``True``); else value by value."""
    key = "," + json_bytes(name).decode() + ":"
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "boolean", "empty"):
        codes, uniques = pd.factorize(values)
        texts = [json_bytes(value).decode() for value in uniques.tolist()]
        desired = np.array([*(key + text for text in texts), None], dtype=object)[codes]
        changes = np.array([*(f"{key}[null,{text}]" for text in texts), None], dtype=object)[codes]
    else:
        texts = [None if value is None else json_bytes(value).decode() for value in values.tolist()]
        desired = np.array([None if text is None else key + text for text in texts], dtype=object)
        changes = np.array([None if text is None else f"{key}[null,{text}]" for text in texts], dtype=object)
    return pa.array(desired, pa.string()), pa.array(changes, pa.string())


_JSON_ESCAPED = r'["\\\x00-\x1f]'
"""The characters orjson writes escaped in a JSON string (a quote, a backslash, a control
character), as an RE2 pattern; text without any is its own JSON string between quotes."""


_ARROW_TEXT = pd.StringDtype(storage="pyarrow", na_value=np.nan)
"""pandas' ``str`` dtype held by Arrow (what a Parquet text column reads as)."""


def _arrow_text(column: pd.Series) -> bool:
    """Whether ``column`` is text held by Arrow (``_plain_text`` can quote it in Arrow)."""
    return isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow"


def _plain_text(column: pd.Series) -> pa.Array | None:
    """The values of an Arrow-backed text column as Arrow text (null for a missing value or "",
    which a create does not send) when none needs a JSON escape; else None (the values go the
    Python way, ``_json_fields``): a million creates' names and addresses need no Python string
    each then."""
    if not _arrow_text(column):
        return None
    text = pa.array(column.array)
    text = (text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text).cast(pa.string())
    if pc.any(pc.match_substring_regex(text, _JSON_ESCAPED)).as_py():
        return None
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _text_fields(name: str, text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``_json_fields`` of ``_plain_text`` values: each quoted as it is, null staying null."""
    key = "," + json_bytes(name).decode() + ":"
    desired = pc.binary_join_element_wise(pa.scalar(key + '"'), text, pa.scalar('"'), "")
    changes = pc.binary_join_element_wise(pa.scalar(key + '[null,"'), text, pa.scalar('"]'), "")
    return desired, changes


def _json_objects(members: list[pa.Array], size: int) -> pa.Array:
    """``{...}`` of each row's non-null ``members`` (each text starting with a comma), in order:
    the JSON object ``json_bytes`` makes of the row's dict. The braces are columns of their own
    so no row is all null (Arrow's join drops such a row: pyarrow 26), and the comma after the
    opening brace is dropped (the first ``{,`` of a row is its start)."""
    opening, closing = pa.array(["{"] * size, pa.string()), pa.array(["}"] * size, pa.string())
    joined = pc.binary_join_element_wise(opening, *members, closing, "", null_handling="skip")
    return pc.replace_substring(joined, "{,", "{", max_replacements=1)


class _Stayers:
    """In scope with a Salesforce user: ``apply: always`` fields that differ are updated, an
    inactive user is reactivated, the rest is unchanged; ``desired`` is what Salesforce holds after."""

    def __init__(self, planner: _Planner, people: np.ndarray) -> None:
        self.planner, self.people = planner, people
        d = planner.d
        self.compared = [f for f in planner.fields if f not in d.create_only and f != IS_ACTIVE]
        kept = [f for f in planner.fields if f in d.create_only and f != IS_ACTIVE]
        self.want = planner.desired.iloc[planner.people.mapped_row[people]].reset_index(drop=True)
        self.current = planner._current(people, self.compared + kept)
        self.active = planner._active(people)

        self.changed: dict[str, np.ndarray] = {}
        self.cleared: dict[str, np.ndarray] = {}
        after = pd.DataFrame(index=self.want.index)
        want, current = self.want, self.current
        for name in self.compared:
            boolean = _looks_boolean(want[name])
            new = _comparable(want[name], name, boolean)
            old = _comparable(current[name], name, boolean)
            new_na, old_na = new.isna().to_numpy(), old.isna().to_numpy()
            self.changed[name] = (new != old).fillna(True).astype(bool).to_numpy() & ~new_na
            clears = name in d.clear_when_null
            self.cleared[name] = new_na & ~old_na if clears else np.zeros(len(new), dtype=bool)
            # Afterwards Salesforce holds the desired value, else the current one (nulls are not
            # sent), else nothing (cleared; a desired "" is null too).
            column = _objects(want[name])
            keep_current = np.flatnonzero(new_na & ~self.cleared[name])
            if len(keep_current):
                column[keep_current] = _objects(current[name].iloc[keep_current])
            column[new_na & self.cleared[name]] = None
            after[name] = column
        for name in kept:
            after[name] = _objects(current[name])
        after[IS_ACTIVE] = True
        self.after = after

        touched = ~self.active
        for name in self.compared:
            touched |= self.changed[name] | self.cleared[name]
        self.touched = touched

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        planner, compared = self.planner, self.compared
        write = rows[self.touched[rows]]
        old_values = {name: _python(self.current[name].iloc[write]) for name in compared}
        new_values = {name: _python(self.want[name].iloc[write]) for name in compared}
        plans: dict[int, dict[str, FieldChange]] = {}
        for j, i in enumerate(write.tolist()):
            changes: dict[str, FieldChange] = {IS_ACTIVE: FieldChange(False, True)} if not self.active[i] else {}
            for name in compared:
                if self.changed[name][i]:
                    changes[name] = FieldChange(old_values[name][j], new_values[name][j])
                elif self.cleared[name][i]:
                    changes[name] = FieldChange(old_values[name][j], None)  # a clear: the typed null
            plans[i] = changes
        people = self.people[rows].tolist()
        targets = planner.links.target[self.people[rows]].tolist()
        records = _records(self.after.iloc[rows])
        built = []
        for i, person, tpos, record in zip(rows.tolist(), people, targets, records, strict=True):
            changes = plans.get(i)
            action = Action.OTHER if changes is None else (Action.UPDATE if self.active[i] else Action.REACTIVATE)
            match = planner._match_value(person, record)
            sf_id = planner.sf_ids[tpos]
            built.append(
                planner._change(person, action, sf_id=sf_id, changes=changes, desired=record, match_value=match)
            )
        return built


class _Leavers:
    """Soft-deleted users: a linked active one is deactivated; the rest need nothing."""

    BARE, DISABLE, REMEMBERED = 0, 1, 2
    """Kinds: nothing to do (unlinked, its Salesforce user claimed by another, or matched but
    inactive and never provisioned); deactivate; nothing to do, its link remembered."""

    def __init__(self, planner: _Planner, people: np.ndarray) -> None:
        self.planner, self.people = planner, people
        links = planner.links
        claimed = np.zeros(len(planner.targets.key), dtype=bool)
        stayers = np.flatnonzero(planner.people.in_scope & (links.target >= 0))
        claimed[links.target[stayers]] = True
        linked = np.flatnonzero(links.target[people] >= 0)
        self.kind = [self.BARE] * len(people)
        self.current_row = np.full(len(people), -1, dtype=np.int64)
        """Row of ``current`` (the linked leavers' Salesforce values) for each leaver, -1 if unlinked."""
        self.current_row[linked] = np.arange(len(linked))
        self.current = planner._current(people[linked], [f for f in planner.fields if f != IS_ACTIVE])
        active = planner._active(people[linked])
        for i, person, is_active in zip(linked.tolist(), people[linked].tolist(), active.tolist(), strict=True):
            tpos = links.target[person]
            if claimed[tpos]:
                continue
            claimed[tpos] = True
            if is_active:
                self.kind[i] = self.DISABLE
            elif links.from_snapshot[person]:
                self.kind[i] = self.REMEMBERED

    def build(self, rows: np.ndarray) -> list[PlannedChange]:
        planner, links = self.planner, self.planner.links
        with_values = [i for i in rows.tolist() if self.kind[i] != self.BARE]
        records = dict(zip(with_values, _records(self.current.iloc[self.current_row[with_values]]), strict=True))
        built = []
        for i in rows.tolist():
            person = int(self.people[i])
            match = links.match_value[person]
            kind = self.kind[i]
            if kind == self.BARE:
                built.append(planner._change(person, Action.OTHER, match_value=match))
                continue
            after = {**records[i], IS_ACTIVE: False}
            sf_id = planner.sf_ids[links.target[person]]
            if kind == self.DISABLE:
                changes = {IS_ACTIVE: FieldChange(True, False)}
                built.append(
                    planner._change(
                        person, Action.DISABLE, sf_id=sf_id, changes=changes, desired=after, match_value=match
                    )
                )
            else:
                built.append(planner._change(person, Action.OTHER, sf_id=sf_id, desired=after, match_value=match))
        return built


def plan_table(d: DiffInput) -> PlanTable:
    """Decide every user's write, or why there is none (see the module docstring for the rules),
    as a ``PlanTable``: the changes are built when read, a batch at a time.

    Every user of ``d.users`` (and of ``d.mapped``) ends in exactly one list of the plan:
    creates, updates, reactivations, deactivations, held_back, unchanged or quarantined."""
    with collector_paused():
        return _Planner(d).plan()


def plan_changes(d: DiffInput) -> Plan:
    """``plan_table`` with every change built: the whole ``Plan``."""
    return plan_table(d).to_plan()


def _apply_threshold(table: PlanTable, managed_count: int, options: SyncOptions) -> None:
    """Entra's accidental-deletion protection: hold every deactivation when there are too many."""
    count = table.count("deactivations")
    if not count:
        return
    reasons = []
    if count > options.deletion_threshold_count:
        reasons.append(f"{count} deactivations exceed deletion_threshold_count={options.deletion_threshold_count}")
    share = count / max(managed_count, 1)
    if managed_count >= MIN_MANAGED_FOR_SHARE and share > options.deletion_threshold_share:
        reasons.append(
            f"{count} deactivations are {percent_of(share, options.deletion_threshold_share)} of the "
            f"{managed_count} managed users, above deletion_threshold_share={percent(options.deletion_threshold_share)}"
        )
    if not reasons:
        return
    table.hold_back_deactivations(
        f"accidental-deletion threshold: {'; '.join(reasons)}. All deactivations of this cycle are held back "
        "until an administrator allows them (raise the threshold or run with a larger one)"
    )
