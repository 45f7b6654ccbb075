"""A complete full cycle replaces the memory incremental cycles rely on (state/rebuild.py): the
pure rules, ``build_commit(full=True)``, and ``StateStore.commit_cycle(observed=...)``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    EscrowEntry,
    FieldChange,
    Mode,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
)
from include.provisioning.state import StateStore
from include.provisioning.state.codec import loads
from include.provisioning.state.commit import PriorSnapshot, SnapshotRow, build_commit
from include.provisioning.state.rebuild import (
    FullObservation,
    HeldRow,
    held_roles,
    held_rows,
    not_evaluated,
    stale_rows,
)

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
SF = {n: f"005{n:012d}AAA" for n in range(1, 8)}
"""18-character Salesforce ids by user number."""


def linked(
    n: int, action: Action = Action.OTHER, *, sf_id: str | None = None, roles: list[str] | None = None
) -> PlannedChange:
    desired = {"Username": f"u{n}@contoso.com", "LastName": f"New{n}", "IsActive": action is not Action.DISABLE}
    changes = {} if action is Action.OTHER else {"LastName": FieldChange(f"Old{n}", f"New{n}")}
    if action is Action.DISABLE:
        changes = {"IsActive": FieldChange(True, False)}
    return PlannedChange(
        f"e{n}",
        f"u{n}@contoso.com",
        action,
        SF[n] if sf_id is None else sf_id,
        changes,
        match_value=f"u{n}@contoso.com",
        desired=desired,
        roles=roles or ["Standard User"],
    )


def commit(
    store: StateStore, plan: Plan, results: list[RecordResult], *, observed: FullObservation | None = None, **kw: object
) -> None:
    cycle_id = store.start_cycle(Mode.FULL, "fp", now=T0)
    store.commit_cycle(
        CycleSummary(cycle_id, Mode.FULL, CycleStatus.SUCCEEDED, T0),
        plan=plan,
        results=results,
        quarantined=kw.pop("quarantined", []),  # type: ignore[arg-type]
        delta_link="https://graph/delta?token=1",
        mapping_fingerprint="fp",
        now=T0,
        escrow_schedule_hours=(6.0,),
        observed=observed,
        **kw,  # type: ignore[arg-type]
    )


# -- the pure rules ------------------------------------------------------------------------------


def test_held_rows_keep_only_links_the_org_has_compared_on_15_characters_with_the_orgs_values() -> None:
    snapshot = [("e1", SF[1][:15]), ("e2", SF[2]), ("e3", SF[3]), ("e4", None), ("e5", float("nan"))]
    org = pd.DataFrame(
        {"Id": [SF[1], SF[3]], "LastName": ["Vance", "Bowen"], "Title": [None, "CEO"], "IsActive": ["false", "true"]}
    )
    found = held_rows({"e1", "e2", "e4", "e5"}, snapshot, org)  # e2's user is gone, e3 is not held
    assert found == {"e1": HeldRow(SF[1], {"LastName": "Vance", "Title": None, "IsActive": "false"})}
    assert found["e1"].is_active is False


def test_stale_rows_escrow_and_roles_of_a_rebuild() -> None:
    assert stale_rows(["e3", "e1", "e2"], {"e2"}) == ["e1", "e3"]
    assert not_evaluated(["e2", "e9"], frozenset({"e2"})) == ["e9"]
    held = {"e1": HeldRow(SF[1], {}), "e2": HeldRow(SF[2], {})}
    assert held_roles(held, {"e1": ("Admin",)}) == {"e1": ["Admin"]}
    observed = FullObservation({"e1": HeldRow(SF[1], {"LastName": "A", "IsActive": True})})
    assert FullObservation.from_json(observed.to_json()) == observed


# -- build_commit(full=True) ---------------------------------------------------------------------


def test_a_full_plan_without_a_link_does_not_fall_back_to_the_snapshots_link() -> None:
    gone = PlannedChange("e1", "u1@contoso.com", Action.OTHER, None, {}, match_value="u1@contoso.com")
    kwargs = {"quarantined": [], "now": T0, "schedule_hours": (6.0,), "prior_escrow": {}}
    prior = {"e1": PriorSnapshot.of(SnapshotRow("e1", SF[1], "u1", True, "{}", "[]"), keep_json=True)}
    incremental = build_commit("c", plan=Plan(unchanged=[gone]), results=[], prior_snapshot=prior, **kwargs)  # type: ignore[arg-type]
    assert [row.sf_id for row in incremental.snapshot] == [SF[1]]  # incremental: it cannot see the org
    full = build_commit("c", plan=Plan(unchanged=[gone]), results=[], prior_snapshot=prior, full=True, **kwargs)  # type: ignore[arg-type]
    assert full.snapshot == [] and full.snapshot_kept == set()  # full: the org has no such user


def test_a_failed_write_of_a_full_cycle_stores_what_the_org_holds() -> None:
    update, disable = linked(1, Action.UPDATE), linked(2, Action.DISABLE)
    results = [
        RecordResult("e1", Action.UPDATE, SF[1], False, "FIELD_INTEGRITY_EXCEPTION", "bad"),
        RecordResult("e2", Action.DISABLE, SF[2], False, "UNABLE_TO_LOCK_ROW", "locked"),
    ]
    rows = build_commit(
        "c",
        plan=Plan(updates=[update], deactivations=[disable]),
        results=results,
        quarantined=[],
        now=T0,
        schedule_hours=(6.0,),
        prior_snapshot={},
        prior_escrow={},
        full=True,
    )
    by_id = {row.entra_id: row for row in rows.snapshot}
    assert loads(by_id["e1"].fields)["LastName"] == "Old1" and by_id["e1"].sf_id == SF[1]
    assert by_id["e2"].is_active is True and loads(by_id["e2"].fields)["IsActive"] is True
    assert {e.entra_id for e in rows.escrow_upserts} == {"e1", "e2"}


# -- StateStore.commit_cycle(observed=...) -------------------------------------------------------


def test_a_full_commit_replaces_the_snapshot_and_the_escrow(store: StateStore) -> None:
    first = Plan(unchanged=[linked(n) for n in (1, 2, 3, 4, 5)])
    commit(store, first, [])
    escrow = [
        EscrowEntry("e6", Action.CREATE, 1, T0, T0 + dt.timedelta(hours=6), "DUPLICATE_USERNAME", "taken", "c0"),
        EscrowEntry("e7", Action.CREATE, 1, T0, T0 + dt.timedelta(hours=6), "DUPLICATE_USERNAME", "taken", "c0"),
    ]
    failed = [RecordResult(e.entra_id, Action.CREATE, None, False, e.error_code, e.error_message) for e in escrow]
    creates = [PlannedChange(e.entra_id, None, Action.CREATE, None, {}, desired={"LastName": "X"}) for e in escrow]
    commit(store, Plan(creates=creates), failed)
    assert {e.entra_id for e in store.escrow_entries()} == {"e6", "e7"}

    # The full cycle: e1 unchanged, e2 linked to nothing any more, e3 quarantined with its link
    # confirmed and new roles, e4 quarantined with its Salesforce user gone, e5 not extracted;
    # e6 still extracted (waiting in escrow), e7 not extracted.
    plan = Plan(unchanged=[linked(1), PlannedChange("e2", None, Action.OTHER, None, {})])
    org_values = {"Username": "u3@contoso.com", "LastName": "Renamed in Salesforce", "IsActive": "false"}
    observed = FullObservation({"e3": HeldRow(SF[3], org_values)}, frozenset({"e1", "e2", "e3", "e4", "e6"}))
    quarantined = [QuarantinedUser("e3", None, ["not e-mail-shaped"]), QuarantinedUser("e4", None, ["two roles"])]
    seen = {"e1": ["Standard User"], "e2": [], "e3": ["System Administrator"], "e6": ["Standard User"]}
    commit(store, plan, [], observed=observed, quarantined=quarantined, seen=seen, seen_complete=True)

    snapshot = store.snapshot().set_index("entra_id")
    assert sorted(snapshot.index) == ["e1", "e3"]
    assert snapshot.loc["e3", "sf_id"] == SF[3] and list(snapshot.loc["e3", "roles"]) == ["System Administrator"]
    assert snapshot.loc["e3", "fields"] == org_values and not snapshot.loc["e3", "is_active"]
    assert [e.entra_id for e in store.escrow_entries()] == ["e6"]
    assert store.seen_roles() == {"e2": [], "e6": ["Standard User"]}  # unlinked users are "seen"


def test_an_incremental_commit_merges_as_before(store: StateStore) -> None:
    commit(store, Plan(unchanged=[linked(1), linked(2)]), [])
    commit(store, Plan(unchanged=[linked(1)]), [])
    assert sorted(store.snapshot()["entra_id"]) == ["e1", "e2"]  # a commit without an observation keeps e2
