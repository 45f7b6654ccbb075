"""Diff rules (include/provisioning/diff.py), on a tiny Salesforce world built in the test.

The world: frames shaped like the real stages produce them, and an ``apply`` that plays a plan
onto the org and the snapshot the way load and the state store would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from include.provisioning import artifacts
from include.provisioning import diff as diff_module
from include.provisioning import plan_table as plan_table_module
from include.provisioning.artifacts import PLAN
from include.provisioning.diff import DiffInput, plan_changes, plan_table
from include.provisioning.model import Action, Plan, QuarantinedUser
from include.provisioning.settings import SyncOptions
from include.provisioning.state.codec import StateError
from include.provisioning.workspace import Workspace

PROFILE = "00e000000000001AAA"
OTHER_PROFILE = "00e000000000002AAA"
DEFAULTS = {
    "LastName": ".",
    "LocaleSidKey": "en_US",
    "TimeZoneSidKey": "America/Los_Angeles",
    "EmailEncodingKey": "UTF-8",
    "LanguageLocaleKey": "en_US",
}
ORG_FIELDS = [
    "Username",
    "Email",
    "LastName",
    "FirstName",
    "Alias",
    "ProfileId",
    "IsActive",
    "LocaleSidKey",
    "Title",
    "FederationIdentifier",
    "TimeZoneSidKey",
    "EmailEncodingKey",
    "LanguageLocaleKey",
]


def entra(n: int, **values: Any) -> dict[str, Any]:
    """A MAPPED row (plus the USERS columns) for Entra user number ``n``."""
    return {
        "id": f"e{n}",
        "userPrincipalName": f"user{n}@contoso.example",
        "Username": f"user{n}@contoso.example",
        "Email": f"user{n}@contoso.example",
        "LastName": f"Last{n}",
        "FirstName": f"First{n}",
        "Alias": f"user{n}",
        "ProfileId": PROFILE,
        "IsActive": True,
        "LocaleSidKey": "en_US",
        "Title": None,
        "FederationIdentifier": None,
        "IsSoftDeleted": False,
        "roles": ["Standard User"],
        **values,
    }


def sf_id(n: int) -> str:
    return f"005{n:012d}AAA"


def sf(n: int, *, like: int | None = None, **values: Any) -> dict[str, Any]:
    """An ORG row as the Bulk 2.0 query returns it: strings, "true"/"false", None. With ``like``
    the user has Entra user ``like``'s values (matched users usually do)."""
    m = n if like is None else like
    row: dict[str, Any] = {name: None for name in ORG_FIELDS}
    row.update(
        Id=sf_id(n),
        Username=f"user{m}@contoso.example",
        Email=f"user{m}@contoso.example",
        LastName=f"Last{m}",
        FirstName=f"First{m}",
        Alias=f"user{m}",
        ProfileId=PROFILE,
        IsActive="true",
        LocaleSidKey="en_US",
        TimeZoneSidKey="America/Los_Angeles",
        EmailEncodingKey="UTF-8",
        LanguageLocaleKey="en_US",
    )
    row.update(values)
    return row


USER_COLUMNS = ["id", "userPrincipalName", "appRoleAssignments", "IsSoftDeleted", "scopeReason"]
SNAPSHOT_COLUMNS = ["entra_id", "sf_id", "match_value", "is_active", "fields", "roles"]


def users_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series([r["id"] for r in rows], dtype=object),
            "userPrincipalName": pd.Series([r["userPrincipalName"] for r in rows], dtype=object),
            "displayName": pd.Series([r.get("displayName") for r in rows], dtype=object),
            "appRoleAssignments": pd.Series([r["roles"] for r in rows], dtype=object),
            "IsSoftDeleted": pd.Series([bool(r["IsSoftDeleted"]) for r in rows], dtype=bool),
            "scopeReason": pd.Series([("unassigned" if r["IsSoftDeleted"] else None) for r in rows], dtype=object),
        }
    )


def _columns(rows: Iterable[dict[str, Any]], first: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *(c for r in rows for c in r)]))


def mapped_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    columns = [c for c in _columns(rows, list(entra(0))) if c not in ("userPrincipalName", "displayName", "roles")]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


