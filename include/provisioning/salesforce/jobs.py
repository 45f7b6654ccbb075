"""Waiting for Bulk API 2.0 jobs, shared by the org snapshot (query jobs) and the load (ingest).

simple-salesforce's ``wait_for_job`` sleeps its ``wait`` argument (5 s by default) before the
first look and raises without the job's id when a job fails; a small job is done in tens of
milliseconds, so the engine polls itself: first after ``poll_initial`` seconds, then doubling up
to ``poll_max`` (the backoff Salesforce asks for: "Bulk API 2.0 ... poll for job status ... use an
exponential backoff", and every poll counts against the org's API requests). Once a job is
processing, its own counter says how soon it will end: when the caller says how many rows it
sent, the next look is timed for the estimated end (``numberRecordsProcessed`` per second so far;
never sooner than ``ESTIMATED_POLL_MIN`` nor later than the backoff's next delay), so the wait after the
last batch is not up to ``poll_max`` long. Every call goes through ``SalesforceSession.call`` so an
expired session is renewed and the same job is polled on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from include.provisioning.errors import TransientError
from include.provisioning.salesforce.client import SalesforceSession
from include.provisioning.salesforce_messages import plain_message

OPEN = "Open"
UPLOAD_COMPLETE = "UploadComplete"
IN_PROGRESS = "InProgress"
JOB_COMPLETE = "JobComplete"
FAILED = "Failed"
ABORTED = "Aborted"
TERMINAL = frozenset({JOB_COMPLETE, FAILED, ABORTED})
ESTIMATED_POLL_MIN = 0.2
"""Seconds: the shortest wait a progress estimate may choose (a job whose counter has reached its
row count but is not JobComplete yet is then asked five times a second, not in a tight loop)."""
DEFAULT_JOB_TIMEOUT = 24 * 3600.0
"""Bulk 2.0 gives a job at most 24 hours of processing; waiting longer is pointless."""


class BulkJobError(TransientError, RuntimeError):
    """A Bulk job could not be driven to its end; ``job_id`` names it (it may still be recovered)."""

    def __init__(self, job_id: str | None, message: str) -> None:
        super().__init__(f"Bulk job {job_id}: {message}" if job_id else message)
        self.job_id = job_id


def get_job(session: SalesforceSession, job_id: str, *, is_query: bool) -> dict[str, Any]:
    return dict(session.call(lambda: session.bulk2()._client.get_job(job_id, is_query), f"get job {job_id}"))


def wait_for_job(
    session: SalesforceSession,
    job_id: str,
    *,
    is_query: bool,
    poll_initial: float = 0.05,
    poll_max: float = 2.0,
    timeout: float = DEFAULT_JOB_TIMEOUT,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    rows: int | None = None,
) -> dict[str, Any]:
    """Poll until the job is JobComplete, Failed or Aborted; returns its last job info.

    ``rows``: how many records the job holds (an ingest job's upload), which lets the polls follow
    its progress (``next_poll_delay``). Raises ``BulkJobError`` when ``timeout`` passes first (the
    job is left as it is, so the caller's record of it lets a later run settle it).
    """
    deadline = time.monotonic() + timeout
    backoff = poll_initial
    progress = JobProgress(rows)
    while True:
        info = get_job(session, job_id, is_query=is_query)
        if on_poll is not None:
            on_poll(info)
        if info.get("state") in TERMINAL:
            return info
        delay = progress.next_delay(info, time.monotonic(), backoff=backoff)
        if time.monotonic() + delay > deadline:
            raise BulkJobError(job_id, f"still {info.get('state')} after {timeout:.0f} s")
        time.sleep(delay)
        backoff = min(backoff * 2, poll_max)


class JobProgress:
    """A job's processing rate as its polls see it, to time the next poll (seconds)."""

    def __init__(self, rows: int | None) -> None:
        self.rows = rows
        self.first: tuple[float, int] | None = None
        """(monotonic time, numberRecordsProcessed) of the first poll that saw it processing."""

    def next_delay(self, info: dict[str, Any], now: float, *, backoff: float) -> float:
        """``backoff`` (the doubling delay), or sooner when the job is InProgress, its row count
        is known and the rate so far puts its end earlier: the estimated time left, at least
        ``ESTIMATED_POLL_MIN``."""
        processed = info.get("numberRecordsProcessed")
        if self.rows is None or info.get("state") != IN_PROGRESS or not isinstance(processed, int):
            return backoff
        if self.first is None:
            self.first = (now, processed)
            return backoff
        since, before = self.first
        if processed <= before or now <= since:
            return backoff
        left = max(0, self.rows - processed) / ((processed - before) / (now - since))
        return min(backoff, max(ESTIMATED_POLL_MIN, left))


def abort_job(session: SalesforceSession, job_id: str, *, is_query: bool) -> dict[str, Any]:
    return dict(session.call(lambda: session.bulk2()._client.abort_job(job_id, is_query), f"abort job {job_id}"))


def error_text(exc: Exception) -> str:
    """Salesforce's ``[{"errorCode", "message"}]`` as ``CODE: message`` when the error has it."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return f"{first.get('errorCode', '')}: {plain_message(first.get('message')) or ''}".strip(": ")
    status = getattr(exc, "status", None)
    return f"HTTP {status}: {content}" if status else f"{type(exc).__name__}: {exc}"
