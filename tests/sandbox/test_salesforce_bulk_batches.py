"""A Bulk 2.0 internal batch is converted column by column (``UserSchema.convert_rows``) before
its rows are written: the records, and each failing row's error (the first in header order, as
Salesforce reports one error per record), must be those of converting one row at a time. And the
job's results: one row per record, failures worded as the record rules word them (SOAP/REST API
Developer Guides, "StatusCode"; Bulk API 2.0 "Get Job Failed Record Results": ``sf__Id``,
``sf__Error`` then the uploaded columns)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import orjson
import pytest

from include.sandbox.salesforce import bulk_jobs
from include.sandbox.salesforce.bulk_jobs import TERMINAL, BulkJobs, Job
from include.sandbox.salesforce.exceptions import RecordError
from include.sandbox.salesforce.models import Org
from include.sandbox.salesforce.validation import REQUIRED_ON_CREATE, UserSchema
from tests.sandbox_process import FIXTURES

ADMIN = "005000000000001AAA"
PROFILE = "00e000000000001AAA"
NULL = "#N/A"
HEADER = [*REQUIRED_ON_CREATE, "IsActive", "Title"]


def _good(n: int) -> list[str]:
    user = f"user{n}@example.com"
    return [user, f"Last{n}", user, f"u{n}"[:8], "America/Los_Angeles", "en_US", "UTF-8", PROFILE, "en_US", "true", ""]


def _rows() -> list[list[str]]:
    """Good rows, rows with one bad value, rows with several (the first column's error wins),
    blanks and nulls."""
    rows = [_good(n) for n in range(12)]
    rows[1][1] = "x" * 81  # LastName too long
    rows[2][4] = "Mars/Olympus"  # TimeZoneSidKey: restricted picklist
    rows[3][2] = "not-an-email"  # Email
    rows[4][0] = "no-at-sign"  # Username shape
    rows[5][7] = "00e00000000000X"  # ProfileId: not an id (the case-safe suffix is wrong)
    rows[6][9] = "maybe"  # IsActive: not a boolean
    rows[7][2], rows[7][1] = "bad", "y" * 90  # LastName comes first in the header: its error wins
    rows[8][1] = NULL  # a null in a required field: the record rules report it later
    rows[9][10] = NULL  # a null in an optional field
    rows[10][3] = ""  # Alias not given (required on create: the record rules report it)
    rows[11][10] = "t" * 81  # Title too long
    return rows


def _one_by_one(schema: UserSchema, header: list[str], rows: list[list[str]], creating: bool) -> list[Any]:
    out: list[Any] = []
    for row in rows:
        fields = {
            name: (None if value == NULL else value) for name, value in zip(header, row, strict=True) if value != ""
        }
        if not creating:
            fields.pop("Id", None)
        try:
            out.append(schema.convert(fields, creating=creating))
        except RecordError as exc:
            out.append(exc)
    return out


def _same(batch: list[Any], single: list[Any]) -> None:
    assert len(batch) == len(single)
    for got, want in zip(batch, single, strict=True):
        if isinstance(want, RecordError):
            assert isinstance(got, RecordError)
            assert (got.status_code, got.message, got.fields) == (want.status_code, want.message, want.fields)
        else:
            assert got == want
            assert list(got) == list(want)  # the same fields in the same (header) order


@pytest.mark.parametrize("creating", [True, False])
def test_convert_rows_is_convert_row_by_row(creating: bool) -> None:
    schema = UserSchema()
    rows = _rows()
    batch = schema.convert_rows(HEADER, rows, creating=creating, null=NULL)
    _same(batch, _one_by_one(schema, HEADER, rows, creating))
    assert isinstance(batch[7], RecordError) and batch[7].fields == ["LastName"]
    assert batch[9] == {
        **batch[0],
        "Username": "user9@example.com",
        "LastName": "Last9",
        "Alias": "u9",
        "Email": "user9@example.com",
        "Title": None,
    }
    assert "Alias" not in batch[10] and "Title" not in batch[0]


def test_convert_rows_refuses_ids_on_insert_and_read_only_columns() -> None:
    schema = UserSchema()
    header = ["Id", "LastName", "Name"]
    rows = [["005000000000001AAA", "A", ""], ["", "B", ""], [NULL, "C", ""], ["", "D", "Full Name"]]
    for creating in (True, False):
        batch = schema.convert_rows(header, rows, creating=creating, null=NULL)
        _same(batch, _one_by_one(schema, header, rows, creating))
    inserted = schema.convert_rows(header, rows, creating=True, null=NULL)
    assert [getattr(r, "status_code", None) for r in inserted] == [
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        None,
        None,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    ]
    assert schema.convert_rows(header, [], creating=True, null=NULL) == []


def _run(jobs: BulkJobs, operation: str, header: list[str], rows: list[list[str]]) -> Job:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    job = jobs.create_ingest({"object": "User", "operation": operation}, b"", "62.0", ADMIN)
    jobs.upload(job, buffer.getvalue().encode())
    jobs.set_state(job, "UploadComplete")
    deadline = time.monotonic() + 20
    while job.state not in TERMINAL:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return job


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("convert_batch", [1, 5, bulk_jobs.CONVERT_BATCH])
def test_insert_then_update_job_results_row_by_row(convert_batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same results and org writes whatever slices a chunk's rows are converted in."""
    monkeypatch.setattr(bulk_jobs, "CONVERT_BATCH", convert_batch)
    org = Org.load(orjson.loads((FIXTURES / "example-org.json").read_bytes()))
    jobs = BulkJobs(lambda: org, queue_delay=0)
    rows = _rows()
    rows.append(rows[0][:5])  # a short row fails alone
    rows.append(list(rows[0]))  # the same username again: the org's rule, after the first
    job = _run(jobs, "insert", HEADER, rows)
    assert (str(job.state), job.records_processed, job.records_failed) == ("JobComplete", 14, 12)
    ok = _csv(job.successful_csv())
    assert ok[0] == ["sf__Id", "sf__Created", *HEADER]
    assert [row[2] for row in ok[1:]] == ["user0@example.com", "user9@example.com"]
    assert all(row[1] == "true" and org.get_user(row[0])["Username"] == row[2] for row in ok[1:])
    failed = {row[2]: row[1] for row in _csv(job.failed_csv())[1:]}
    assert failed["user1@example.com"].startswith("STRING_TOO_LONG:Last Name: data value too large:")
    assert failed["user2@example.com"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Time Zone: bad value for restricted picklist field: "
        "Mars/Olympus:TimeZoneSidKey --"
    )
    assert failed["user7@example.com"].startswith("STRING_TOO_LONG:Last Name")
    assert failed["user8@example.com"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    assert failed["user10@example.com"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Alias]:Alias --"
    assert failed["user11@example.com"].startswith("STRING_TOO_LONG:Title: data value too large:")
    twice = [row[1] for row in _csv(job.failed_csv())[1:] if row[2] == "user0@example.com"]
    assert [text.split(":")[0] for text in twice] == ["INVALID_FIELD", "DUPLICATE_USERNAME"]  # upload order
    updates = [[ok[1][0], "Renamed", NULL], ["005000000000zzz", "X", ""], ["", "Y", ""], [ok[2][0], "", "z" * 81]]
    job = _run(jobs, "update", ["Id", "LastName", "Title"], updates)
    assert (job.records_processed, job.records_failed) == (4, 3)
    assert org.get_user(ok[1][0])["LastName"] == "Renamed" and org.get_user(ok[1][0])["Title"] is None
    failed_rows = _csv(job.failed_csv())[1:]
    assert [row[1].split(":")[0] for row in failed_rows] == [
        "INVALID_CROSS_REFERENCE_KEY",
        "MISSING_ARGUMENT",
        "STRING_TOO_LONG",
    ]
    assert [row[0] for row in failed_rows] == ["005000000000zzz", "", ok[2][0]]
