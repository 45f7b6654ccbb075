"""Diff: linking Entra users to Salesforce users, incremental mode, and convergence."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.provisioning.diff import plan_changes
from include.provisioning.model import Action
from tests.provisioning.test_diff import (
    World,
    changes_of,
    entra,
    find,
    link,
    outcome,
    sf,
    sf_id,
)

# -- matching in full mode -------------------------------------------------------------------------


def test_username_matches_case_insensitively() -> None:
    world = World(
        [entra(1, Username="Adele.Vance@Contoso.example")], org=[sf(7, like=1, Username="adele.vance@contoso.example")]
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged"}
    (matched,) = plan.unchanged
    assert (matched.sf_id, matched.match_value) == (sf_id(7), "Adele.Vance@Contoso.example")
    assert matched.desired["Username"] == "Adele.Vance@Contoso.example"


def test_first_matching_attribute_in_precedence_wins() -> None:
    world = World(
        [entra(1, FederationIdentifier="fed-1")],
        org=[sf(7, like=1, FederationIdentifier="fed-1", Username="someone.else@contoso.example"), sf(8, like=1)],
        matching=("FederationIdentifier", "Username"),
    )
    plan = world.plan()
    assert find(plan, "e1").sf_id == sf_id(7)
    assert changes_of(plan, "e1") == {"Username": ("someone.else@contoso.example", "user1@contoso.example")}
    world.matching = ("Username", "FederationIdentifier")
    assert find(world.plan(), "e1").sf_id == sf_id(8)


def test_later_attributes_are_tried_when_earlier_ones_match_nothing() -> None:
    world = World(
        [entra(1, FederationIdentifier="fed-1")],
        org=[sf(7, FederationIdentifier="fed-1", Username="old.name@contoso.example")],
        matching=("Username", "FederationIdentifier"),
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "update"}
    assert (plan.updates[0].sf_id, plan.updates[0].match_value) == (sf_id(7), "fed-1")


def test_other_matching_attributes_compare_exactly() -> None:
    world = World(
        [entra(1, Username="new@contoso.example", FederationIdentifier="FED-1")],
        org=[sf(7, FederationIdentifier="fed-1")],
        matching=("Username", "FederationIdentifier"),
    )
    assert outcome(world.plan()) == {"e1": "create"}


def test_one_user_matching_two_salesforce_users_is_held() -> None:
    world = World(
        [entra(1, Username="new@contoso.example", Email="shared@contoso.example")],
        org=[sf(7, Email="shared@contoso.example"), sf(8, Email="shared@contoso.example")],
        matching=("Username", "Email"),
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined"}
    assert plan.quarantined[0].reasons == [
        f"ambiguous match: 2 Salesforce users have Email = 'shared@contoso.example' ({sf_id(7)}, {sf_id(8)})"
    ]


def test_two_users_matching_one_salesforce_user_are_held() -> None:
    world = World(
        [
            entra(1, Username="a@contoso.example", Email="team@contoso.example"),
            entra(2, Username="b@contoso.example", Email="team@contoso.example"),
            entra(3, Username="c@contoso.example", Email="team@contoso.example", IsSoftDeleted=True),
        ],
        org=[sf(7, Email="team@contoso.example")],
        matching=("Username", "Email"),
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined", "e2": "quarantined", "e3": "unchanged"}
    assert "matches 2 Entra users (e1, e2)" in plan.quarantined[0].reasons[0]


def test_a_leaver_does_not_take_a_salesforce_user_from_a_joiner() -> None:
    world = World(
        [
            entra(1, Username="a@contoso.example", Email="team@contoso.example"),
            entra(2, Username="b@contoso.example", Email="team@contoso.example", IsSoftDeleted=True),
        ],
        org=[sf(7, Email="team@contoso.example")],
        matching=("Username", "Email"),
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "update", "e2": "unchanged"}
    assert plan.updates[0].sf_id == sf_id(7)


def test_a_salesforce_user_linked_to_a_user_in_scope_is_not_matched_by_another() -> None:
    world = World(
        [entra(1), entra(2, Username="new@contoso.example", Email="user1@contoso.example")],
        org=[sf(1)],
        snapshot=[link(1)],
        matching=("Username", "Email"),
    )
    assert outcome(world.plan()) == {"e1": "unchanged", "e2": "create"}


def test_linked_salesforce_user_of_a_user_missing_from_this_cycle_stays_with_it() -> None:
    """e1 is not in this (incremental) cycle's frame: it keeps sf 1, e2 may not take it."""
    world = World(
        [entra(1), entra(2, Username="user1@contoso.example")],
        org=[sf(1)],
        snapshot=[link(1)],
    )
    plan = world.plan(incremental=True, only=["e2"])
    assert outcome(plan) == {"e2": "quarantined"}
    assert "duplicate Username" in plan.quarantined[0].reasons[0]