def org_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    frame = pd.DataFrame(rows, columns=_columns(rows, ["Id", *ORG_FIELDS]))
    return frame.astype(object).where(frame.notna(), None)


def empty_snapshot() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=bool if c == "is_active" else object) for c in SNAPSHOT_COLUMNS})


def snapshot_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    if not rows:
        return empty_snapshot()
    frame = pd.DataFrame(rows, columns=SNAPSHOT_COLUMNS)
    frame["is_active"] = frame["is_active"].astype(bool)
    return frame


def link(n: int, m: int | None = None, *, active: bool = True, **fields: Any) -> dict[str, Any]:
    """A snapshot row: Entra user ``n`` provisioned as Salesforce user ``m`` (default ``n``)."""
    m = n if m is None else m
    base = {k: v for k, v in sf(m).items() if k not in ("Id", "IsActive")}
    return {
        "entra_id": f"e{n}",
        "sf_id": sf_id(m),
        "match_value": f"user{m}@contoso.example",
        "is_active": active,
        "fields": {**base, "IsActive": active, **fields},
        "roles": ["Standard User"],
    }


@dataclass
class World:
    """Entra users, the org and the snapshot; ``plan`` runs the diff, ``apply`` plays it."""

    people: list[dict[str, Any]]
    org: list[dict[str, Any]] = field(default_factory=list)
    snapshot: list[dict[str, Any]] = field(default_factory=list)
    matching: tuple[str, ...] = ("Username",)
    create_only: set[str] = field(default_factory=lambda: {"Alias"})
    clear_when_null: set[str] = field(default_factory=set)
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    options: SyncOptions = field(default_factory=SyncOptions)
    managed_count: int | None = None
    blocks_create: dict[str, list[str]] = field(default_factory=dict)
    blocks_update: dict[str, list[str]] = field(default_factory=dict)
    created: int = 0

    def diff_input(self, *, incremental: bool = False, only: Iterable[str] | None = None) -> DiffInput:
        people = self.people if only is None else [p for p in self.people if p["id"] in set(only)]
        return DiffInput(
            mapped=mapped_frame(people),
            users=users_frame(people),
            snapshot=snapshot_frame(self.snapshot),
            org=None if incremental else org_frame(self.org),
            matching=list(self.matching),
            defaults=dict(self.defaults),
            create_only=set(self.create_only),
            clear_when_null=set(self.clear_when_null),
            managed_count=len(self.snapshot) if self.managed_count is None else self.managed_count,
            options=self.options,
            blocks_create=dict(self.blocks_create),
            blocks_update=dict(self.blocks_update),
        )

    def plan(self, *, incremental: bool = False, only: Iterable[str] | None = None) -> Plan:
        return plan_changes(self.diff_input(incremental=incremental, only=only))

    def apply(self, plan: Plan) -> None:
        """Salesforce takes every write; the snapshot takes ``desired`` (as the state store does)."""
        by_id = {row["Id"][:15]: row for row in self.org}
        snapshot = {row["entra_id"]: row for row in self.snapshot}
        for change in plan.writes():
            sent = {k: (str(v.new).lower() if isinstance(v.new, bool) else v.new) for k, v in change.changes.items()}
            if change.action is Action.CREATE:
                self.created += 1
                new_id = sf_id(900 + self.created)
                row = {name: None for name in ORG_FIELDS} | sent | {"Id": new_id}
                self.org.append(row)
                by_id[new_id[:15]] = row
                target = new_id
            else:
                assert change.sf_id is not None
                by_id[change.sf_id[:15]].update(sent)
                target = change.sf_id
            snapshot[change.entra_id] = self._snapshot_row(change, target, snapshot.get(change.entra_id))
        for change in plan.unchanged:
            if change.sf_id is not None and change.desired:
                snapshot[change.entra_id] = self._snapshot_row(change, change.sf_id, snapshot.get(change.entra_id))
        self.snapshot = list(snapshot.values())

    @staticmethod
    def _snapshot_row(change: Any, target: str, prior: dict[str, Any] | None) -> dict[str, Any]:
        fields = dict(change.desired)
        active = fields.get("IsActive")
        return {
            "entra_id": change.entra_id,
            "sf_id": target,
            "match_value": change.match_value if change.match_value is not None else (prior or {}).get("match_value"),
            "is_active": bool(active) if active is not None else bool((prior or {}).get("is_active", True)),
            "fields": fields,
            "roles": change.roles,
        }


