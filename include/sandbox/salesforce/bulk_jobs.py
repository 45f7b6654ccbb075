"""Bulk API 2.0 jobs: their state machine, their data and the processing of it.

States (Bulk API 2.0 and Bulk API Developer Guide, "Get Job Info"): an ingest job is
``Open`` until ``PATCH {"state": "UploadComplete"}``, then the platform takes it
(``InProgress``) and ends it ``JobComplete`` or ``Failed``; ``Aborted`` can be asked for
until it ends. A query job starts ``UploadComplete``. Processing is asynchronous, in
internal batches of 10,000 records ("Bulk API and Bulk API 2.0 Limits and Allocations"),
which is also the granularity at which an abort takes effect. Jobs run one at a time, rows
in upload order, so licence ceilings and duplicate usernames resolve the same way every
run (the real service runs chunks in parallel; its result order is "not guaranteed").

Error wording that the guide does not spell out comes from real responses reported in
public issue trackers and is cited where used; the rest is marked as the emulator's own.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from include.provisioning.gc_pause import collector_paused
from include.sandbox.core.heap import keep_written_state
from include.sandbox.salesforce.bulk_csv import (
    DELIMITERS,
    LINE_ENDINGS,
    NULL_VALUE,
    CsvFormatError,
    ParsedCsv,
    parse_csv,
    write_csv,
    write_results_csv,
)
from include.sandbox.salesforce.exceptions import ApiError, RecordError, SoqlError, UnknownFieldError
from include.sandbox.salesforce.models import UPSERT_KEYS, Org, sf_datetime
from include.sandbox.salesforce.validation import UserSchema, to_id18

SCHEMA = UserSchema()

logger = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
"""Records per internal batch (Bulk API 2.0 limits: "processed in chunks of 10,000")."""
CONVERT_BATCH = 1_000
"""Rows converted at a time within a chunk (``UserSchema.convert_rows``), then written."""
MAX_UPLOAD_BASE64 = 150 * 1024 * 1024
"""Upload Job Data: at most 150 MB once base64-encoded (about 100 MB of raw CSV)."""
DEFAULT_QUERY_PAGE = 50_000
"""Rows per results page when the client gives no ``maxRecords`` (simple-salesforce's
default too; the guide leaves it to the service)."""
ALL_JOBS_PAGE = 1_000
QUEUE_DELAY = 0.05
"""Seconds a closed job waits in UploadComplete before it is picked up."""

INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
SUPPORTED_OBJECTS = ("User",)
JOB_KEY_PREFIX = "750"


class JobState(StrEnum):
    OPEN = "Open"
    UPLOAD_COMPLETE = "UploadComplete"
    IN_PROGRESS = "InProgress"
    JOB_COMPLETE = "JobComplete"
    FAILED = "Failed"
    ABORTED = "Aborted"


TERMINAL = frozenset({JobState.JOB_COMPLETE, JobState.FAILED, JobState.ABORTED})
_STATE_WORD = {
    JobState.OPEN: "Open",
    JobState.UPLOAD_COMPLETE: "UploadComplete",
    JobState.IN_PROGRESS: "InProgress",
    JobState.JOB_COMPLETE: "Completed",
    JobState.FAILED: "Failed",
    JobState.ABORTED: "Aborted",
}
"""How the state reads in ``<Verb>ing already <state> Job not allowed`` (real text seen
for aborting a finished job: ``Aborting already Completed Job not allowed``,
restforce/restforce#905)."""


def bad_request(error_code: str, message: str) -> ApiError:
    return ApiError(400, error_code, message)


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def _invalid_state(verb: str, state: JobState) -> ApiError:
    return bad_request("INVALIDJOBSTATE", f"{verb} already {_STATE_WORD[state]} Job not allowed")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class RowResult:
    """What happened to one uploaded row: ``error`` is None for a success."""

    row: list[str]
    record_id: str
    created: bool = False
    error: str | None = None


@dataclass
class Job:
    """One ingest or query job, as ``GET .../jobs/{ingest|query}/{id}`` describes it."""

    id: str
    kind: str  # "ingest" or "query"
    operation: str
    object: str
    created_by_id: str
    api_version: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id_field: str | None = None
    query: str | None = None
    state: JobState = JobState.OPEN
    created_date: str = field(default_factory=sf_datetime)
    system_modstamp: str = ""
    error_message: str | None = None
    records_processed: int = 0
    records_failed: int = 0
    retries: int = 0
    processing_seconds: float = 0.0
    # ingest data and results
    data: bytes | None = None
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    results: list[RowResult] = field(default_factory=list)
    unprocessed_raw: bytes | None = None
    """When the upload could not be parsed at all, the bytes come back as unprocessed."""
    # query results
    columns: list[str] = field(default_factory=list)
    records: list[list[str | None]] = field(default_factory=list)
    abort_requested: bool = False

    def __post_init__(self) -> None:
        self.system_modstamp = self.system_modstamp or self.created_date

    def touch(self) -> None:
        self.system_modstamp = sf_datetime()

    # --- job info ----------------------------------------------------------------------

    def base_info(self) -> dict[str, Any]:
        """The properties every job answer carries (create, close, abort, list)."""
        info: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by_id,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": str(self.state),
        }
        if self.external_id_field is not None:
            info["externalIdFieldName"] = self.external_id_field
        info["concurrencyMode"] = "Parallel"
        info["contentType"] = "CSV"
        info["apiVersion"] = float(self.api_version)
        if self.kind == "ingest" and self.state == JobState.OPEN:
            info["contentUrl"] = self.content_url
        info["lineEnding"] = self.line_ending
        info["columnDelimiter"] = self.column_delimiter
        return info

    @property
    def content_url(self) -> str:
        # no leading slash, as the real service writes it (Create a Job, response body)
        return f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"

    def listed_info(self) -> dict[str, Any]:
        """A job as ``Get All Jobs`` lists it."""
        info = self.base_info()
        info.pop("contentUrl", None)
        info["jobType"] = "V2Ingest" if self.kind == "ingest" else "V2Query"
        return info

    def full_info(self) -> dict[str, Any]:
        """``Get Job Info``: the base properties plus type, counters and timings."""
        info = self.base_info()
        if self.kind == "ingest":
            info["jobType"] = "V2Ingest"
            info["numberRecordsProcessed"] = self.records_processed
            info["numberRecordsFailed"] = self.records_failed
            info["retries"] = self.retries
            info["totalProcessingTime"] = _ms(self.processing_seconds)
            info["apiActiveProcessingTime"] = _ms(self.processing_seconds * 0.9)
            info["apexProcessingTime"] = 0
        else:
            info["jobType"] = "V2Query"
            info["numberRecordsProcessed"] = self.records_processed
            info["retries"] = self.retries
            info["totalProcessingTime"] = _ms(self.processing_seconds)
            info["isPkChunkingSupported"] = True
        if self.error_message is not None:
            info["errorMessage"] = self.error_message
        return info

    # --- ingest results ----------------------------------------------------------------

    def successful_csv(self) -> str:
        self._read_upload()
        rows = ((r.record_id, "true" if r.created else "false", r.row) for r in self.results if r.error is None)
        return self._sf_results_csv(["sf__Id", "sf__Created"], rows)

    def failed_csv(self) -> str:
        self._read_upload()
        rows = ((r.record_id, r.error or "", r.row) for r in self.results if r.error is not None)
        return self._sf_results_csv(["sf__Id", "sf__Error"], rows)

    def _sf_results_csv(self, sf_columns: list[str], rows: Iterable[tuple[str, str, list[str]]]) -> str:
        """``_results_csv`` of rows ``(sf__Id, sf__Created or sf__Error, uploaded row)``, the row
        padded or cut to the header (``write_results_csv``)."""
        if not self.header:  # nothing was ever uploaded
            return ""
        return write_results_csv([*sf_columns, *self.header], rows, self.column_delimiter, self.line_ending)

    def unprocessed_csv(self) -> str:
        self._read_upload()
        if self.unprocessed_raw is not None:
            return self.unprocessed_raw.decode("utf-8", errors="replace")
        done = len(self.results)
        return self._results_csv([], (self._pad(row) for row in self.rows[done:]))

    def _read_upload(self) -> None:
        """A job aborted before it was processed still reports its upload: every row is
        unprocessed (an unreadable file comes back as it was sent)."""
        if self.header or self.data is None or self.unprocessed_raw is not None:
            return
        try:
            parsed = parse_csv(self.data, self.column_delimiter, self.line_ending)
        except CsvFormatError:
            self.unprocessed_raw = self.data
            return
        self.header, self.rows = parsed.header, parsed.rows

    def _pad(self, row: list[str]) -> list[str]:
        width = len(self.header)
        return row[:width] if len(row) >= width else [*row, *([""] * (width - len(row)))]

    def _results_csv(self, sf_columns: list[str], rows: Iterable[list[str]]) -> str:
        if not self.header:  # nothing was ever uploaded
            return ""
        header = [*sf_columns, *self.header]
        flags = [True] * len(sf_columns) + [False] * len(self.header)
        return write_csv(header, rows, self.column_delimiter, self.line_ending, quote_header=flags)

    # --- query results -----------------------------------------------------------------

    def results_page(self, locator: str | None, max_records: int | None) -> tuple[str, str, int]:
        """One page of a query job's results: ``(csv, next locator or "null", count)``.

        Locators are the offset in base64 without padding, the shape real ones have
        (``MTAwMDA`` is ``10000``).
        """
        start = decode_locator(locator) if locator else 0
        if start > len(self.records):
            raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
        size = max_records if max_records and max_records > 0 else DEFAULT_QUERY_PAGE
        page = self.records[start : start + size]
        end = start + len(page)
        next_locator = encode_locator(end) if end < len(self.records) else "null"
        header_flags = [True] * len(self.columns)
        body = write_csv(self.columns, page, self.column_delimiter, self.line_ending, quote_header=header_flags)
        return body, next_locator, len(page)


def encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    try:
        padded = locator + "=" * (-len(locator) % 4)
        return int(base64.b64decode(padded, validate=True).decode())
    except (ValueError, UnicodeDecodeError):
        raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator") from None


def base64_size(raw_size: int) -> int:
    return 4 * math.ceil(raw_size / 3)


# --- creating jobs ------------------------------------------------------------------------


def _enum_error(name: str, value: Any, raw_body: bytes) -> ApiError:
    """An unknown enum value in the request body, worded like the platform's JSON reader."""
    text = raw_body.decode("utf-8", errors="replace")
    column = text.find(f'"{value}"') + 1 if isinstance(value, str) else 0
    return bad_request(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {name} from VALUE_STRING value {value} or request may be missing a "
        f"required field at [line:1, column:{max(column, 1)}]",
    )


def _format_options(body: dict[str, Any], raw: bytes) -> tuple[str, str]:
    delimiter = body.get("columnDelimiter") or "COMMA"
    if delimiter not in DELIMITERS:
        raise _enum_error("columnDelimiter", delimiter, raw)
    line_ending = body.get("lineEnding") or "LF"
    if line_ending not in LINE_ENDINGS:
        raise _enum_error("lineEnding", line_ending, raw)
    content_type = body.get("contentType") or "CSV"
    if content_type != "CSV":
        raise _enum_error("contentType", content_type, raw)
    return delimiter, line_ending


