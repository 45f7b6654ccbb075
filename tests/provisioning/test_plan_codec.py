"""The plan's Parquet codec, value by value: what a file holds is the JSON the state store writes
(``{field: [old, new]}``, desired values, roles), and what comes back is the plan that went in,
types included (``True``, ``1`` and ``1.0`` compare equal, so equality alone would not tell)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from include.provisioning import artifacts, stages
from include.provisioning.artifacts import PLAN, QUARANTINE, RESULTS
from include.provisioning.model import (
    NULL_MARKER,
    Action,
    FieldChange,
    JobRecord,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
)
from include.provisioning.shards import Shard
from include.provisioning.state.codec import (
    ChangesDecoder,
    JsonArray,
    JsonChanges,
    JsonObject,
    StateError,
    changes_from_json,
    changes_json,
    dumps,
)
from include.provisioning.state.recovery import records_json
from include.provisioning.workspace import Workspace

TRICKY: dict[str, Any] = {
    "Username": "zoë.o'brien@contoso.example",
    "Email": "zoë.o'brien@contoso.example",  # the same text twice: one shared change
    "IsActive": True,
    "ReceivesInfoEmails": False,
    "EmployeeNumber": 1,
    "Rate": 1.0,
    "Big": 2**53 + 1,
    "Negative": -0.5,
    "Title": 'VP, "Sales"\nEMEA',
    "CompanyName": "  padded\t",
    "Department": "Zoë 🙂 東京",
    "Division": NULL_MARKER,
    "Aliases": ["a", "b"],  # not hashable: decoded one by one
    "Empty": "",
}


def _typed(value: Any) -> Any:
    """A value with its type spelled out, nested lists included."""
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, value)


def _typed_plan(plan: Plan) -> list[Any]:
    rows = []
    for group in artifacts.PLAN_GROUPS:
        for c in getattr(plan, group):
            changes = [(name, _typed(f.old), _typed(f.new)) for name, f in c.changes.items()]
            desired = [(name, _typed(v)) for name, v in c.desired.items()]
            who = (c.entra_id, c.user_principal_name, c.display_name)
            rows.append((group, *who, c.action, c.sf_id, c.match_value, changes, desired))
            rows.append(("roles", [_typed(r) for r in c.roles]))
    return rows


def _tricky_plan() -> Plan:
    create = PlannedChange(
        "e1",
        TRICKY["Username"],
        Action.CREATE,
        None,
        {name: FieldChange(None, value) for name, value in TRICKY.items() if value != ""},
        match_value=TRICKY["Username"],
        desired={**TRICKY, "Phone": None},
        roles=["Standard User", "Zoë's role"],
        display_name="Zoë O'Brien 🙂",
    )
    twin = PlannedChange(
        "e2",
        None,
        Action.CREATE,
        None,
        {"IsActive": FieldChange(None, 1), "EmployeeNumber": FieldChange(None, True), "Rate": FieldChange(None, 1)},
        desired={"IsActive": 1, "EmployeeNumber": True, "Rate": 1},
    )
    update = PlannedChange(
        "e3",
        "megan@contoso.example",
        Action.UPDATE,
        "005000000000001AAA",
        {
            "Title": FieldChange("Engineer", NULL_MARKER),
            "IsActive": FieldChange(False, True),
            "EmployeeNumber": FieldChange(7, 7.5),
            "Department": FieldChange(None, "Zoë 🙂 東京"),
        },
        match_value="megan@contoso.example",
        desired={"Title": None, "IsActive": True, "EmployeeNumber": 7.5},
        display_name="Megan Bowen",
    )
    return Plan(
        creates=[create, twin],
        updates=[update],
        deactivations=[
            PlannedChange("e4", "l@x", Action.DISABLE, "005000000000002AAA", {"IsActive": FieldChange(True, False)})
        ],
        reactivations=[
            PlannedChange("e5", "r@x", Action.REACTIVATE, "005000000000003AAA", {"IsActive": FieldChange(False, True)})
        ],
        held_back=[PlannedChange("e6", "h@x", Action.STAGED_DELETE, "005000000000004AAA", {})],
        held_back_reason="1 deactivations exceed deletion_threshold_count=0",
        unchanged=[PlannedChange("e7", "u@x", Action.OTHER, "005000000000005AAA", {}, match_value="u@x")],
    )


def test_tricky_values_round_trip_through_a_parquet_file_with_their_types(tmp_path: Path) -> None:
    plan = _tricky_plan()
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN)
    back = ws.get("plan", PLAN)
    assert back == plan
    assert _typed_plan(back) == _typed_plan(plan)
    assert back.creates[0].changes["IsActive"].new is True
    assert type(back.creates[1].changes["IsActive"].new) is int
    assert type(back.creates[1].changes["Rate"].new) is int
    assert type(back.creates[0].changes["Rate"].new) is float
    assert back.creates[1].changes["EmployeeNumber"].new is True
    assert back.creates[0].changes["Aliases"] == FieldChange(None, ["a", "b"])
    assert back.updates[0].changes["Title"] == FieldChange("Engineer", NULL_MARKER)


def test_the_file_holds_the_state_stores_json_text(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.put("plan", _tricky_plan(), PLAN)
    frame = ws.read_frame("plan")
    assert list(frame.columns) == artifacts.PLAN_COLUMNS
    assert frame["group"].tolist() == [
        "creates",
        "creates",
        "updates",
        "deactivations",
        "reactivations",
        "held_back",
        "unchanged",
    ]
    assert frame["changes"].iloc[2] == (
        '{"Title":["Engineer","#N/A"],"IsActive":[false,true],"EmployeeNumber":[7,7.5],'
        '"Department":[null,"Zoë 🙂 東京"]}'
    )
    assert frame["changes"].iloc[1] == '{"IsActive":[null,1],"EmployeeNumber":[null,true],"Rate":[null,1]}'
    assert frame["desired"].iloc[2] == '{"Title":null,"IsActive":true,"EmployeeNumber":7.5}'
    assert frame["roles"].iloc[0] == '["Standard User","Zoë\'s role"]'
    assert frame["changes"].iloc[5] == "{}"
    assert frame["upn"].isna().tolist() == [False, True, False, False, False, False, False]
    assert frame["action"].tolist()[:3] == ["Create", "Create", "Update"]


def test_a_plan_file_written_row_by_row_decodes() -> None:
    """The layout the earlier (row-by-row) encoder wrote, as Parquet hands it back."""
    frame = pd.DataFrame(
        {
            "group": ["creates", "updates"],
            "entra_id": ["e1", "e2"],
            "upn": ["a@x", None],
            "action": ["Create", "Update"],
            "sf_id": [None, "005000000000001AAA"],
            "match_value": ["a@x", None],
            "changes": ['{"Username":[null,"a@x"],"IsActive":[null,true]}', '{"Title":["Dev",null]}'],
            "desired": ['{"Username":"a@x","IsActive":true}', '{"Title":null}'],
            "roles": ['["Standard User"]', "[]"],
        },
        dtype="str",
    )
    frame.attrs["meta"] = {"held_back_reason": None, "quarantined": []}
    plan = PLAN.decode(frame)
    assert plan == Plan(
        creates=[
            PlannedChange(
                "e1",
                "a@x",
                Action.CREATE,
                None,
                {"Username": FieldChange(None, "a@x"), "IsActive": FieldChange(None, True)},
                match_value="a@x",
                desired={"Username": "a@x", "IsActive": True},
                roles=["Standard User"],
            )
        ],
        updates=[
            PlannedChange(
                "e2",
                None,
                Action.UPDATE,
                "005000000000001AAA",
                {"Title": FieldChange("Dev", None)},
                desired={"Title": None},
            )
        ],
    )
    assert plan.creates[0].changes["IsActive"].new is True


def test_decoding_in_batches_keeps_every_change_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(artifacts, "DECODE_BATCH", 2)
    plan = Plan(
        creates=[
            PlannedChange(f"e{n}", f"u{n}@x", Action.CREATE, None, {"LastName": FieldChange(None, f"L{n // 3}")})
            for n in range(5)
        ],
        unchanged=[PlannedChange("e9", None, Action.OTHER, "005000000000009AAA", {})],
    )
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN)
    back = ws.get("plan", PLAN)
    assert back == plan
    assert [c.entra_id for c in back.creates] == ["e0", "e1", "e2", "e3", "e4"]
    # FieldChange is immutable: equal changes of different users are one object.
    assert back.creates[0].changes["LastName"] is back.creates[2].changes["LastName"]


def test_a_value_json_cannot_hold_names_the_user() -> None:
    plan = Plan(creates=[PlannedChange("e1", None, Action.CREATE, None, {}), _bad("e2")])
    with pytest.raises(StateError, match="planned change of e2: cannot be stored as JSON"):
        PLAN.encode(plan)


def _bad(entra_id: str) -> PlannedChange:
    return PlannedChange(entra_id, None, Action.CREATE, None, {"X": FieldChange(None, object())})


def test_the_state_stores_changes_json_is_unchanged() -> None:
    changes = {"A": FieldChange(None, "x"), "B": FieldChange(True, False), "C": FieldChange(1, NULL_MARKER)}
    text = changes_json(changes, what="log row")
    assert text == '{"A":[null,"x"],"B":[true,false],"C":[1,"#N/A"]}'
    assert orjson.loads(text) == {"A": [None, "x"], "B": [True, False], "C": [1, "#N/A"]}
    assert changes_from_json(text) == changes
    assert changes_from_json(None) == {}


def test_shared_changes_keep_each_values_type() -> None:
    decode = ChangesDecoder()
    texts = [
        '{"Id":[null,"u1"],"A":[null,"1"],"B":[null,true],"C":[null,1],"D":[null,1.0]}',
        '{"Id":[null,"u2"],"A":[null,1],"B":[null,"1"],"C":[null,true],"D":[null,0]}',
        '{"Id":[null,"u3"],"A":[null,"1"],"B":[null,"1"],"C":["1",false]}',
        None,
    ]
    first, second, third, none = decode(texts)
    assert [_typed(c.new) for c in first.values()] == [
        ("str", "u1"),
        ("str", "1"),
        ("bool", True),
        ("int", 1),
        ("float", 1.0),
    ]
    assert [_typed(c.new) for c in second.values()] == [
        ("str", "u2"),
        ("int", 1),
        ("str", "1"),
        ("bool", True),
        ("int", 0),
    ]
    assert third == {
        "Id": FieldChange(None, "u3"),
        "A": FieldChange(None, "1"),
        "B": FieldChange(None, "1"),
        "C": FieldChange("1", False),
    }
    assert none == {}
    # "A" and "B" repeat their texts: one object; "Id" is new each time: built directly.
    assert second["B"] is first["A"] is third["A"] is third["B"]
    assert [changes_from_json(text) for text in texts] == [first, second, third, none]
    (listed,) = decode(['{"A":[null,["x"]],"B":[null,"1"]}'])
    assert listed == {"A": FieldChange(None, ["x"]), "B": FieldChange(None, "1")}


def test_quarantined_users_round_trip(tmp_path: Path) -> None:
    users = [
        QuarantinedUser("e1", None, ["mail: missing", 'surname: is the text "#N/A", Zoë']),
        QuarantinedUser("e2", "zoë@x.example", [], "Zoë <b>"),
    ]
    ws = Workspace(tmp_path)
    ws.put("quarantine_plan", users, QUARANTINE)
    back = ws.get("quarantine_plan", QUARANTINE)
    assert back == users
    assert back[0].user_principal_name is None and back[1].reasons == []
    assert (back[0].display_name, back[1].display_name) == (None, "Zoë <b>")


def test_a_plan_file_without_display_names_decodes_with_none(tmp_path: Path) -> None:
    """A plan written before the display name was kept (a run resumed across the upgrade)."""
    frame = PLAN.encode(_tricky_plan()).drop(columns=["display_name"])
    back = PLAN.decode(frame)
    assert [c.display_name for c in back.writes()] == [None] * 5
    assert [c.user_principal_name for c in back.updates] == ["megan@contoso.example"]


def test_results_round_trip_with_their_types(tmp_path: Path) -> None:
    results = [
        RecordResult("e1", Action.CREATE, "005000000000003AAA", True, created=True),
        RecordResult("e2", Action.REACTIVATE, None, False, "FIELD_INTEGRITY_EXCEPTION", 'Zoë: "bad", value\n2', True),
        RecordResult("e3", Action.DISABLE, "005000000000001AAA", True),
    ]
    ws = Workspace(tmp_path)
    ws.put("results", results, RESULTS)
    back = ws.get("results", RESULTS)
    assert back == results
    assert [(type(r.ok), type(r.unprocessed), type(r.created), r.action) for r in back] == [
        (bool, bool, bool, Action.CREATE),
        (bool, bool, bool, Action.REACTIVATE),
        (bool, bool, bool, Action.DISABLE),
    ]
    assert back[1].sf_id is None and back[0].error_code is None


def _many_users_plan(users: int) -> Plan:
    """``_tricky_plan``'s users, repeated under new ids: every group, spread over every shard."""
    plan = Plan(held_back_reason=_tricky_plan().held_back_reason)
    for n in range(users // 7):
        for group in artifacts.PLAN_GROUPS:
            for change in getattr(_tricky_plan(), group):
                getattr(plan, group).append(dataclasses.replace(change, entra_id=f"{change.entra_id}-{n}"))
    plan.quarantined = [QuarantinedUser("q1", "q@x", ["two creates with one Username"])]
    return plan


def _shard_parts(count: int, kind: str) -> dict[str, Any]:
    """``put``'s parts ``new.<i>`` for ``count`` shards: ``PLAN.parts`` (cut in Arrow) or a
    plain ``writes_of`` (cut from a pandas frame of each batch)."""
    if kind == "arrow":
        return {f"new.{part.shard.index}": part for part in PLAN.parts(Shard.all(count)).values()}
    return {f"new.{s.index}": functools.partial(PLAN.writes_of, shard=s) for s in Shard.all(count)}


@pytest.mark.parametrize("kind", ["arrow", "frame"])
@pytest.mark.parametrize("count", [2, 4])
def test_a_shards_plan_cut_from_the_columns_is_the_file_its_restricted_plan_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, kind: str
) -> None:
    """What each load task reads: the plan stage writes the whole plan in row groups and cuts
    each shard's part from the encoded batches; the part holds the same rows as encoding the
    plan restricted to the shard's users (the way the plan stage wrote it before), and decodes
    to the same plan."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 30)  # several row groups
    plan = _many_users_plan(140)
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN, parts=_shard_parts(count, kind))
    assert ws.get("plan", PLAN) == plan
    assert _typed_plan(ws.get("plan", PLAN)) == _typed_plan(plan)
    ids = [c.entra_id for c in plan.writes()]
    sent = 0
    for shard in Shard.all(count):
        owned = {entra_id for entra_id, mine in zip(ids, shard.owns(ids), strict=True) if mine}
        ws.put(f"old.{shard.index}", stages._restrict(plan, owned), PLAN)
        new, old = ws.read_frame(f"new.{shard.index}"), ws.read_frame(f"old.{shard.index}")
        pd.testing.assert_frame_equal(new, old)
        assert new.attrs == old.attrs
        part = ws.get(f"new.{shard.index}", PLAN)
        assert part == stages._restrict(plan, owned) and part.writes()
        assert _typed_plan(part) == _typed_plan(stages._restrict(plan, owned))
        sent += len(part.writes())
    assert sent == len(ids)


def test_the_plan_file_holds_the_rows_encode_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow batches a file is written from are ``encode``'s rows: a plan with every group,
    nulls, a NaN (null, as pandas' conversion had it) and values JSON holds, in several row groups."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 30)
    plan = _many_users_plan(140)
    plan.creates[0] = dataclasses.replace(plan.creates[0], sf_id=float("nan"), display_name=None)
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN)
    frame, encoded = ws.read_frame("plan"), PLAN.encode(plan)
    pd.testing.assert_frame_equal(frame, encoded)
    assert frame.attrs == orjson.loads(orjson.dumps(encoded.attrs))
    assert frame.loc[0, ["sf_id", "display_name"]].isna().all()


def test_an_empty_plan_keeps_its_meta_through_a_file(tmp_path: Path) -> None:
    plan = Plan(held_back_reason="held", quarantined=[QuarantinedUser("q1", None, ["why"])])
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN, parts={"part": functools.partial(PLAN.writes_of, shard=Shard(0, 2))})
    assert ws.get("plan", PLAN) == plan
    assert ws.get("part", PLAN) == Plan()
    assert list(ws.read_frame("plan").columns) == artifacts.PLAN_COLUMNS


def test_the_commits_plan_keeps_values_as_the_json_text_the_state_store_writes(tmp_path: Path) -> None:
    """``STORED_PLAN``: the same plan, each change's values kept as the file's text, which is
    exactly what the state store would encode them to (so the commit stores it as it is)."""
    plan = _tricky_plan()
    ws = Workspace(tmp_path)
    ws.put("plan", plan, PLAN)
    stored = ws.get("plan", artifacts.STORED_PLAN)
    assert stored == plan and plan == stored
    for kept, original in zip(stored.writes(), plan.writes(), strict=True):
        assert type(kept.changes) is JsonChanges and type(kept.desired) is JsonObject
        assert kept.changes.text == changes_json(original.changes, what="x")
        assert changes_json(kept.changes, what="x") is kept.changes.text
        assert kept.desired.text == dumps(original.desired, what="x")
        assert dict(kept.desired.items()) == original.desired and len(kept.desired) == len(original.desired)
        assert kept.changes.value() == original.changes and list(kept.changes) == list(original.changes)
        # The roles too: the text the snapshot stores, equal to the list (either way round).
        assert type(kept.roles) is JsonArray and kept.roles.text == dumps(list(original.roles), what="x")
        assert kept.roles == original.roles and original.roles == kept.roles and list(kept.roles) == original.roles
        assert len(kept.roles) == len(original.roles) and kept.roles != [*original.roles, "another"]
    create = stored.creates[0]
    assert create.desired.get("IsActive") is True and create.desired["Phone"] is None
    assert create.desired.get("Missing", "default") == "default"
    assert type(stored.creates[1].desired.get("IsActive")) is int
    assert bool(stored.held_back[0].changes) is False and bool(create.changes) is True


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ({"IsActive": True, "Title": "x"}, True),
        ({"Title": "x", "IsActive": False}, False),
        ({"IsActive": True}, True),
        ({"Title": "{", "IsActive": True}, None),  # a brace in a value: left to decoding
        ({"Nested": {"IsActive": True}}, None),  # not a top-level key
        ({"Nested": {"IsActive": True}, "IsActive": False}, None),
        ({'Odd"IsActive': True, "IsActive": False}, None),  # a key's name ending in the marker
        ({"Title": ',"IsActive":true', "IsActive": False}, False),  # the marker inside a value
        ({"Titles": [',"IsActive":true'], "IsActive": False}, False),
        ({"Title": ',"IsActive":true'}, None),
        ({"IsActive": "true"}, None),
        ({"IsActive": 1}, None),
        ({"IsActive": None}, None),
        ({"IsActiveSince": True}, None),
        ({}, None),
    ],
)
def test_a_stored_flag_is_read_off_the_text_as_decoding_reads_it(value: dict[str, Any], read: bool | None) -> None:
    """``JsonObject.flag`` (the commit's ``IsActive``): a plain top-level boolean is read off the
    text, the decoded value; anything else, or a text it cannot read safely, gives None (the
    caller then decodes)."""
    stored = JsonObject(dumps(value, what="x"))
    assert stored.flag("IsActive") is read
    assert read is None or stored.get("IsActive") is read
    assert JsonObject('{"IsActive":true,"IsActive":false}').flag("IsActive") is None  # a repeated key


def test_a_field_change_is_still_a_frozen_dataclass() -> None:
    """``FieldChange`` sets its slots itself (cheaper than the frozen dataclass's ``__init__``):
    still built by position or name, equal and hashed by value, immutable, copied and replaced."""
    change = FieldChange(None, "Sales")
    assert change == FieldChange(old=None, new="Sales") and hash(change) == hash(FieldChange(None, "Sales"))
    assert (change.old, change.new) == (None, "Sales") and repr(change) == "FieldChange(old=None, new='Sales')"
    assert {change: 1}[FieldChange(None, "Sales")] == 1 and change != FieldChange("Sales", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.new = "Marketing"  # type: ignore[misc]
    assert dataclasses.replace(change, old="x") == FieldChange("x", "Sales")
    assert dataclasses.astuple(change) == (None, "Sales") and not hasattr(change, "__dict__")
    with pytest.raises(TypeError):
        FieldChange("only old")  # type: ignore[call-arg]


def test_the_loads_plan_gives_the_same_bulk_rows_and_job_records(tmp_path: Path) -> None:
    """The load reads its plan part as ``STORED_PLAN`` (``stages.load_plan``): the Bulk rows it
    builds from the changes' JSON text are the rows the decoded plan gives, keys in the same
    order and values of the same type (``True``, ``1`` and ``1.0`` apart), and the job records
    made from the changes themselves are the ones made from ``JobRecord``s."""
    plan = _tricky_plan()
    ws = Workspace(tmp_path)
    shard = Shard(0, 1)
    ws.put(shard.name("plan"), plan, PLAN)
    loaded = stages.load_plan(ws, shard)
    assert all(type(c.changes) is JsonChanges and c.desired == {} for c in loaded.writes())
    # All but the desired values, roles and match values (never read by the load) are the plan's.
    assert any(c.roles and c.match_value for c in plan.writes())
    without_commit_fields = [dataclasses.replace(c, desired={}, roles=[], match_value=None) for c in plan.writes()]
    assert loaded.writes() == without_commit_fields
    for changes in (loaded.creates, loaded.updates, loaded.deactivations):
        for keyed in (False, True):
            decoded = [c for c in plan.writes() if any(c.entra_id == k.entra_id for k in changes)]
            got, want = stages.bulk_rows(changes, keyed=keyed), stages.bulk_rows(decoded, keyed=keyed)
            assert [list(row) for row in got] == [list(row) for row in want]
            assert [{k: _typed(v) for k, v in row.items()} for row in got] == [
                {k: _typed(v) for k, v in row.items()} for row in want
            ]
    records = {c.entra_id: c for c in loaded.writes()}
    assert records_json(records) == records_json(
        {c.entra_id: JobRecord(c.user_principal_name, c.action, c.display_name) for c in plan.writes()}
    )