def outcome(plan: Plan) -> dict[str, str]:
    """Entra id → the plan list it ended in."""
    lists = {
        "create": plan.creates,
        "update": plan.updates,
        "reactivate": plan.reactivations,
        "deactivate": plan.deactivations,
        "held_back": plan.held_back,
        "unchanged": plan.unchanged,
        "quarantined": plan.quarantined,
    }
    result: dict[str, str] = {}
    for name, items in lists.items():
        for item in items:
            assert item.entra_id not in result, f"{item.entra_id} in {result[item.entra_id]} and {name}"
            result[item.entra_id] = name
    return result


def changes_of(plan: Plan, entra_id: str) -> dict[str, tuple[Any, Any]]:
    for change in [*plan.writes(), *plan.held_back, *plan.unchanged]:
        if change.entra_id == entra_id:
            return {k: (v.old, v.new) for k, v in change.changes.items()}
    raise AssertionError(f"{entra_id} has no planned change")


def find(plan: Plan, entra_id: str) -> Any:
    for change in [*plan.writes(), *plan.held_back, *plan.unchanged, *plan.quarantined]:
        if change.entra_id == entra_id:
            return change
    raise AssertionError(f"{entra_id} is not in the plan")


# -- creates --------------------------------------------------------------------------------------


def test_create_sends_every_mapped_field_with_defaults_for_nulls_and_no_nulls() -> None:
    world = World([entra(1, LastName=None, LocaleSidKey=None, FirstName="")])
    plan = world.plan()
    assert outcome(plan) == {"e1": "create"}
    create = plan.creates[0]
    sent = {
        "Username": "user1@contoso.example",
        "Email": "user1@contoso.example",
        "LastName": ".",
        "Alias": "user1",
        "ProfileId": PROFILE,
        "IsActive": True,
        "LocaleSidKey": "en_US",
        "TimeZoneSidKey": "America/Los_Angeles",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US",
    }
    assert {k: v.new for k, v in create.changes.items()} == sent
    assert all(v.old is None for v in create.changes.values())
    assert create.desired == sent
    assert (create.sf_id, create.match_value, create.roles) == (None, "user1@contoso.example", ["Standard User"])


def test_second_create_with_the_same_username_is_held_case_insensitively() -> None:
    world = World([entra(1), entra(2, Username="USER1@Contoso.example"), entra(3)])
    plan = world.plan()
    assert outcome(plan) == {"e1": "create", "e2": "quarantined", "e3": "create"}
    (held,) = plan.quarantined
    assert held.user_principal_name == "user2@contoso.example"
    assert "'USER1@Contoso.example' is also the Username of Entra user e1 (user1@contoso.example)" in held.reasons[0]


def test_changes_and_holds_carry_the_users_display_name() -> None:
    people = [entra(1, displayName="Adèle Vance"), entra(2, Username="USER1@Contoso.example", displayName="Twin")]
    plan = World([*people, entra(3)]).plan()
    found = {item.entra_id: item.display_name for item in [*plan.creates, *plan.quarantined]}
    assert found == {"e1": "Adèle Vance", "e2": "Twin", "e3": None}  # e3: no displayName in Entra