def test_recreated_entra_user_takes_over_the_salesforce_user_of_the_deleted_one() -> None:
    """Deleted and created again with the same UPN: the new object links to the old Salesforce
    user, which is therefore not deactivated for the deleted one."""
    world = World(
        [entra(1, IsSoftDeleted=True), entra(2, Username="user1@contoso.example", LastName="Again")],
        org=[sf(1)],
        snapshot=[link(1)],
    )
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged", "e2": "update"}
    assert plan.updates[0].sf_id == sf_id(1)
    assert plan.unchanged[0].sf_id is None


def test_snapshot_link_to_a_salesforce_user_the_org_no_longer_has_rematches() -> None:
    world = World([entra(1)], org=[sf(7, Username="user1@contoso.example")], snapshot=[link(1, 3)])
    plan = world.plan()
    assert find(plan, "e1").sf_id == sf_id(7)


def test_two_users_linked_to_one_salesforce_user_in_the_snapshot() -> None:
    world = World([entra(1), entra(2, Username="other@contoso.example")], org=[sf(1)], snapshot=[link(1), link(2, 1)])
    plan = world.plan()
    assert outcome(plan) == {"e1": "unchanged", "e2": "quarantined"}
    assert plan.quarantined[0].reasons == [
        f"linked to Salesforce user {sf_id(1)}, which Entra user e1 is also linked to"
    ]


def test_snapshot_id_in_15_characters_links_to_the_18_character_org_id() -> None:
    row = link(1)
    row["sf_id"] = sf_id(1)[:15]
    plan = World([entra(1, LastName="New")], org=[sf(1)], snapshot=[row]).plan()
    assert plan.updates[0].sf_id == sf_id(1)


# -- incremental mode ------------------------------------------------------------------------------


def test_incremental_compares_with_the_snapshot_not_the_org() -> None:
    world = World([entra(1, LastName="New"), entra(2)], org=[], snapshot=[link(1), link(2, LastName="Stale")])
    plan = world.plan(incremental=True)
    assert outcome(plan) == {"e1": "update", "e2": "update"}
    assert changes_of(plan, "e1") == {"LastName": ("Last1", "New")}
    assert changes_of(plan, "e2") == {"LastName": ("Stale", "Last2")}


def test_incremental_matches_unknown_users_against_the_snapshot_match_value() -> None:
    world = World(
        [entra(1, IsSoftDeleted=True), entra(5, Username="USER1@contoso.example")],
        snapshot=[link(1)],
    )
    plan = world.plan(incremental=True)
    assert outcome(plan) == {"e1": "unchanged", "e5": "update"}
    assert plan.updates[0].sf_id == sf_id(1)


def test_incremental_deactivation_and_reactivation_use_the_snapshot_state() -> None:
    world = World([entra(1, IsSoftDeleted=True), entra(2)], snapshot=[link(1), link(2, active=False)])
    plan = world.plan(incremental=True)
    assert outcome(plan) == {"e1": "deactivate", "e2": "reactivate"}
    assert changes_of(plan, "e2") == {"IsActive": (False, True)}


