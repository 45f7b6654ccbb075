"""Slices by assignment date (slices.py) and each user's earliest assignment (assignments.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from include.provisioning.graph.assignments import AssignmentCollector
from include.provisioning.slices import AssignmentWindow

JAN = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FEB = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)


def test_a_slice_takes_its_interval_and_older_users_no_cycle_has_seen() -> None:
    since = {
        "old-new": "2023-06-01T00:00:00Z",
        "old-seen": "2023-06-01T00:00:00Z",
        "undated": "",
        "start": "2024-01-01T00:00:00Z",
        "in": "2024-01-15T08:30:00.1234567Z",
        "end": "2024-02-01T00:00:00Z",
        "end-fraction": "2024-02-01T00:00:00.5Z",
        "late": "2024-03-01T00:00:00Z",
    }
    chosen = AssignmentWindow(JAN, FEB).select(since, evaluated={"old-seen", "in"})
    assert chosen == {"old-new", "undated", "start", "in"}
    assert AssignmentWindow(None, FEB).select(since, evaluated={"old-seen"}) == chosen | {"old-seen"}


def test_windows_are_timezone_aware_and_not_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AssignmentWindow(dt.datetime(2024, 1, 1), FEB)
    with pytest.raises(ValueError, match="empty assignment window"):
        AssignmentWindow(FEB, JAN)
    window = AssignmentWindow(JAN, FEB)
    assert AssignmentWindow.from_json(window.to_json()) == window


def test_a_users_assignment_date_is_the_earliest_of_direct_and_group_assignments() -> None:
    collector = AssignmentCollector()
    collector.add_assignments(
        [
            {"id": "a1", "principalId": "u1", "principalType": "User", "createdDateTime": "2024-05-01T00:00:00Z"},
            {"id": "a2", "principalId": "u1", "principalType": "User", "createdDateTime": "2024-03-01T00:00:00Z"},
            {"id": "a3", "principalId": "g1", "principalType": "Group", "createdDateTime": "2022-01-01T00:00:00Z"},
            {"id": "a4", "principalId": "u3", "principalType": "User"},
        ]
    )
    collector.add_members("g1", ["u1", "u2"])
    assert collector.assigned_since() == {
        "u1": "2022-01-01T00:00:00Z",
        "u2": "2022-01-01T00:00:00Z",
        "u3": "",
    }
