"""Stage outputs in a workspace: Parquet frames (with list columns and attrs), the plan, Salesforce's
results and quarantined users round-trip exactly through files and through memory."""

from __future__ import annotations

import dataclasses
import functools
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from include.provisioning import artifacts
from include.provisioning.artifacts import PLAN, QUARANTINE, RESULTS, PlanCodec
from include.provisioning.errors import MissingArtifactError
from include.provisioning.model import (
    Action,
    FieldChange,
    Plan,
    PlannedChange,
    QuarantinedUser,
    RecordResult,
)
from include.provisioning.shards import Shard
from include.provisioning.workspace import MemoryWorkspace, Workspace


def _plan() -> Plan:
    create = PlannedChange(
        "e1",
        "adele.vance@contoso.example",
        Action.CREATE,
        None,
        {"Username": FieldChange(None, "adele.vance@contoso.example"), "IsActive": FieldChange(None, True)},
        match_value="adele.vance@contoso.example",
        desired={"Username": "adele.vance@contoso.example", "Title": None, "IsActive": True},
        roles=["Standard User"],
    )
    update = PlannedChange(
        "e2",
        None,
        Action.UPDATE,
        "005000000000001AAA",
        {"Title": FieldChange("Engineer", None), "LastName": FieldChange("Vance", "Vance-Married")},  # a clear
        desired={"Title": None, "EmployeeNumber": 42},
    )
    held = PlannedChange("e3", "leaver@contoso.example", Action.STAGED_DELETE, "005000000000002AAA", {})
    return Plan(
        creates=[create],
        updates=[update],
        held_back=[held],
        held_back_reason="1 deactivations exceed deletion_threshold_count=0",
        quarantined=[QuarantinedUser("e4", "twice@contoso.example", ["Username: two creates share it"])],
    )


