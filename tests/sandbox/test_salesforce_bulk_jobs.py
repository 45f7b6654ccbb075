"""Bulk 2.0 job state machine and processing (include/sandbox/salesforce/bulk_jobs.py).

These drive ``BulkJobs`` directly against an ``Org`` loaded from the example fixture: the
rules that are awkward to reach through a client (abort mid-flight, org replacement,
paging arithmetic, the upload size ceiling). The HTTP contract is covered by
test_salesforce_bulk_api.py with the real clients.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson
import pytest

from include.sandbox.salesforce import bulk_jobs
from include.sandbox.salesforce.bulk_jobs import TERMINAL, BulkJobs, Job, JobState, decode_locator, encode_locator
from include.sandbox.salesforce.exceptions import ApiError
from include.sandbox.salesforce.models import Org
from tests.sandbox_process import FIXTURES

ADMIN = "005000000000001AAA"
STANDARD_PROFILE = "00e000000000001AAA"
HEADER = "Username,LastName,Alias,Email,TimeZoneSidKey,LocaleSidKey,EmailEncodingKey,ProfileId,LanguageLocaleKey"


def _row(username: str, last: str = "Doe", alias: str = "jdoe") -> str:
    return f"{username},{last},{alias},{username},America/Los_Angeles,en_US,UTF-8,{STANDARD_PROFILE},en_US"


@pytest.fixture
def org() -> Org:
    return Org.load(orjson.loads((FIXTURES / "example-org.json").read_bytes()))


@pytest.fixture
def jobs(org: Org) -> BulkJobs:
    return BulkJobs(lambda: org, queue_delay=0)


def _wait(job: Job, timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while job.state not in TERMINAL:
        assert time.monotonic() < deadline, f"job stuck in {job.state}"
        time.sleep(0.01)
    return job


def _ingest(jobs: BulkJobs, data: str, **options: Any) -> Job:
    job = jobs.create_ingest({"object": "User", "operation": "insert", **options}, b"", "62.0", ADMIN)
    jobs.upload(job, data.encode())
    jobs.set_state(job, "UploadComplete")
    return _wait(job)


def _error(call: Any, *args: Any) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value.status, caught.value.error_code, caught.value.message


def test_new_job_is_open_with_a_750_id_and_content_url(jobs: BulkJobs) -> None:
    job = jobs.create_ingest({"object": "user", "operation": "insert"}, b"", "62.0", ADMIN)
    info = job.base_info()
    assert info["id"].startswith("750") and len(info["id"]) == 18
    assert info["object"] == "User"
    assert info["state"] == "Open" and info["apiVersion"] == 62.0
    assert info["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job.id}/batches"
    assert (info["lineEnding"], info["columnDelimiter"], info["concurrencyMode"]) == ("LF", "COMMA", "Parallel")


def test_create_errors(jobs: BulkJobs) -> None:
    assert _error(jobs.create_ingest, {"object": "Account", "operation": "insert"}, b"", "62.0", ADMIN) == (
        400,
        "INVALIDJOB",
        "Unable to find object: Account",
    )
    status, code, message = _error(jobs.create_ingest, {"object": "User", "operation": "upsert"}, b"", "62.0", ADMIN)
    assert (status, code) == (400, "INVALIDJOB")
    assert message == "External ID was blank for User. An External ID must be specified for upsert."
    body = {"object": "User", "operation": "upsert", "externalIdFieldName": "LastName"}
    assert _error(jobs.create_ingest, body, b"", "62.0", ADMIN)[1] == "INVALIDJOB"
    raw = b'{"object":"User","operation":"insert","lineEnding":"CR"}'
    status, code, message = _error(jobs.create_ingest, orjson.loads(raw), raw, "62.0", ADMIN)
    assert (status, code) == (400, "JSON_PARSER_ERROR")
    assert message.startswith("Cannot deserialize instance of lineEnding from VALUE_STRING value CR")


def test_upsert_keys_are_id_and_unique_id_lookup_fields(jobs: BulkJobs) -> None:
    for key, canonical in (("id", "Id"), ("username", "Username"), ("FederationIdentifier", "FederationIdentifier")):
        body = {"object": "User", "operation": "upsert", "externalIdFieldName": key}
        assert jobs.create_ingest(body, b"", "62.0", ADMIN).external_id_field == canonical


def test_one_upload_per_job_and_only_while_open(jobs: BulkJobs) -> None:
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    jobs.upload(job, f"{HEADER}\n{_row('a@x.example')}\n".encode())
    status, code, message = _error(jobs.upload, job, b"LastName\nx\n")
    assert (status, code) == (400, "BULK_API_ERROR")
    assert message.startswith(f"Found multiple contents for job: <{job.id[:15]}>")
    jobs.set_state(job, "UploadComplete")
    assert _error(jobs.upload, job, b"LastName\nx\n")[:2] == (400, "INVALIDJOBSTATE")
    assert _error(jobs.set_state, job, "UploadComplete")[:2] == (400, "INVALIDJOBSTATE")
    _wait(job)
    assert _error(jobs.set_state, job, "Aborted") == (
        400,
        "INVALIDJOBSTATE",
        "Aborting already Completed Job not allowed",
    )


def test_upload_size_ceiling_is_150_mb_base64(jobs: BulkJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bulk_jobs.base64_size(100 * 1024 * 1024) <= bulk_jobs.MAX_UPLOAD_BASE64
    assert bulk_jobs.base64_size(113 * 1024 * 1024) > bulk_jobs.MAX_UPLOAD_BASE64
    monkeypatch.setattr(bulk_jobs, "MAX_UPLOAD_BASE64", 40)
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    assert _error(jobs.upload, job, b"x" * 31)[:2] == (400, "INVALIDBATCH")
    jobs.upload(job, b"x" * 30)


def test_delete_needs_a_closed_or_finished_job(jobs: BulkJobs) -> None:
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    assert _error(jobs.delete, job)[:2] == (400, "INVALIDJOBSTATE")
    jobs.set_state(job, "Aborted")
    jobs.delete(job)
    assert _error(jobs.get, job.id, "ingest") == (404, "NOT_FOUND", "The requested resource does not exist")


def test_results_only_for_finished_jobs(jobs: BulkJobs) -> None:
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    assert _error(jobs.require_terminal, job)[:2] == (400, "INVALIDJOBSTATE")


def test_insert_rows_in_order_until_the_licence_ceiling(jobs: BulkJobs, org: Org) -> None:
    salesforce_licence = org.licenses["100000000000001AAA"]
    free = salesforce_licence.total - salesforce_licence.used
    rows = [_row(f"u{i}@x.example", alias=f"u{i}") for i in range(free + 2)]
    job = _ingest(jobs, "\n".join([HEADER, *rows]) + "\n")
    info = job.full_info()
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (free + 2, 2)
    failed = job.failed_csv().splitlines()
    assert [line.split(",")[2] for line in failed[1:]] == [f'"u{free}@x.example"', f'"u{free + 1}@x.example"']
    assert all('"LICENSE_LIMIT_EXCEEDED:License Limit Exceeded:--"' in line for line in failed[1:])


def test_unknown_header_fails_the_job_and_leaves_rows_unprocessed(jobs: BulkJobs) -> None:
    job = _ingest(jobs, "LastName,Foo\nSmith,1\n")
    assert job.state == JobState.FAILED
    assert job.full_info()["errorMessage"] == "InvalidBatch : Field name not found : Foo"
    assert job.successful_csv() == '"sf__Id","sf__Created",LastName,Foo\n'
    assert job.unprocessed_csv() == 'LastName,Foo\n"Smith","1"\n'


def test_unparseable_upload_fails_the_job(jobs: BulkJobs) -> None:
    job = _ingest(jobs, f"{HEADER}\r\n{_row('a@x.example')}\r\n")
    assert job.state == JobState.FAILED
    assert job.error_message == (
        "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
    )
    assert job.unprocessed_csv().startswith("Username,")


def test_rows_with_the_wrong_number_of_values_fail_alone(jobs: BulkJobs) -> None:
    job = _ingest(jobs, "\n".join([HEADER, _row("ok@x.example"), "short@x.example,Doe"]) + "\n")
    assert job.state == JobState.JOB_COMPLETE
    assert (job.records_processed, job.records_failed) == (2, 1)
    assert '"INVALID_FIELD:Row has 2 values but the header names 9 columns:--","short@x.example","Doe",' in (
        job.failed_csv()
    )


def test_abort_before_close_leaves_everything_unprocessed(jobs: BulkJobs) -> None:
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    data = f"{HEADER}\n{_row('a@x.example')}\n"
    jobs.upload(job, data.encode())
    jobs.set_state(job, "Aborted")
    time.sleep(0.05)
    assert job.state == JobState.ABORTED
    assert job.unprocessed_csv() == f"{HEADER}\n" + ",".join(f'"{v}"' for v in _row("a@x.example").split(",")) + "\n"
    assert job.successful_csv() == f'"sf__Id","sf__Created",{HEADER}\n'
    assert job.failed_csv() == f'"sf__Id","sf__Error",{HEADER}\n'


def test_abort_during_processing_stops_at_a_chunk_boundary(
    jobs: BulkJobs, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_jobs, "CHUNK_SIZE", 2)
    org.licenses["100000000000001AAA"].total = 10_000
    real_insert = org.insert_user

    def slow_insert(fields: dict[str, Any], **kwargs: Any) -> str:
        time.sleep(0.002)  # keeps the job in flight long enough to abort it
        return real_insert(fields, **kwargs)

    monkeypatch.setattr(org, "insert_user", slow_insert)
    rows = [_row(f"c{i}@x.example", alias=f"c{i}") for i in range(1000)]
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    jobs.upload(job, ("\n".join([HEADER, *rows]) + "\n").encode())
    jobs.set_state(job, "UploadComplete")
    deadline = time.monotonic() + 5
    while job.records_processed == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    jobs.set_state(job, "Aborted")
    time.sleep(0.05)
    done = job.records_processed
    assert job.state == JobState.ABORTED
    assert done % 2 == 0 and 0 < done < 1000
    assert len(job.unprocessed_csv().splitlines()) == 1 + 1000 - done
    assert len(job.successful_csv().splitlines()) == 1 + done


def test_replacing_the_org_drops_the_jobs(org: Org) -> None:
    current = {"org": org}
    jobs = BulkJobs(lambda: current["org"], queue_delay=0)
    job = jobs.create_ingest({"object": "User", "operation": "insert"}, b"", "62.0", ADMIN)
    current["org"] = Org.load(orjson.loads((FIXTURES / "example-org.json").read_bytes()))
    assert _error(jobs.get, job.id, "ingest")[0] == 404


def test_query_job_starts_upload_complete(org: Org) -> None:
    slow = BulkJobs(lambda: org, queue_delay=0.5)
    job = slow.create_query({"operation": "query", "query": "SELECT Id FROM User"}, b"", "62.0", ADMIN)
    assert job.base_info()["state"] == "UploadComplete"
    assert _error(slow.require_terminal, job)[:2] == (400, "INVALIDJOBSTATE")


def test_query_job_pages_with_base64_locators(jobs: BulkJobs) -> None:
    job = jobs.create_query({"operation": "query", "query": "SELECT Id, IsActive FROM User"}, b"", "62.0", ADMIN)
    _wait(job)
    first, locator, count = job.results_page(None, 1)
    assert (count, locator) == (1, encode_locator(1))
    assert first == '"Id","IsActive"\n"005000000000001AAA","true"\n'
    second, locator, count = job.results_page(locator, 1)
    assert (count, locator) == (1, "null")
    assert second == '"Id","IsActive"\n"005000000000002AAA","true"\n'
    assert decode_locator("MTAwMDA") == 10000


def test_query_errors_at_create(jobs: BulkJobs) -> None:
    status, code, message = _error(
        jobs.create_query, {"operation": "query", "query": "SELECT Nope FROM User"}, b"", "62.0", ADMIN
    )
    assert (status, code) == (400, "INVALID_FIELD")
    assert "No such column 'Nope' on entity 'User'" in message
    assert _error(jobs.create_query, {"operation": "query", "query": "SELEC Id FROM User"}, b"", "62.0", ADMIN)[1] == (
        "MALFORMED_QUERY"
    )


def test_an_ingest_job_freezes_what_it_keeps_as_it_goes(jobs: BulkJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parsed upload, then each internal batch's writes, are handed to ``keep_written_state``
    as soon as they exist (core/heap.py), not only when the job ends: the collector would walk
    them again and again while the rest of a 200,000-row job is processed."""
    processed: list[int] = []
    job_of: list[Job] = []
    monkeypatch.setattr(bulk_jobs, "CHUNK_SIZE", 2)
    monkeypatch.setattr(bulk_jobs, "keep_written_state", lambda: processed.append(job_of[0].records_processed))
    original = jobs._begin

    def begin(job: Job) -> bool:
        job_of.append(job)
        return original(job)

    monkeypatch.setattr(jobs, "_begin", begin)
    job = _ingest(jobs, "\n".join([HEADER, *(_row(f"f{i}@x.example", alias=f"f{i}") for i in range(5))]) + "\n")
    deadline = time.monotonic() + 10
    while len(processed) < 5 and time.monotonic() < deadline:  # the job's end is frozen after it is final
        time.sleep(0.01)
    assert job.state == JobState.JOB_COMPLETE
    assert processed == [0, 2, 4, 5, 5]  # after parsing, after each batch, at the end


def test_an_ingest_job_runs_with_the_collector_paused(jobs: BulkJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its records, rows and results form no cycles; the collector would walk them between the
    freezes (core/heap.py ``collector_paused``). It is given back when the job ends."""
    seen: list[bool] = []
    original = jobs._chunk_operation

    def chunk_operation(*args: Any) -> Any:
        apply_chunk = original(*args)
        return lambda rows: (seen.append(gc.isenabled()), apply_chunk(rows))[1]

    monkeypatch.setattr(jobs, "_chunk_operation", chunk_operation)
    assert gc.isenabled()
    job = _ingest(jobs, "\n".join([HEADER, _row("p1@x.example", alias="p1")]) + "\n")
    assert job.state == JobState.JOB_COMPLETE
    assert seen == [False]
    deadline = time.monotonic() + 10
    while not gc.isenabled() and time.monotonic() < deadline:  # given back after the job is final
        time.sleep(0.01)
    assert gc.isenabled()