def test_incremental_unknown_user_without_a_match_is_created() -> None:
    plan = World([entra(3)], snapshot=[link(1)]).plan(incremental=True)
    assert outcome(plan) == {"e3": "create"}


# -- convergence ------------------------------------------------------------------------------------


def messy_world() -> World:
    return World(
        [
            entra(1),  # exists, equal
            entra(2, LastName="Bowen"),  # exists, stale
            entra(3, LastName=None, LocaleSidKey=None),  # new, defaults
            entra(4, Title=None),  # exists, title cleared
            entra(5, IsSoftDeleted=True),  # leaver, active
            entra(6),  # exists, inactive
            entra(7, IsSoftDeleted=True),  # leaver, not in Salesforce
            entra(8, Username="User8@Contoso.example", ProfileId="00e000000000002"),
        ],
        org=[
            sf(1),
            sf(2, LastName="Bowen-Old"),
            sf(4, Title="Engineer"),
            sf(5),
            sf(6, IsActive="false"),
            sf(8, ProfileId="00e000000000001AAA"),
            sf(50, Username="integration@contoso.example"),
        ],
        clear_when_null={"Title"},
    )


def test_rerun_after_applying_changes_nothing_in_full_and_incremental_mode() -> None:
    world = messy_world()
    first = world.plan()
    assert outcome(first) == {
        "e1": "unchanged",
        "e2": "update",
        "e3": "create",
        "e4": "update",
        "e5": "deactivate",
        "e6": "reactivate",
        "e7": "unchanged",
        "e8": "update",
    }
    assert changes_of(first, "e8") == {"ProfileId": ("00e000000000001AAA", "00e000000000002")}
    world.apply(first)
    for incremental in (False, True):
        again = world.plan(incremental=incremental)
        assert again.writes() == [], f"incremental={incremental}: {again.writes()}"
        assert again.held_back == [] and again.quarantined == []
    world.people[1]["Title"] = "Lead"
    later = world.plan(incremental=True, only=["e2"])
    assert [(c.entra_id, changes_of(later, c.entra_id)) for c in later.writes()] == [("e2", {"Title": (None, "Lead")})]


def test_first_sync_teaches_the_snapshot_matched_users() -> None:
    world = messy_world()
    world.apply(world.plan())
    linked = {row["entra_id"]: row["sf_id"] for row in world.snapshot}
    assert linked == {
        "e1": sf_id(1),
        "e2": sf_id(2),
        "e3": sf_id(901),
        "e4": sf_id(4),
        "e5": sf_id(5),
        "e6": sf_id(6),
        "e8": sf_id(8),
    }
    assert {row["entra_id"]: row["is_active"] for row in world.snapshot}["e5"] is False


# -- invariants --------------------------------------------------------------------------------------