@pytest.fixture(params=["files", "memory"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "run" / "cycle") if request.param == "files" else MemoryWorkspace()


def test_the_plan_round_trips(ws: Workspace) -> None:
    plan = _plan()
    ws.put("plan", plan, PLAN)
    assert ws.get("plan", PLAN) == plan


def test_an_empty_plan_round_trips(ws: Workspace) -> None:
    ws.put("plan", Plan(), PLAN)
    assert ws.get("plan", PLAN) == Plan()


def test_results_and_quarantine_round_trip(ws: Workspace) -> None:
    results = [
        RecordResult("e1", Action.CREATE, "005000000000003AAA", True, created=True),
        RecordResult("e2", Action.DISABLE, "005000000000001AAA", False, "UNABLE_TO_LOCK_ROW", "locked", False),
        RecordResult("e5", Action.UPDATE, None, False, "UNPROCESSED", "not processed", True),
    ]
    ws.put("results", results, RESULTS)
    assert ws.get("results", RESULTS) == results
    quarantined = [QuarantinedUser("e4", None, ["mail: missing", "surname: is the text #N/A"])]
    ws.put("quarantine_validate", quarantined, QUARANTINE)
    assert ws.get("quarantine_validate", QUARANTINE) == quarantined


def test_users_frames_keep_lists_nulls_and_booleans(ws: Workspace) -> None:
    users = pd.DataFrame(
        {
            "id": ["e1", "e2"],
            "userPrincipalName": ["a@contoso.example", None],
            "appRoleAssignments": [["Standard User"], []],
            "IsSoftDeleted": [False, True],
            "scopeReason": [None, "unassigned"],
        }
    )
    ws.write_frame("users", users)
    back = ws.read_frame("users")
    assert list(back["id"]) == ["e1", "e2"]
    assert [list(v) for v in back["appRoleAssignments"]] == [["Standard User"], []]
    assert list(back["IsSoftDeleted"]) == [False, True]
    assert back["userPrincipalName"].isna().tolist() == [False, True]


def test_a_frame_is_read_with_only_the_columns_asked_for_that_it_has(ws: Workspace) -> None:
    users = pd.DataFrame({"id": ["e1", "e2"], "appRoleAssignments": [["Standard User"], []], "mail": ["a@x", None]})
    ws.write_frame("users", users)
    back = ws.read_frame("users", ["appRoleAssignments", "id", "notThere"])
    assert list(back.columns) == ["appRoleAssignments", "id"]
    assert list(back["id"]) == ["e1", "e2"] and [list(v) for v in back["appRoleAssignments"]] == [["Standard User"], []]


@pytest.mark.parametrize("arrow", [True, False], ids=["PLAN.parts", "writes_of"])
def test_the_plans_shard_parts_are_stored_with_it(ws: Workspace, arrow: bool) -> None:
    """``put(parts=...)``: each part is what its cut of the encoded plan decodes to, in a file
    workspace and in memory alike (the command line keeps objects), whether the cut takes Arrow
    batches (``PLAN.parts``) or pandas frames."""
    plan = _plan()
    shards = Shard.all(2)
    parts = (
        PLAN.parts(shards) if arrow else {s.name("plan"): functools.partial(PLAN.writes_of, shard=s) for s in shards}
    )
    ws.put("plan", plan, PLAN, parts=parts)
    assert ws.get("plan", PLAN) == plan
    parts = [ws.get(s.name("plan"), PLAN) for s in shards]
    assert sorted(c.entra_id for part in parts for c in part.writes()) == sorted(c.entra_id for c in plan.writes())
    for shard, part in zip(shards, parts, strict=True):
        assert all(shard.owns([c.entra_id]) == [True] for c in part.writes())
        assert part.held_back == [] and part.unchanged == [] and part.quarantined == []


def test_a_missing_input_names_what_is_missing(ws: Workspace) -> None:
    with pytest.raises(MissingArtifactError, match="plan"):
        ws.get("plan", PLAN)
    assert not ws.has_frame("plan") and not ws.has_json("context")


def test_files_go_through_open_so_object_storage_works(tmp_path: Path) -> None:
    # universal_pathlib is what Airflow's ObjectStoragePath is built on (installed with Airflow).
    ws = Workspace(UPath("memory://provisioning-test/run/cycle"))
    ws.put("plan", _plan(), PLAN)
    ws.write_json("context", {"cycle_id": "c1"})
    assert ws.get("plan", PLAN) == _plan()
    assert ws.read_json("context") == {"cycle_id": "c1"}


def test_a_frame_is_read_with_only_the_rows_a_filter_keeps(ws: Workspace) -> None:
    """A shard's rows read through ``rows=`` are the rows ``Shard.take`` cuts from the whole frame,
    with the columns asked for (the filter's column read for it only)."""
    users = pd.DataFrame(
        {
            "id": [f"0000000{i}-aaaa-bbbb-cccc-{i:012d}" for i in range(60)],
            "appRoleAssignments": [["Standard User"] if i % 3 else [] for i in range(60)],
            "mail": [None if i % 7 == 0 else f"u{i}@contoso.example" for i in range(60)],
        }
    )
    ws.write_frame("users", users)
    seen: list[str] = []
    for shard in Shard.all(3):
        expected = shard.take(users)
        whole = ws.read_frame("users", rows=("id", shard.keep))
        assert whole["id"].tolist() == expected["id"].tolist()
        assert [list(v) for v in whole["appRoleAssignments"]] == [list(v) for v in expected["appRoleAssignments"]]
        assert whole["mail"].isna().tolist() == expected["mail"].isna().tolist()
        some = ws.read_frame("users", ["mail"], rows=("id", shard.keep))
        assert list(some.columns) == ["mail"]
        assert some["mail"].dropna().tolist() == expected["mail"].dropna().tolist()
        seen += whole["id"].tolist()
    assert sorted(seen) == sorted(users["id"])  # every row in exactly one shard
    assert 0 < len(Shard(0, 3).take(users)) < 60


def _many_creates(users: int) -> Plan:
    return Plan(creates=[dataclasses.replace(_plan().creates[0], entra_id=f"e{n}") for n in range(users)])


def test_an_error_encoding_the_plan_is_raised_by_put(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's batches are written in a thread of their own while the next is encoded: an
    error encoding one (here the fifth batch) is raised as it is, and the writer stops."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 2)
    encode = PlanCodec._table
    batches = iter(range(100))

    def failing(self: PlanCodec, batch: Any, schema: Any) -> Any:
        if next(batches) == 4:
            raise ValueError("batch 5 cannot be encoded")
        return encode(self, batch, schema)

    monkeypatch.setattr(PlanCodec, "_table", failing)
    with pytest.raises(ValueError, match="batch 5"):
        Workspace(tmp_path).put("plan", _many_creates(20), PLAN, parts=PLAN.parts(Shard.all(2)))
    assert not (tmp_path / "plan.parquet").exists()
    assert not any(thread.name == "parquet-writer" for thread in threading.enumerate())


def test_an_error_writing_the_plan_is_raised_by_put(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure of the writer's thread (here its third row group) reaches the caller as it is,
    even while the encoding waits for room in the queue (many batches after it)."""
    monkeypatch.setattr(artifacts, "ENCODE_BATCH", 2)
    written = iter(range(1000))
    write_table = pq.ParquetWriter.write_table

    def failing(self: pq.ParquetWriter, table: pa.Table, *args: Any, **kwargs: Any) -> None:
        if next(written) == 2:
            raise OSError("disk full")
        write_table(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        Workspace(tmp_path).put("plan", _many_creates(200), PLAN)
    assert not (tmp_path / "plan.parquet").exists()
    assert not any(thread.name == "parquet-writer" for thread in threading.enumerate())
