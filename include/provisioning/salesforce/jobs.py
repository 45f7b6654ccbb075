"""Waiting for Bulk API 2.0 jobs, shared by the org snapshot (query jobs) and the load (ingest).

simple-salesforce's ``wait_for_job`` sleeps its ``wait`` argument (5 s by default) before the
first look and raises without the job's id when a job fails; a small job is done in tens of
milliseconds, so the engine polls itself: first after ``poll_initial`` seconds, then doubling up
to ``poll_max``. Every call goes through ``SalesforceSession.call`` so an expired session is
renewed and the same job is polled on.
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
) -> dict[str, Any]:
    """Poll until the job is JobComplete, Failed or Aborted; returns its last job info.

    Raises ``BulkJobError`` when ``timeout`` passes first (the job is left as it is, so the
    caller's record of it lets a later run settle it).
    """
    deadline = time.monotonic() + timeout
    delay = poll_initial
    while True:
        info = get_job(session, job_id, is_query=is_query)
        if on_poll is not None:
            on_poll(info)
        if info.get("state") in TERMINAL:
            return info
        if time.monotonic() + delay > deadline:
            raise BulkJobError(job_id, f"still {info.get('state')} after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, poll_max)


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
