"""A user's shard is a stable function of the Entra id: every process, and every version that
hashes the ids, must put a user in the same shard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.provisioning.shards import Shard, shard_numbers

IDS = [
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "Zoë-not-a-guid",
    "",
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",  # a repeat lands where the first did
]
PINNED_4 = [2, 1, 2, 0, 1, 2, 2]
"""Shards of ``IDS`` among 4, as main computed them before this test existed."""


@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("count", [2, 4, 7])
def test_shard_numbers_are_pandas_hashes_of_the_ids_as_text(dtype: object, count: int) -> None:
    """The hashes of ``hash_pandas_object`` with its default ``categorize=True`` (what shards were
    computed with before ``categorize=False`` made them cheaper): the same numbers."""
    ids = pd.Series(IDS * 30 + [None] + [f"id-{i}" for i in range(500)], dtype=dtype)
    before = pd.util.hash_pandas_object(ids.astype(str).reset_index(drop=True), index=False).to_numpy()
    expected = (before % np.uint64(count)).astype(np.int64)
    assert shard_numbers(ids, count).tolist() == expected.tolist()


def test_known_ids_keep_their_shards() -> None:
    assert shard_numbers(pd.Series(IDS), 4).tolist() == PINNED_4


def test_keep_is_the_mask_take_applies() -> None:
    frame = pd.DataFrame({"id": [f"id-{i}" for i in range(100)]})
    for shard in Shard.all(4):
        assert frame[shard.keep(frame["id"])]["id"].tolist() == shard.take(frame)["id"].tolist()
    assert Shard().keep(frame["id"]).all()
