"""Reports that add up (issue 8, case 7): an incremental cycle with nothing new still says who
waits in escrow and when they are next tried, though none of them was part of the cycle."""

from __future__ import annotations

from collections.abc import Callable

from include.provisioning.cycle import CycleResult
from include.provisioning.model import Mode
from include.provisioning.report import format_summary


def test_an_incremental_cycle_shows_the_escrow_backlog(cycle: Callable[..., CycleResult]) -> None:
    first = cycle()
    assert first.summary.escrowed >= 1  # the example org holds a username taken elsewhere
    second = cycle()
    assert second.summary.mode is Mode.INCREMENTAL and second.summary.escrowed == 0
    backlog = second.backlog
    assert backlog is not None and backlog.waiting == first.summary.escrowed
    assert backlog.next_attempt_at is not None and backlog.next_attempt_at > second.summary.started_at
    text = format_summary(second.summary, backlog=backlog)
    assert f"escrow: {first.summary.escrowed:,} user(s) waiting; next retry {backlog.next_attempt_at:%Y-%m-%d}" in text
