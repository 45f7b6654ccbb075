"""A Bulk ingest job's org-independent work (CSV parsing, value conversion) done ahead, in a
worker process, while the Bulk thread applies the job before it to the org.

Why: the sandbox is one Python process, so its one Bulk thread uses one core, and in a sharded
load the other core idles while the queued jobs wait (docs/decisions.md, "Production (issue 7)").
What a job's rows become before they touch the org depends on the job's upload alone:
``parse_csv`` of the bytes and ``UserSchema.convert_rows`` of each row (each row's record depends
on that row only). So a worker process computes exactly that, in the same functions, for the next
queued jobs; the Bulk thread still applies every job in queue order, row by row, minting ids and
meeting duplicates as before, so outcomes are identical to converting in the Bulk thread.

Robustness: only uploads of ``MIN_BYTES`` or more go to the worker (small jobs and the tests' tiny
orgs never start it); at most ``LOOKAHEAD`` jobs are prepared ahead (what they hold waits in
memory); anything the worker cannot give (a CSV or header error, a dead or stuck worker) is
computed in the Bulk thread as before, and a worker that failed once is not used again. The worker
exits when the sandbox process does (``_watch_parent``), even if that one is killed.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from include.sandbox.salesforce.bulk_csv import NULL_VALUE, CsvFormatError, parse_csv
from include.sandbox.salesforce.exceptions import RecordError
from include.sandbox.salesforce.validation import UserSchema

logger = logging.getLogger(__name__)

MIN_BYTES = 1_000_000
"""Uploads this large (~4,500 loader rows) or larger are prepared in the worker; smaller ones,
where the worker's start (~1 CPU-s, once) and the pickling would not pay, in the Bulk thread."""
LOOKAHEAD = 2
"""Jobs prepared ahead of the Bulk thread at most (a 20,000-row job holds ~40 MB of rows and
records until it is applied)."""
RESULT_TIMEOUT = 120.0
"""Seconds the Bulk thread waits for a prepared job before it computes the job itself (and stops
using the worker): the worker prepares a 20,000-row job in well under a second."""
PREPARED_OPERATIONS = ("insert", "update")
"""The operations whose rows ``BulkJobs._chunk_operation`` converts in batches."""


@dataclass
class PreparedIngest:
    """An upload as the Bulk thread would parse and convert it.

    ``header`` and ``rows`` are ``parse_csv``'s; ``records`` holds, for every row whose width is
    the header's and in upload order, what ``UserSchema.convert_rows`` gives for it (a record
    dict or the ``RecordError`` met first), converted ``chunk`` rows at a time, ``batch`` rows per
    call, as the Bulk thread does."""

    header: list[str]
    rows: list[list[str]]
    records: list[dict[str, Any] | RecordError]


@dataclass(frozen=True)
class IngestTask:
    """What the worker needs of a job: its upload and format, its operation, and the Bulk
    thread's ``CHUNK_SIZE`` and ``CONVERT_BATCH``."""

    data: bytes
    column_delimiter: str
    line_ending: str
    operation: str
    chunk: int
    batch: int


def prepare(task: IngestTask) -> PreparedIngest | None:
    """The worker's task: ``PreparedIngest`` of one upload, or None when the upload or its header
    cannot be read (the Bulk thread then meets, and words, the error itself)."""
    try:
        parsed = parse_csv(task.data, task.column_delimiter, task.line_ending)
    except CsvFormatError:
        return None
    schema = UserSchema()
    try:
        columns = [schema.resolve(name).name for name in parsed.header]
    except RecordError:
        return None
    width = len(columns)
    creating = task.operation == "insert"
    chunk, batch = task.chunk, task.batch
    records: list[dict[str, Any] | RecordError] = []
    for start in range(0, len(parsed.rows), chunk):
        fitting = [row for row in parsed.rows[start : start + chunk] if len(row) == width]
        for part in range(0, len(fitting), batch):
            records.extend(
                schema.convert_rows(columns, fitting[part : part + batch], creating=creating, null=NULL_VALUE)
            )
    return PreparedIngest(parsed.header, parsed.rows, records)


def _watch_parent(parent: int) -> None:
    """Worker initializer: no cyclic collection (a task's objects are freed as soon as they are
    sent), and exit as soon as the sandbox process is gone, even killed (the pool's own pipes
    would otherwise keep an orphan waiting forever)."""
    gc.disable()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class IngestPreparer:
    """The worker process and the jobs it is preparing (``submit``, then ``claim`` and ``result``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._failed = False
        self._pending: dict[str, concurrent.futures.Future[PreparedIngest | None]] = {}

    def wanted(self, operation: str, data: bytes | None) -> bool:
        """Whether a job of ``operation`` with upload ``data`` is worth preparing in the worker."""
        return operation in PREPARED_OPERATIONS and data is not None and len(data) >= MIN_BYTES and not self._failed

    def start(self) -> None:
        """Start the worker now (a large upload arrived), so it is ready when the job is closed."""
        with self._lock:
            pool = self._ensure_pool()
            if pool is not None:
                pool.submit(int)  # the pool starts its process on the first task

    def full(self) -> bool:
        """Whether ``LOOKAHEAD`` jobs are already being prepared."""
        return len(self._pending) >= LOOKAHEAD

    def submitted(self, job_id: str) -> bool:
        return job_id in self._pending

    def submit(self, job_id: str, task: IngestTask) -> None:
        """Have the worker prepare one job."""
        with self._lock:
            pool = self._ensure_pool()
            if pool is None:
                return
            try:
                future = pool.submit(prepare, task)
            except RuntimeError as exc:  # a broken or shut-down pool
                self._give_up(exc)
                return
            self._pending[job_id] = future

    def claim(self, job_id: str) -> concurrent.futures.Future[PreparedIngest | None] | None:
        """The job's preparation, no longer counted as ahead (None if it was not submitted)."""
        with self._lock:
            return self._pending.pop(job_id, None)

    def result(self, future: concurrent.futures.Future[PreparedIngest | None]) -> PreparedIngest | None:
        """The prepared job, or None (an unreadable upload, or the worker failed: then it is not
        used again)."""
        try:
            return future.result(timeout=RESULT_TIMEOUT)
        except Exception as exc:  # dead, stuck or failing worker: the Bulk thread does the work
            with self._lock:
                self._give_up(exc)
            return None

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor | None:
        if self._pool is None and not self._failed:
            # spawn, not fork: the sandbox runs threads (fork would copy their locks mid-use)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def _give_up(self, exc: BaseException) -> None:
        logger.warning("Bulk ingest preparation worker failed (%r); jobs are prepared in the Bulk thread", exc)
        self._failed = True
        self._pending.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            # a stuck worker would never read the shutdown request: end it (the pool keeps its
            # processes by pid in ``_processes``, the one handle it has on them)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
