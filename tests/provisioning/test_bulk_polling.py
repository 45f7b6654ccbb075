"""When the engine looks at a Bulk job again (include/provisioning/salesforce/jobs.py): doubling
backoff, and once the job is processing, no later than its estimated end."""

from __future__ import annotations

from include.provisioning.salesforce.jobs import ESTIMATED_POLL_MIN, JobProgress


def _info(state: str, processed: int) -> dict[str, object]:
    return {"state": state, "numberRecordsProcessed": processed}


def test_a_queued_job_or_one_of_unknown_size_gets_the_backoff() -> None:
    progress = JobProgress(100_000)
    assert progress.next_delay(_info("UploadComplete", 0), 10.0, backoff=0.4) == 0.4
    unknown = JobProgress(None)
    unknown.next_delay(_info("InProgress", 10_000), 10.0, backoff=2.0)
    assert unknown.next_delay(_info("InProgress", 50_000), 11.0, backoff=2.0) == 2.0


def test_the_estimated_end_comes_before_the_backoff() -> None:
    progress = JobProgress(100_000)
    assert progress.next_delay(_info("InProgress", 20_000), 10.0, backoff=2.0) == 2.0  # first sight: no rate yet
    # 60,000 more rows in 2 s: 30,000 rows/s, 20,000 left: 0.667 s
    assert abs(progress.next_delay(_info("InProgress", 80_000), 12.0, backoff=2.0) - 20_000 / 30_000) < 1e-9
    # no progress since the last look: the backoff
    assert progress.next_delay(_info("InProgress", 20_000), 13.0, backoff=2.0) == 2.0
    # all rows counted but not JobComplete yet: the shortest estimated wait, not a tight loop
    assert progress.next_delay(_info("InProgress", 100_000), 13.0, backoff=2.0) == ESTIMATED_POLL_MIN
    # a slow job: the estimate (minutes) never stretches the wait beyond the backoff
    slow = JobProgress(1_000_000)
    slow.next_delay(_info("InProgress", 0), 0.0, backoff=1.0)
    assert slow.next_delay(_info("InProgress", 10), 5.0, backoff=1.0) == 1.0
