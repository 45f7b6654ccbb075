"""Bulk ingest jobs prepared in the worker process (include/sandbox/salesforce/bulk_prepare.py).

The worker only parses and converts; the Bulk thread applies every row to the org in queue order.
So a series of jobs gives the same ids, errors, result files and org state whether the worker
prepares them or the Bulk thread does, and a failing worker only means the Bulk thread does it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import pickle
from typing import Any

import orjson
import pytest

from include.sandbox.salesforce import bulk_prepare
from include.sandbox.salesforce.bulk_jobs import BulkJobs, Job
from include.sandbox.salesforce.bulk_prepare import IngestPreparer, IngestTask, prepare
from include.sandbox.salesforce.exceptions import RecordError, UnknownFieldError
from include.sandbox.salesforce.models import Org
from tests.sandbox.test_salesforce_bulk_jobs import ADMIN, HEADER, STANDARD_PROFILE, _row, _wait
from tests.sandbox_process import FIXTURES


def _org() -> Org:
    return Org.load(orjson.loads((FIXTURES / "example-org.json").read_bytes()))


def _files() -> list[tuple[str, str]]:
    """Inserts meeting every kind of row outcome, across chunks, then an update of a known user."""
    good = [_row(f"user{n}@prep.example", alias=f"u{n}") for n in range(25)]
    bad = [
        _row("not-an-email"),  # the username rule
        _row("user3@prep.example"),  # a duplicate of a row of the same job
        _row("bad@prep.example").replace("en_US,UTF-8", "xx_XX,UTF-8"),  # a picklist error
        _row("null@prep.example").replace(",Doe,", ",#N/A,"),  # a required field set to null
        "short@prep.example,Doe",  # the wrong width
        _row("x" * 90 + "@prep.example"),  # too long
        _row("quoted@prep.example").replace(",Doe,", ',"Doe, Jr.",'),  # a quoted value
    ]
    inserts = "\n".join([HEADER, *good[:10], *bad, *good[10:]]) + "\n"
    again = "\n".join([HEADER, *good[20:], _row("USER1@prep.example")]) + "\n"  # duplicates of the first job
    update = f"Id,Title,ProfileId\n005000000000001AAA,Boss,{STANDARD_PROFILE}\n005000000000002AAA,#N/A,\n"
    return [("insert", inserts), ("insert", again), ("update", update)]


def _run(jobs: BulkJobs, files: list[tuple[str, str]]) -> list[Job]:
    """Create, upload and close every job first (so they queue together), then wait for all."""
    created = []
    for operation, data in files:
        job = jobs.create_ingest({"object": "User", "operation": operation}, b"", "62.0", ADMIN)
        jobs.upload(job, data.encode())
        created.append(job)
    for job in created:
        jobs.set_state(job, "UploadComplete")
    return [_wait(job, timeout=60) for job in created]


def _outcome(org: Org, done: list[Job]) -> tuple[list[Any], str]:
    results = [(job.state, job.successful_csv(), job.failed_csv(), job.unprocessed_csv()) for job in done]
    dump = org.dump()
    for user in dump["users"]:
        for stamp in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            user.pop(stamp)
    return results, hashlib.sha256(orjson.dumps(dump, option=orjson.OPT_SORT_KEYS)).hexdigest()


def test_jobs_prepared_in_the_worker_end_as_in_the_bulk_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("include.sandbox.salesforce.bulk_jobs.CHUNK_SIZE", 4)
    monkeypatch.setattr("include.sandbox.salesforce.bulk_jobs.CONVERT_BATCH", 3)
    org = _org()
    local = _outcome(org, _run(BulkJobs(lambda: org, queue_delay=0), _files()))
    monkeypatch.setattr(bulk_prepare, "MIN_BYTES", 0)
    org = _org()
    jobs = BulkJobs(lambda: org, queue_delay=0)
    submitted: list[str] = []
    submit = IngestPreparer.submit
    monkeypatch.setattr(
        IngestPreparer, "submit", lambda self, job_id, task: (submitted.append(job_id), submit(self, job_id, task))
    )
    done = _run(jobs, _files())
    assert submitted == [job.id for job in done]  # every job went to the worker
    assert not jobs._preparer._failed
    assert _outcome(org, done) == local
    assert "DUPLICATE_USERNAME" in local[0][1][2] and "INVALID_EMAIL_ADDRESS" in local[0][0][2]


def test_a_failing_worker_leaves_the_work_to_the_bulk_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    org = _org()
    local = _outcome(org, _run(BulkJobs(lambda: org, queue_delay=0), _files()))

    class BrokenPool:
        def submit(self, *args: Any) -> concurrent.futures.Future[Any]:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_exception(concurrent.futures.process.BrokenProcessPool("worker died"))
            return future

        def shutdown(self, **kwargs: Any) -> None:
            pass

    monkeypatch.setattr(bulk_prepare, "MIN_BYTES", 0)
    monkeypatch.setattr(IngestPreparer, "_ensure_pool", lambda self: None if self._failed else BrokenPool())
    org = _org()
    jobs = BulkJobs(lambda: org, queue_delay=0)
    assert _outcome(org, _run(jobs, _files())) == local
    assert jobs._preparer._failed and not jobs._preparer.wanted("insert", b"x")


def test_small_uploads_and_other_operations_stay_in_the_bulk_thread() -> None:
    preparer = IngestPreparer()
    big = b"x" * bulk_prepare.MIN_BYTES
    assert preparer.wanted("insert", big) and preparer.wanted("update", big)
    assert not preparer.wanted("insert", big[:-1])
    assert not preparer.wanted("upsert", big) and not preparer.wanted("delete", big)
    assert preparer._pool is None  # nothing started


def test_prepare_returns_none_for_what_the_bulk_thread_words_itself() -> None:
    assert prepare(IngestTask(b'Username\n"a\n', "COMMA", "LF", "insert", 10, 5)) is None
    assert prepare(IngestTask(b"Nope\nx\n", "COMMA", "LF", "insert", 10, 5)) is None


def test_record_errors_pickle_as_they_are() -> None:
    for error in (RecordError("MALFORMED_ID", "bad id", ["Id"]), UnknownFieldError("Foo")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and copy.args == error.args and copy.__dict__ == error.__dict__
        assert copy.bulk_error() == error.bulk_error()