def test_create_whose_username_belongs_to_another_linked_user_is_held() -> None:
    """Salesforce would answer DUPLICATE_USERNAME; the reason says whose it is instead."""
    world = World(
        [entra(1), entra(2, Username="user1@contoso.example")],
        org=[sf(1)],
        snapshot=[link(1)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged", "e2": "quarantined"}
    assert f"already belongs to Salesforce user {sf_id(1)}" in plan.quarantined[0].reasons[0]


def test_defaults_apply_only_on_create() -> None:
    world = World([entra(1, LastName=None, LocaleSidKey=None)], org=[sf(1, LastName="Smith", LocaleSidKey="de_DE")])
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}
    assert plan.unchanged[0].desired["LastName"] == "Smith"  # Salesforce keeps its value


# -- updates --------------------------------------------------------------------------------------


def test_update_sends_only_changed_fields_old_to_new() -> None:
    world = World(
        [entra(1, LastName="Bowen", Title="Engineer"), entra(2)],
        org=[sf(1, LastName="Bowen-Old"), sf(2)],
        snapshot=[link(1), link(2)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "update", "e2": "unchanged"}
    assert changes_of(plan, "e1") == {"LastName": ("Bowen-Old", "Bowen"), "Title": (None, "Engineer")}
    update = plan.updates[0]
    assert update.sf_id == sf_id(1)
    assert update.desired["LastName"] == "Bowen"
    assert update.desired["Title"] == "Engineer"
    assert update.desired["IsActive"] is True


def test_values_equal_after_normalising_are_not_updates() -> None:
    """Booleans vs "true", None vs "", 15- vs 18-character ids, Username case, numbers vs text."""
    world = World(
        [entra(1, Username="User1@Contoso.example", Title="", ProfileId=PROFILE[:15], FederationIdentifier=1001)],
        org=[sf(1, Title=None, FederationIdentifier="1001")],
        snapshot=[link(1)],
    )
    world.people[0]["Flag"] = True
    world.org[0]["Flag"] = "true"
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}


def test_a_changed_boolean_is_an_update() -> None:
    world = World([entra(1, Flag=False)], org=[sf(1, Flag="true")], snapshot=[link(1)])
    plan = world.plan()
    assert changes_of(plan, "e1") == {"Flag": ("true", False)}


def test_null_desired_is_not_sent_unless_the_field_clears() -> None:
    world = World(
        [entra(1, Title=None, FirstName=None)],
        org=[sf(1, Title="Engineer", FirstName="Ann")],
        snapshot=[link(1)],
        clear_when_null={"Title"},
    )
    plan = world.plan()
    # The clear is the typed null, never the text "#N/A" (which is data a person could type).
    assert changes_of(plan, "e1") == {"Title": ("Engineer", None)}
    assert plan.updates[0].desired["Title"] is None
    assert plan.updates[0].desired["FirstName"] == "Ann"


@pytest.mark.parametrize("incremental", [False, True])
def test_an_empty_source_clears_like_a_null_and_other_changes_go_with_it(incremental: bool) -> None:
    world = World(
        [entra(1, Title="", LastName="Vance-Married")],
        org=[sf(1, Title="Engineer")],
        snapshot=[link(1, Title="Engineer")],
        clear_when_null={"Title"},
    )
    plan = world.plan(incremental=incremental)
    assert changes_of(plan, "e1") == {"Title": ("Engineer", None), "LastName": ("Last1", "Vance-Married")}
    assert plan.updates[0].desired["Title"] is None  # the snapshot keeps null, not ""
    world.apply(plan)
    assert world.org[0]["Title"] is None
    assert outcome(world.plan(incremental=incremental)) == {"e1": "unchanged"}


def test_the_text_na_is_data_not_a_clear() -> None:
    """A real value "#N/A" is compared and sent as the text it is (the CSV writer refuses it with
    the reason); the planner never treats it as null."""
    world = World([entra(1, Title="#N/A")], org=[sf(1, Title="Engineer")], snapshot=[link(1)])
    assert changes_of(world.plan(), "e1") == {"Title": ("Engineer", "#N/A")}


def test_clearing_an_already_empty_field_is_no_change() -> None:
    world = World([entra(1, Title=None)], org=[sf(1, Title="")], snapshot=[link(1)], clear_when_null={"Title"})
    assert outcome(world.plan()) == {"e1": "unchanged"}


def test_create_only_fields_are_never_updated() -> None:
    world = World([entra(1, Alias="newalias")], org=[sf(1, Alias="old")], snapshot=[link(1)])
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}
    assert plan.unchanged[0].desired["Alias"] == "old"


# -- deactivations and reactivations ---------------------------------------------------------------


def test_deactivation_sends_only_is_active_false() -> None:
    world = World(
        [entra(1, IsSoftDeleted=True, LastName="Changed", IsActive=False)],
        org=[sf(1)],
        snapshot=[link(1)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "deactivate"}
    change = plan.deactivations[0]
    assert changes_of(plan, "e1") == {"IsActive": (True, False)}
    assert change.sf_id == sf_id(1)
    assert change.desired["IsActive"] is False
    assert change.desired["LastName"] == "Last1"  # what Salesforce keeps


def test_leaver_whose_salesforce_user_is_already_inactive_needs_nothing() -> None:
    world = World([entra(1, IsSoftDeleted=True)], org=[sf(1, IsActive="false")], snapshot=[link(1, active=False)])
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}
    assert plan.unchanged[0].desired["IsActive"] is False


