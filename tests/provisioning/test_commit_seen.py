"""The roles the commit stage records for every evaluated user (``stages._seen``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from include.provisioning import stages
from include.provisioning.workspace import Workspace


def test_seen_roles_are_plain_lists_of_text_from_a_file_or_from_memory(tmp_path: Path) -> None:
    users = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "appRoleAssignments": [["Standard User", "Custom: Sales"], [], ["Chatter Free User"]],
            "scopeReason": ["assigned", "assigned", "group"],
        }
    )
    ws = Workspace(tmp_path / "ws")
    ws.write_frame("users", users)
    read = ws.read_frame("users", stages.RESULT_COLUMNS)
    assert type(read["appRoleAssignments"].iloc[0]) is np.ndarray  # what Parquet gives back
    expected = {"a": ["Standard User", "Custom: Sales"], "b": [], "c": ["Chatter Free User"]}
    for frame in (read, users):
        seen = stages._seen(frame)
        assert seen == expected
        assert all(type(roles) is list and all(type(role) is str for role in roles) for roles in seen.values())
    assert stages._seen(users.iloc[0:0]) == {}