_FROM = re.compile(r"\bfrom\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class BulkJobs:
    """All Bulk 2.0 jobs of one org, and the worker that processes them.

    ``get_org`` is asked for the current org on every call: the control API may swap the
    whole org (``PUT /_sandbox/state``), and jobs do not survive that.
    """

    def __init__(self, get_org: Callable[[], Org], *, queue_delay: float = QUEUE_DELAY) -> None:
        self._get_org = get_org
        self._org: Org | None = None
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._queue: queue.Queue[tuple[Org, Job]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.queue_delay = queue_delay

    @property
    def org(self) -> Org:
        org = self._get_org()
        with self._lock:
            if org is not self._org:
                for job in self._jobs.values():
                    job.abort_requested = True
                self._jobs = {}
                self._org = org
        return org

    # --- lookup ------------------------------------------------------------------------

    def get(self, job_id: str, kind: str) -> Job:
        _ = self.org
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None and len(job_id) == 15:
                job = next((j for j in self._jobs.values() if j.id[:15] == job_id), None)
        if job is None or job.kind != kind:
            raise not_found()
        return job

    def list_jobs(
        self, kind: str, *, job_type: str | None, concurrency_mode: str | None, pk_chunking: str | None, start: int
    ) -> tuple[list[Job], int | None]:
        """Jobs of one kind, oldest first, one page; returns the page and the next offset."""
        _ = self.org
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.kind == kind]
        wanted_type = "V2Ingest" if kind == "ingest" else "V2Query"
        if job_type is not None and job_type != wanted_type:
            jobs = []
        if concurrency_mode is not None and concurrency_mode != "Parallel":
            jobs = []
        if pk_chunking is not None and pk_chunking.lower() == "true":
            jobs = []  # Bulk 2.0 jobs never use PK chunking
        page = jobs[start : start + ALL_JOBS_PAGE]
        following = start + len(page)
        return page, (following if following < len(jobs) else None)

    def _new_job(self, org: Org, **kwargs: Any) -> Job:
        job = Job(id=org.new_id(JOB_KEY_PREFIX), **kwargs)
        with self._lock:
            self._jobs[job.id] = job
        return job

    # --- ingest ------------------------------------------------------------------------

    def create_ingest(self, body: Any, raw: bytes, api_version: str, user_id: str) -> Job:
        """``POST .../jobs/ingest``; validation errors as the service words them."""
        org = self.org
        if not isinstance(body, dict):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        # Wording marked "own" below is the emulator's: the guide names the error codes
        # (InvalidJob, InvalidJobState, ...) but not every message.
        if operation not in INGEST_OPERATIONS:
            if operation is None:  # own wording
                raise bad_request("INVALIDJOB", "Operation is required")
            raise _enum_error("operation", operation, raw)
        sobject = body.get("object")
        canonical = next(
            (o for o in SUPPORTED_OBJECTS if isinstance(sobject, str) and o.lower() == sobject.lower()), None
        )
        if canonical is None:
            # Bulk API (v1 and 2.0) wording for an unknown sObject: "Unable to find object: Foo"
            raise bad_request("INVALIDJOB", f"Unable to find object: {sobject}")
        delimiter, line_ending = _format_options(body, raw)
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external_id:  # the Bulk API's wording for an upsert job without a key
                raise bad_request(
                    "INVALIDJOB",
                    f"External ID was blank for {canonical}. An External ID must be specified for upsert.",
                )
            external_id = self._check_external_id(str(external_id))
        else:
            external_id = None
        return self._new_job(
            org,
            kind="ingest",
            operation=operation,
            object=canonical,
            created_by_id=user_id,
            api_version=api_version,
            column_delimiter=delimiter,
            line_ending=line_ending,
            external_id_field=external_id,
        )

    @staticmethod
    def _check_external_id(name: str) -> str:
        try:
            field_name = UserSchema().resolve(name).name
        except UnknownFieldError:
            field_name = None
        if field_name not in UPSERT_KEYS:
            # own wording (the model's upsert error); usable keys: Id and the unique idLookup
            # fields of User, as SOAP upsert() allows for standard objects
            raise bad_request("INVALIDJOB", f"Field {name} is not an External ID or indexed field for User")
        return field_name

    def upload(self, job: Job, data: bytes) -> None:
        """``PUT .../batches``: one upload per job, only while Open."""
        with self._lock:
            if job.state != JobState.OPEN:  # own wording
                raise bad_request("INVALIDJOBSTATE", f"Job is not in Open state, current state is {job.state}")
            if job.data is not None:
                # real text, as reported by users of the API ("Found multiple contents for job")
                raise bad_request(
                    "BULK_API_ERROR",
                    f"Found multiple contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / 'Delete' the "
                    "current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
                )
            if base64_size(len(data)) > MAX_UPLOAD_BASE64:  # own wording
                raise bad_request(
                    "INVALIDBATCH",
                    "The uploaded data exceeds the maximum size of 150 MB (base64 encoded) for a job; "
                    "upload at most 100 MB of CSV per job",
                )
            job.data = data
            job.touch()

    def set_state(self, job: Job, state: Any) -> Job:
        """``PATCH`` a job to ``UploadComplete`` (ingest only) or ``Aborted``."""
        with self._lock:
            if state == JobState.ABORTED:
                if job.state in TERMINAL:
                    raise _invalid_state("Aborting", job.state)
                job.state = JobState.ABORTED
                job.abort_requested = True
                job.touch()
                return job
            if state == JobState.UPLOAD_COMPLETE and job.kind == "ingest":
                if job.state != JobState.OPEN:
                    raise _invalid_state("Closing", job.state)
                job.state = JobState.UPLOAD_COMPLETE
                job.touch()
                self._enqueue(job)
                return job
        # own wording for states a client may not ask for
        if isinstance(state, str) and state in {s.value for s in JobState}:
            raise bad_request("INVALIDJOBSTATE", f"Invalid job state transition to {state}")
        raise bad_request("INVALIDJOBSTATE", f"Invalid job state: {state}")

    def delete(self, job: Job) -> None:
        """``DELETE``: allowed once the job is closed, finished, failed or aborted."""
        with self._lock:
            if job.state in (JobState.OPEN, JobState.IN_PROGRESS):  # own wording
                raise bad_request("INVALIDJOBSTATE", f"Deleting {_STATE_WORD[job.state]} Job not allowed")
            job.abort_requested = True
            self._jobs.pop(job.id, None)

    @staticmethod
    def require_terminal(job: Job) -> None:
        """Results exist only for a job that has finished (``Get Job ... Results``:
        "for a completed job"); asking earlier is refused (own wording)."""
        if job.state not in TERMINAL:
            raise bad_request("INVALIDJOBSTATE", f"Job {job.id} is not complete, current state is {job.state}")

    # --- query -------------------------------------------------------------------------

    def create_query(self, body: Any, raw: bytes, api_version: str, user_id: str) -> Job:
        """``POST .../jobs/query``: the SOQL is checked (and run) when the job is created."""
        org = self.org
        if not isinstance(body, dict):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation") or "query"
        if operation not in QUERY_OPERATIONS:
            raise _enum_error("operation", operation, raw)
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise bad_request("INVALIDJOB", "Query is required")  # own wording
        delimiter, line_ending = _format_options(body, raw)
        started = time.monotonic()
        try:
            columns, records = org.query(soql, include_deleted=operation == "queryAll")
        except SoqlError as exc:
            raise bad_request(exc.error_code, exc.message) from None
        if columns == ["COUNT()"]:  # Bulk 2.0 query does not do aggregates; own wording
            raise bad_request("INVALIDJOB", "COUNT() is not supported by Bulk API 2.0 query")
        match = _FROM.search(soql)
        job = self._new_job(
            org,
            kind="query",
            operation=operation,
            object=match.group(1) if match else "User",
            created_by_id=user_id,
            api_version=api_version,
            column_delimiter=delimiter,
            line_ending=line_ending,
            query=soql,
            state=JobState.UPLOAD_COMPLETE,
        )
        job.columns = columns
        job.records = [[_csv_value(rec.get(col)) for col in columns] for rec in records]
        job.processing_seconds = time.monotonic() - started
        self._enqueue(job)
        return job

    # --- processing --------------------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        org = self._org
        assert org is not None
        self._queue.put((org, job))
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="bulk2-jobs", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            org, job = self._queue.get()
            if self.queue_delay:
                time.sleep(self.queue_delay)
            try:
                if job.kind == "ingest":
                    self._process_ingest(org, job)
                    keep_written_state()
                else:
                    self._process_query(job)
            except Exception as exc:  # an emulator bug must not leave the job InProgress forever
                logger.exception("Bulk 2.0 job %s crashed", job.id)
                self._finish(job, JobState.FAILED, f"InternalServerError : {type(exc).__name__}: {exc}")

    def _begin(self, job: Job) -> bool:
        with self._lock:
            if job.state != JobState.UPLOAD_COMPLETE or job.abort_requested:
                return False
            job.state = JobState.IN_PROGRESS
            job.touch()
            return True

    def _finish(self, job: Job, state: JobState, error: str | None = None) -> None:
        with self._lock:
            if job.state == JobState.IN_PROGRESS:
                job.state = state
                job.error_message = error
            job.touch()

    def _process_query(self, job: Job) -> None:
        if not self._begin(job):
            return
        job.records_processed = len(job.records)
        self._finish(job, JobState.JOB_COMPLETE)

    def _process_ingest(self, org: Org, job: Job) -> None:
        """Run an ingest job to its end with the cyclic collector paused (process-wide: the HTTP
        threads run without it meanwhile too). A job builds tens of thousands of records, user rows
        and results and no reference cycles, and between the freezes (``keep_written_state``, after
        parsing and after each 10,000-row batch) the collector walked what the batch had made so far
        again and again: ~13 % of a 20,000-row insert's processing. The engine's
        ``collector_paused`` (standard library only) serves here too, rather than a copy."""
        with collector_paused():
            self._ingest(org, job)

    def _ingest(self, org: Org, job: Job) -> None:
        if not self._begin(job):
            return
        started = time.monotonic()
        try:
            parsed = parse_csv(job.data or b"", job.column_delimiter, job.line_ending)
        except CsvFormatError as exc:
            job.unprocessed_raw = job.data or b""
            self._finish(job, JobState.FAILED, exc.message)
            return
        job.header, job.rows = parsed.header, parsed.rows
        keep_written_state()
        try:
            columns = self._resolve_header(org, job, parsed)
        except UnknownFieldError as exc:
            self._finish(job, JobState.FAILED, f"InvalidBatch : {exc.message}")
            return
        apply = self._operation(org, job, columns)
        apply_chunk = self._chunk_operation(org, job, columns, apply)
        for start in range(0, len(job.rows), CHUNK_SIZE):
            if job.abort_requested:
                break
            chunk = job.rows[start : start + CHUNK_SIZE]
            with org.lock:
                chunk_results = apply_chunk(chunk)
            failed = sum(result.error is not None for result in chunk_results)
            with self._lock:
                job.results.extend(chunk_results)
                job.records_processed += len(chunk)
                job.records_failed += failed
                job.processing_seconds = time.monotonic() - started
                job.touch()
            keep_written_state()
        job.processing_seconds = time.monotonic() - started
        self._finish(job, JobState.JOB_COMPLETE)

    @staticmethod
    def _resolve_header(org: Org, job: Job, parsed: ParsedCsv) -> list[str]:
        """Canonical field names of the header (names are case-insensitive); an unknown
        name fails the whole job (``InvalidBatch : Field name not found : Foo``)."""
        schema = UserSchema()
        names = [schema.resolve(name).name for name in parsed.header]
        if job.operation in ("insert", "update", "upsert"):
            # read-only columns fail each row (with the record's own error), not the job
            with contextlib.suppress(RecordError):
                org.check_user_columns(list(parsed.header), job.operation)
        return names

    @staticmethod
    def _chunk_operation(
        org: Org, job: Job, columns: list[str], apply: Callable[[list[str]], RowResult]
    ) -> Callable[[list[list[str]]], list[RowResult]]:
        """Apply one internal batch of rows, in order; a result per row.

        Inserts and updates convert the batch's values column by column, ``CONVERT_BATCH`` rows
        at a time (``UserSchema.convert_rows``: the same checks and the same first error per row
        as one row at a time, the repetition saved), and write those rows one by one with every
        org rule (uniqueness, references, licences) in upload order. Other operations, and rows
        whose width is not the header's, go one row at a time through ``apply``."""
        if job.operation not in ("insert", "update"):
            return lambda rows: [apply(row) for row in rows]
        width = len(columns)
        creating = job.operation == "insert"
        actor = job.created_by_id
        id_index = columns.index("Id") if "Id" in columns else None

        def converted(whole: list[list[str]]) -> Iterator[dict[str, Any] | RecordError]:
            # a slice at a time, as the rows are written: a record is still in the CPU's caches
            # when it is inserted (each row's record depends on that row alone)
            for start in range(0, len(whole), CONVERT_BATCH):
                part = whole[start : start + CONVERT_BATCH]
                yield from SCHEMA.convert_rows(columns, part, creating=creating, null=NULL_VALUE)

        def apply_chunk(rows: list[list[str]]) -> list[RowResult]:
            records = converted([row for row in rows if len(row) == width])
            results: list[RowResult] = []
            for row in rows:
                if len(row) != width:
                    results.append(apply(row))  # the width error, worded in one place
                    continue
                record = next(records)
                if creating:
                    if isinstance(record, RecordError):
                        results.append(RowResult(row, "", error=record.bulk_error()))
                        continue
                    try:
                        results.append(RowResult(row, org.insert_converted(record, actor=actor), created=True))
                    except RecordError as exc:
                        results.append(RowResult(row, "", error=exc.bulk_error()))
                    continue
                given_id = row[id_index] if id_index is not None else ""
                user_id = "" if given_id == NULL_VALUE else given_id
                try:
                    results.append(RowResult(row, org.update_converted(user_id, record, actor=actor)))
                except RecordError as exc:
                    results.append(RowResult(row, given_id, error=exc.bulk_error()))
            return results

        return apply_chunk

    def _operation(self, org: Org, job: Job, columns: list[str]) -> Callable[[list[str]], RowResult]:
        width = len(columns)
        actor = job.created_by_id
        id_index = columns.index("Id") if "Id" in columns else None

        def fields_of(row: list[str]) -> dict[str, str | None]:
            # empty: not sent (ignored on update, unset on insert); #N/A: null
            return {
                name: (None if value == NULL_VALUE else value)
                for name, value in zip(columns, row, strict=True)
                if value != ""
            }

        def run(row: list[str], action: Callable[[dict[str, str | None]], tuple[str, bool]]) -> RowResult:
            given_id = row[id_index] if id_index is not None and id_index < len(row) else ""
            if len(row) != width:  # own wording: the guide does not say how such rows fail
                error = RecordError(
                    "INVALID_FIELD",
                    f"Row has {len(row)} values but the header names {width} columns",
                    [],
                )
                return RowResult(row, "", error=error.bulk_error())
            try:
                record_id, created = action(fields_of(row))
            except RecordError as exc:
                return RowResult(row, given_id if job.operation != "insert" else "", error=exc.bulk_error())
            return RowResult(row, record_id, created=created)

        if job.operation == "insert":
            return lambda row: run(row, lambda f: (org.insert_user(f, actor=actor), True))
        if job.operation == "update":

            def update(fields: dict[str, str | None]) -> tuple[str, bool]:
                user_id = fields.pop("Id", None) or ""
                org.update_user(user_id, fields, actor=actor)
                return to_id18(user_id) or user_id, False

            return lambda row: run(row, update)
        if job.operation == "upsert":
            key = job.external_id_field or "Id"
            return lambda row: run(row, lambda f: org.upsert_user(key, f, actor=actor))

        def delete(fields: dict[str, str | None]) -> tuple[str, bool]:
            # Users cannot be deleted (User object reference): every row fails.
            org.delete_user(fields.get("Id") or "")
            return fields.get("Id") or "", False

        return lambda row: run(row, delete)


def _csv_value(value: Any) -> str | None:
    """A query value as Bulk query CSV writes it: booleans lower-case, null as nothing."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