def test_leaver_without_mapped_values_is_deactivated_through_the_snapshot() -> None:
    """A soft-deleted user whose mapping failed still has its link: it is deactivated."""
    world = World([entra(1, IsSoftDeleted=True)], org=[sf(1)], snapshot=[link(1)])
    data = world.diff_input()
    data.mapped = data.mapped.iloc[0:0]
    assert outcome(plan_changes(data)) == {"e1": "deactivate"}


def test_reactivation_sends_is_active_and_changed_fields() -> None:
    world = World(
        [entra(1, LastName="New")],
        org=[sf(1, IsActive="false")],
        snapshot=[link(1, active=False)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "reactivate"}
    assert changes_of(plan, "e1") == {"IsActive": (False, True), "LastName": ("Last1", "New")}
    assert plan.reactivations[0].action is Action.REACTIVATE


def test_leavers_matched_in_the_org_are_deactivated_but_unmatched_ones_are_left_alone() -> None:
    world = World(
        [entra(1, IsSoftDeleted=True), entra(2, IsSoftDeleted=True), entra(3, IsSoftDeleted=True)],
        org=[sf(1), sf(3, IsActive="false")],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "deactivate", "e2": "unchanged", "e3": "unchanged"}
    assert [c.sf_id for c in plan.unchanged] == [None, None]  # nothing for the snapshot to learn


def test_salesforce_users_no_entra_user_maps_to_are_never_touched() -> None:
    world = World(
        [entra(1)],
        org=[sf(1), sf(50, Username="integration@contoso.example.sfdc"), sf(51, IsActive="false")],
        snapshot=[link(1)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}
    assert {c.sf_id for c in [*plan.writes(), *plan.unchanged]} == {sf_id(1)}


def test_user_in_scope_without_mapped_values_is_quarantined_not_dropped() -> None:
    world = World([entra(1), entra(2)], org=[sf(1)], snapshot=[link(1)])
    data = world.diff_input()
    data.mapped = data.mapped[data.mapped["id"] != "e2"]
    plan = plan_changes(data)
    assert outcome(plan) == {"e1": "unchanged", "e2": "quarantined"}
    assert plan.quarantined == [
        QuarantinedUser("e2", "user2@contoso.example", ["no mapped values: the mapping produced no row for this user"])
    ]


# -- accidental-deletion threshold ----------------------------------------------------------------


def leavers_world(total: int, leaving: int, **options: Any) -> World:
    return World(
        [entra(n, IsSoftDeleted=n < leaving) for n in range(total)],
        org=[sf(n) for n in range(total)],
        snapshot=[link(n) for n in range(total)],
        options=SyncOptions(**options),
    )


def test_threshold_by_count_holds_every_deactivation() -> None:
    world = leavers_world(100, 6, deletion_threshold_count=5, deletion_threshold_share=0.9)
    plan = world.plan()
    assert plan.deactivations == []
    assert len(plan.held_back) == 6
    assert {c.action for c in plan.held_back} == {Action.STAGED_DELETE}
    assert changes_of(plan, "e0") == {"IsActive": (True, False)}
    assert "6 deactivations exceed deletion_threshold_count=5" in (plan.held_back_reason or "")
    assert "share" not in (plan.held_back_reason or "")


def test_threshold_by_share_holds_every_deactivation() -> None:
    world = leavers_world(40, 10, deletion_threshold_count=500, deletion_threshold_share=0.2)
    plan = world.plan()
    assert (len(plan.deactivations), len(plan.held_back)) == (0, 10)
    assert "10 deactivations are 25.0% of the 40 managed users, above deletion_threshold_share=20%" in (
        plan.held_back_reason or ""
    )


def test_under_both_limits_deactivations_go_ahead() -> None:
    world = leavers_world(40, 8, deletion_threshold_count=8, deletion_threshold_share=0.2)
    plan = world.plan()
    assert (len(plan.deactivations), len(plan.held_back), plan.held_back_reason) == (8, 0, None)


def test_share_rule_needs_enough_managed_users() -> None:
    world = leavers_world(10, 5, deletion_threshold_count=500, deletion_threshold_share=0.2)
    plan = world.plan()
    assert (len(plan.deactivations), len(plan.held_back)) == (5, 0)


def test_reactivations_and_updates_are_not_held_by_the_threshold() -> None:
    world = leavers_world(30, 10, deletion_threshold_count=1)
    world.people.append(entra(99))
    world.org.append(sf(99, IsActive="false", LastName="Old"))
    world.snapshot.append(link(99, active=False))
    plan = world.plan()
    assert len(plan.held_back) == 10
    assert outcome(plan)["e99"] == "reactivate"


# -- errors -----------------------------------------------------------------------------------------


def test_duplicate_ids_are_refused_by_name() -> None:
    world = World([entra(1), entra(1)])
    with pytest.raises(ValueError, match="user e1 appears twice in the USERS frame"):
        world.plan()


def test_org_without_is_active_is_refused() -> None:
    data = World([entra(1)], org=[sf(1)]).diff_input()
    assert data.org is not None
    data.org = data.org.drop(columns=["IsActive"])
    with pytest.raises(ValueError, match="ORG frame has no 'IsActive' column"):
        plan_changes(data)


def test_org_without_a_mapped_field_is_refused() -> None:
    data = World([entra(1)], org=[sf(1)]).diff_input()
    assert data.org is not None
    data.org = data.org.drop(columns=["Title"])
    with pytest.raises(ValueError, match="ORG frame lacks Title"):
        plan_changes(data)


# -- rules that guard one write (issue 8, case 2) ---------------------------------------------------

MAIL_MISSING = "mail: missing (expect_column_values_to_not_be_null)"


@pytest.mark.parametrize("incremental", [False, True])
def test_a_create_only_reason_does_not_stop_an_existing_users_changes(incremental: bool) -> None:
    """mail null on an existing user: Email is not sent (it stays), the demotion and the new
    surname are; as Entra skips a null source attribute on update."""
    world = World(
        [entra(1, Email=None, ProfileId=OTHER_PROFILE, LastName="Vance-Married")],
        org=[sf(1)],
        snapshot=[link(1)],
        blocks_create={"e1": [MAIL_MISSING]},
    )
    plan = world.plan(incremental=incremental)
    assert outcome(plan) == {"e1": "update"}
    assert changes_of(plan, "e1") == {"ProfileId": (PROFILE, OTHER_PROFILE), "LastName": ("Last1", "Vance-Married")}
    assert plan.updates[0].desired["Email"] == "user1@contoso.example"


def test_a_create_only_reason_holds_a_create_with_it() -> None:
    world = World([entra(1, Email=None), entra(2)], blocks_create={"e1": [MAIL_MISSING]})
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined", "e2": "create"}
    assert find(plan, "e1").reasons == [MAIL_MISSING]


def test_a_create_only_reason_does_not_stop_a_deactivation_or_a_reactivation() -> None:
    world = World(
        [entra(1, IsSoftDeleted=True, IsActive=False, Email=None), entra(2, Email=None)],
        org=[sf(1), sf(2, IsActive="false")],
        snapshot=[link(1), link(2, active=False)],
        blocks_create={"e1": [MAIL_MISSING], "e2": [MAIL_MISSING]},
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "deactivate", "e2": "reactivate"}
    assert changes_of(plan, "e2") == {"IsActive": (False, True)}


def test_an_update_only_reason_holds_a_linked_user_and_lets_a_create_through() -> None:
    reason = "jobTitle: missing (expect_column_values_to_not_be_null)"
    world = World(
        [entra(1, LastName="New"), entra(2)],
        org=[sf(1)],
        snapshot=[link(1)],
        blocks_update={"e1": [reason], "e2": [reason]},
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined", "e2": "create"}
    assert find(plan, "e1").reasons == [reason]


def test_a_create_held_for_a_create_only_reason_claims_no_username() -> None:
    """Held before the duplicate checks: the other create with that Username goes ahead."""
    world = World(
        [entra(1, Email=None), entra(2, Username="user1@contoso.example")], blocks_create={"e1": [MAIL_MISSING]}
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined", "e2": "create"}
    assert find(plan, "e1").reasons == [MAIL_MISSING]


def test_the_plan_built_a_few_users_at_a_time_is_the_plan_built_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan stage writes the diff's ``PlanTable`` to the plan file, its changes built two
    users at a time (across creates, users with a link and leavers, which interleave in the
    unchanged list) and encoded three at a time: the file holds the rows of the whole ``Plan``."""
    people = [
        entra(1),  # create
        entra(2, LastName="Renamed"),  # update
        entra(3),  # unchanged (matched, equal)
        entra(4, IsSoftDeleted=True),  # deactivation
        entra(5, IsSoftDeleted=True),  # leaver linked to nothing: unchanged
        entra(6),  # create
        entra(7, Username="user1@contoso.example"),  # a second create with user 1's Username: held
        entra(8),  # unchanged
        entra(9, IsSoftDeleted=True),  # leaver linked to an inactive user: unchanged
        entra(10, Title="Boss"),  # reactivation
    ]
    org = [sf(2), sf(3), sf(4), sf(8), sf(9, IsActive="false"), sf(10, IsActive="false")]
    world = World(people, org=org, snapshot=[link(9, active=False)])
    whole = world.plan()
    assert [len(getattr(whole, g)) for g in artifacts.PLAN_GROUPS] == [2, 1, 1, 1, 0, 4]
    assert [q.entra_id for q in whole.quarantined] == ["e7"]
    monkeypatch.setattr(plan_table_module, "BUILD_BATCH", 2)
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 3)
    table = plan_table(world.diff_input())
    assert table.to_plan() == whole
    ws = Workspace(tmp_path)
    ws.put("plan", table, PLAN)
    ws.put("whole", whole, PLAN)
    pd.testing.assert_frame_equal(ws.read_frame("plan"), ws.read_frame("whole"))
    assert ws.read_frame("plan").attrs == ws.read_frame("whole").attrs
    assert ws.get("plan", PLAN) == whole


def test_creates_encoded_from_columns_are_the_rows_of_their_built_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan file's creates are encoded from the diff's columns (``_Creates.plan_columns``), no
    ``PlannedChange`` per user: row group by row group, the same Arrow tables (and metadata) as
    encoding the built changes, whatever the values: text JSON escapes, "" and None (defaults or
    not sent), a column mixing numbers and text, roles in every shape, names the log gives."""
    people = [
        entra(1, LastName='O"Brien \\ é 中\n', Title=""),
        entra(2, LocaleSidKey="", Title=7),  # a default for "", a number in a text column
        entra(3, Title="7", FirstName=None, roles="Solo"),
        entra(4, roles=None, FederationIdentifier="fed-4"),
        entra(5, userPrincipalName=None, Title=2.5),  # nameless: the log names it
        entra(6, displayName="Six", Username=""),
        entra(7, IsSoftDeleted=True),  # a leaver linked to nothing
        entra(8, LastName="Renamed"),  # an update
        entra(9, roles=[], LastName=None, FirstName=None),  # nameless: neither the log nor a name
    ]
    world = World(people, org=[sf(8)])
    monkeypatch.setattr(plan_table_module, "BUILD_BATCH", 2)
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 3)
    table = plan_table(world.diff_input())
    assert set(table.nameless()) >= {"e5", "e9"}
    table.name({"e5": ("known5@contoso.example", None)})
    encoded: list[int] = []
    plan_columns = diff_module._Creates.plan_columns

    def spy(self: Any, rows: Any, *, named: bool) -> Any:
        columns = plan_columns(self, rows, named=named)
        encoded.append(len(columns["entra_id"]))
        return columns

    monkeypatch.setattr(diff_module._Creates, "plan_columns", spy)
    from_columns = list(PLAN.encode_batches(table))
    from_changes = list(PLAN.encode_batches(table.to_plan()))
    assert sum(encoded) == table.count("creates") == 7
    assert [t.num_rows for t in from_columns] == [t.num_rows for t in from_changes] == [3, 3, 3]
    for mine, theirs in zip(from_columns, from_changes, strict=True):
        assert mine.equals(theirs, check_metadata=True)
    Workspace(tmp_path / "columns").put("plan", table, PLAN)
    Workspace(tmp_path / "changes").put("plan", table.to_plan(), PLAN)
    files = [(tmp_path / name / "plan.parquet").read_bytes() for name in ("columns", "changes")]
    assert files[0] == files[1]
    creates = pd.concat([t.to_pandas() for t in from_columns]).query("group == 'creates'")
    assert creates["display_name"].tolist()[4] == "First5 Last5"  # named from the create's values
    assert creates["desired"].tolist()[0].startswith('{"Username":"user1@contoso.example"')


def test_a_create_value_json_cannot_hold_is_named_as_before() -> None:
    """A create whose value JSON cannot hold is not encoded from columns: its batch is built as
    changes, whose encoding names the user (as without the column path)."""
    world = World([entra(1), entra(2, Title=object())])
    with pytest.raises(StateError, match="planned change of e2: cannot be stored as JSON"):
        list(PLAN.encode_batches(plan_table(world.diff_input())))


def test_text_needing_no_json_escape_is_quoted_as_it_is_the_rest_goes_through_json() -> None:
    """A create's Arrow text column is written as JSON strings by Arrow only when no value needs an
    escape: then the members are those ``json_bytes`` makes of each value (missing and "" not
    sent); a quote, a backslash or a control character sends the column the Python way."""
    plain = pd.Series(["a", None, "", "é 中 😀 /<>'", "x" * 300], dtype="str")
    text = diff_module._plain_text(plain)
    assert text is not None
    python = diff_module._objects(plain.where(plain != "", None))
    assert [a.to_pylist() for a in diff_module._text_fields("Title", text)] == [
        a.to_pylist() for a in diff_module._json_fields("Title", python)
    ]
    for escaped in ['say "hi"', "back\\slash", "line\nbreak", "tab\t", "bell\x07", "\x1f"]:
        assert diff_module._plain_text(pd.Series(["plain", escaped], dtype="str")) is None
    assert diff_module._plain_text(pd.Series(["a", 1], dtype=object)) is None


def test_a_text_default_keeps_the_column_arrow_text_and_the_same_rows(tmp_path: Path) -> None:
    """A create's column with a text default stays Arrow text when it is Arrow text or all
    missing (``_Creates._column``), so ``plan_columns`` quotes it in Arrow; a mixed column keeps
    the Python way. Either way the rows are those of the built changes."""
    people = [entra(1, LocaleSidKey=None, Title=7), entra(2, LocaleSidKey="", Title="t"), entra(3, LocaleSidKey="de")]
    world = World(people, defaults={**DEFAULTS, "Title": "none"})
    mapped = world.diff_input().mapped.astype({"LocaleSidKey": "str"}).assign(TimeZoneSidKey=None)
    d = world.diff_input()
    table = plan_table(DiffInput(**{**d.__dict__, "mapped": mapped}))
    creates = next(s for s in table.segments if isinstance(s, diff_module._Creates))
    rows = np.arange(3)
    at = creates.mapped_row[rows]
    locale, zone, title = (creates._column(name, at) for name in ("LocaleSidKey", "TimeZoneSidKey", "Title"))
    assert diff_module._arrow_text(locale) and diff_module._arrow_text(zone)
    assert not diff_module._arrow_text(title)  # a number among the text: the Python way
    assert locale.tolist() == ["en_US", "en_US", "de"] and zone.tolist() == ["America/Los_Angeles"] * 3
    for mine, theirs in zip(PLAN.encode_batches(table), PLAN.encode_batches(table.to_plan()), strict=True):
        assert mine.equals(theirs, check_metadata=True)


def test_roles_of_a_parquet_list_cell_are_its_strings() -> None:
    """A roles cell read from Parquet is a NumPy array: its list is the same strings (``tolist``),
    anything else in it still made text as before."""
    assert diff_module._roles(np.array(["Sales", "Standard User"], dtype=object)) == ["Sales", "Standard User"]
    assert diff_module._roles(np.array([7, "x"], dtype=object)) == ["7", "x"]
    assert diff_module._roles(("a", 1)) == ["a", "1"]
    assert diff_module._roles(None) == [] and diff_module._roles("Solo") == ["Solo"]
