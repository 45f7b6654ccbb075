"""What the sharded stages read: a shard's USERS rows (cut before pandas builds them) and the
names of the users they quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from include.provisioning.shards import Shard
from include.provisioning.stages import _held_users, _names, _one_chunk_columns
from include.provisioning.workspace import MemoryWorkspace, Workspace


@pytest.fixture(params=["files", "memory"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "cycle") if request.param == "files" else MemoryWorkspace()


def _users(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"e{i:04d}" for i in range(n)],
            "userPrincipalName": [f"u{i}@contoso.example" for i in range(n)],
            "displayName": [None if i % 5 == 0 else f"User {i}" for i in range(n)],
            "appRoleAssignments": [["Standard User"] for _ in range(n)],
            "IsSoftDeleted": [i % 11 == 0 for i in range(n)],
        }
    )


def test_a_shards_users_are_the_shards_rows_of_the_held_users(ws: Workspace) -> None:
    users = _users(200)
    waiting = ["e0003", "e0050", "e0101"]
    ws.write_frame("users", users)
    ws.write_json("extract", {"escrow_waiting": waiting})
    held = users[~users["id"].isin(waiting)]
    seen = []
    for shard in Shard.all(4):
        read = _held_users(ws, shard=shard)
        assert read["id"].tolist() == shard.take(held)["id"].tolist()
        assert read["displayName"].isna().tolist() == shard.take(held)["displayName"].isna().tolist()
        some = _held_users(ws, ["id", "IsSoftDeleted"], shard)
        assert list(some.columns) == ["id", "IsSoftDeleted"]
        assert some["IsSoftDeleted"].tolist() == shard.take(held)["IsSoftDeleted"].tolist()
        seen += read["id"].tolist()
    assert sorted(seen) == held["id"].tolist()
    assert _held_users(ws, shard=Shard())["id"].tolist() == held["id"].tolist()


def test_names_are_those_of_the_ids_asked_for() -> None:
    users = pd.DataFrame(
        {
            "id": ["e1", "e2", "e3", "e2", None],
            "userPrincipalName": ["a@contoso.example", None, "c@contoso.example", "b@contoso.example", "n@x"],
            "displayName": ["Adele", "Ben", None, "Ben Two", "Nobody"],
        }
    )
    # The last row of an id wins, as a dict built over every row kept it; a null id reads as "nan".
    assert _names(users, {"e2", "e3", "e9", "nan"}) == {
        "e2": ("b@contoso.example", "Ben Two"),
        "e3": ("c@contoso.example", None),
        "nan": ("n@x", "Nobody"),
    }
    assert _names(users, set()) == {}
    assert _names(users[["id"]], {"e1"}) == {"e1": (None, None)}


def test_stacked_shards_have_one_chunk_per_arrow_column(tmp_path: Path) -> None:
    """The plan stage stacks the shards' MAPPED frames with each Arrow-backed column made one
    chunk (``_one_chunk_columns``: a take from it then copies no other rows): the same values,
    dtypes and columns as the concat, which keeps a chunk per shard."""
    ws = Workspace(tmp_path)
    first = pd.DataFrame({"id": ["a", "b"], "Title": ["x", None], "IsActive": [True, False], "Other": [None, None]})
    second = pd.DataFrame({"id": ["c"], "Title": [""], "IsActive": [True], "Other": [None]})
    ws.write_frame("mapped.0of2", first)
    ws.write_frame("mapped.1of2", second)
    expected = pd.concat([ws.read_frame("mapped.0of2"), ws.read_frame("mapped.1of2")], ignore_index=True)
    stacked = _one_chunk_columns(expected.copy())
    pd.testing.assert_frame_equal(stacked, expected)
    for name in ("id", "Title"):
        assert stacked[name].array.__arrow_array__().num_chunks == 1
        assert expected[name].array.__arrow_array__().num_chunks == 2