scenario = st.lists(
    st.tuples(
        st.booleans(),  # leaving
        st.sampled_from(["none", "org", "org-inactive", "org-stale"]),  # Salesforce side
        st.booleans(),  # in the snapshot (when Salesforce has it)
        st.integers(min_value=0, max_value=3),  # username group: collisions on purpose
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario, st.booleans())
def test_every_user_ends_in_exactly_one_outcome_and_only_linked_users_are_written(
    rows: list[tuple[bool, str, bool, int]], incremental: bool
) -> None:
    people: list[dict[str, Any]] = []
    org: list[dict[str, Any]] = [sf(99, Username="unmanaged@contoso.example")]
    snapshot: list[dict[str, Any]] = []
    for n, (leaving, side, known, group) in enumerate(rows):
        username = f"user{n}@contoso.example" if group == 0 else f"shared{group}@contoso.example"
        people.append(entra(n, Username=username, IsSoftDeleted=leaving))
        if side != "none":
            org.append(
                sf(n, Username=username, IsActive="false" if side == "org-inactive" else "true")
                | ({"LastName": "Stale"} if side == "org-stale" else {})
            )
            if known:
                snapshot.append(link(n, active=side != "org-inactive") | {"match_value": username})
    world = World(people, org=org, snapshot=snapshot)
    plan = world.plan(incremental=incremental)

    ends = outcome(plan)
    assert sorted(ends) == sorted(p["id"] for p in people)
    written = [c.sf_id for c in plan.writes() if c.action is not Action.CREATE]
    assert len(written) == len(set(written)), "one Salesforce user written twice"
    assert sf_id(99) not in written
    for change in plan.deactivations:
        assert change.changes.keys() == {"IsActive"}
    for change in [*plan.updates, *plan.deactivations, *plan.reactivations]:
        assert change.sf_id is not None
    creates = [c.changes["Username"].new.lower() for c in plan.creates]
    assert len(creates) == len(set(creates)), "two creates with one Username"


# -- details ----------------------------------------------------------------------------------------


def test_renamed_upn_updates_the_username_and_moves_the_match_value() -> None:
    world = World([entra(1, Username="renamed@contoso.example")], org=[sf(1)], snapshot=[link(1)])
    plan = world.plan()
    assert changes_of(plan, "e1") == {"Username": ("user1@contoso.example", "renamed@contoso.example")}
    assert plan.updates[0].match_value == "renamed@contoso.example"


def test_frames_with_gaps_in_their_index_plan_the_same() -> None:
    """The cycle hands over filtered frames (quarantined users removed): the index is not 0..n-1."""
    world = World([entra(n, IsSoftDeleted=n == 3) for n in range(6)], org=[sf(n) for n in (1, 2, 3)])
    world.people[1]["LastName"] = "Changed"
    expected = {c.entra_id: (c.action, c.sf_id, c.changes) for c in world.plan().writes()}
    data = world.diff_input()
    data.users = data.users.set_axis([10, 3, 7, 99, 5, 0]).iloc[::-1]
    data.mapped = data.mapped.set_axis([4, 4, 8, 1, 2, 6]).iloc[[5, 1, 3, 0, 2, 4]]
    got = {c.entra_id: (c.action, c.sf_id, c.changes) for c in plan_changes(data).writes()}
    assert got == expected
    assert set(got) == {"e0", "e1", "e3", "e4", "e5"}


def test_unchanged_matched_user_teaches_the_snapshot_salesforce_values_of_create_only_fields() -> None:
    plan = World([entra(1, Alias="mine")], org=[sf(1, Alias="theirs")]).plan()
    assert plan.unchanged[0].desired["Alias"] == "theirs"
    assert plan.unchanged[0].desired["IsActive"] is True


def test_username_taken_by_an_unmatched_salesforce_user_when_username_is_not_a_matching_attribute() -> None:
    world = World([entra(1, FederationIdentifier="fed-1")], org=[sf(7, like=1)], matching=("FederationIdentifier",))
    plan = world.plan()
    assert outcome(plan) == {"e1": "quarantined"}
    assert "which no Entra user is linked to (Username is not a matching attribute)" in plan.quarantined[0].reasons[0]


def test_large_frames_with_repeated_values_keep_every_value_and_null() -> None:
    """Above 1,000 rows (per kind of outcome) repeated text is shared between users; values and nulls must survive."""
    people = [entra(n, Title=None if n % 3 == 0 else f"Title {n % 5}") for n in range(3000)]
    world = World(people, org=[sf(n, Title="Old") for n in range(0, 3000, 2)])
    data = world.diff_input()
    data.mapped["Title"] = data.mapped["Title"].astype("str")
    plan = plan_changes(data)
    for change in [*plan.creates, *plan.updates, *plan.unchanged]:
        n = int(change.entra_id[1:])
        expected = None if n % 3 == 0 else f"Title {n % 5}"
        if change.action is Action.CREATE:
            assert change.desired.get("Title") == expected
        else:
            assert change.desired["Title"] == (expected or "Old")
            assert changes_of(plan, change.entra_id) == ({} if expected is None else {"Title": ("Old", expected)})
    assert len(plan.creates) == 1500 and len(plan.updates) + len(plan.unchanged) == 1500
