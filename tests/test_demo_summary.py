"""The demo's "What happened" (scripts/demo_summary.py): each run's summary says who waits in
escrow, read back from the commit task's XCom, and whether its folder has a report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.provisioning.model import CycleStatus, CycleSummary, Mode
from include.provisioning.report import EscrowBacklog, format_summary
from scripts.demo_summary import _outputs

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def test_the_backlog_travels_through_xcom_and_is_printed_for_an_incremental_run() -> None:
    backlog = EscrowBacklog(3, T0 + dt.timedelta(hours=6))
    xcom = {"cycle_id": "c2", "escrowed": 0, **backlog.to_json()}  # as the commit task returns it
    assert xcom["escrow_waiting"] == 3 and xcom["escrow_next_attempt_at"] == "2026-11-30T15:00:00+00:00"
    read = EscrowBacklog.from_json(xcom)
    assert read == backlog
    run2 = CycleSummary("c2", Mode.INCREMENTAL, CycleStatus.SUCCEEDED, T0, T0, unchanged=10)
    text = format_summary(run2, backlog=read)
    assert "escrowed             0" in text
    assert "escrow: 3 user(s) waiting; next retry 2026-11-30 15:00:00 UTC" in text
    assert EscrowBacklog.from_json({"cycle_id": "c0"}) is None  # an XCom without the keys
    assert EscrowBacklog.from_json(EscrowBacklog().to_json()) == EscrowBacklog(0, None)


@pytest.mark.parametrize("reported", [True, False])
def test_a_runs_folder_says_whether_it_has_a_report(tmp_path: Path, reported: bool) -> None:
    folder = tmp_path / "manual__2026-11-30" / "c2"
    folder.mkdir(parents=True)
    if reported:
        (folder / "report.html").write_text("<html></html>")
    shown = _outputs(tmp_path, "c2")
    assert shown.startswith(str(folder))
    if reported:
        assert shown.endswith("(report.html: the cycle report)")
    else:
        assert shown.endswith("(no report.html: nothing failed, was quarantined or held back)")
    assert _outputs(tmp_path, "c9") == "(none found)"
