"""Writing users with Bulk API 2.0 ingest jobs, and accounting for every row.

A request's rows go in jobs of ``JOB_ROWS`` rows (fewer where the API forces it: at 100 MB of
CSV per job, and apart for rows whose values hold CRLF line breaks, as an LF job rejects those).
Each job is built, uploaded and closed as soon as its rows are formatted, and the request's jobs
are awaited together once all are sent: Salesforce works on the first job while the next one's
CSV is built. The lifecycle is driven here, through simple-salesforce's Bulk 2.0 client and HTTP
session, rather than with its ``insert(records=...)``: that path orders columns from a set, writes
None as "" (ignored on update), waits 5 s before its first look, and never renews an expired
session.

Bookkeeping is the point. Before the upload, ``on_job_created`` hands the caller the job id and
``{key value: entra id}`` so a crash after this moment leaves a job that ``recover`` can settle.
After the job ends, ``successfulResults``, ``failedResults`` and ``unprocessedrecords`` are read
and joined back to users by the key column the CSV carried (``Username`` for inserts, compared
case-insensitively as Salesforce compares usernames; ``Id`` for updates, compared on its
15-character case-sensitive form). Every row sent ends as exactly one ``RecordResult``: rows
Salesforce reports twice keep the first report, rows it never reports become failures saying
so, and rows refused before sending (no key, a repeated key, a value CSV cannot carry) fail
with the reason.

``INVALID_SESSION_ID`` anywhere: log in again and carry on with the same job (poll it, read its
results). If it strikes during the upload the job is still Open with nothing in it, so it is
aborted and the rows go again in a new job.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import requests
from simple_salesforce.bulk2 import LineEnding, Operation
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import call_salesforce

from include.provisioning.model import Action, RecordResult, salesforce_id_key
from include.provisioning.salesforce.client import SalesforceSession
from include.provisioning.salesforce.csv_out import (
    LF,
    MAX_JOB_BYTES,
    NEWLINES,
    NOT_SENT,
    CsvChunk,
    UnsendableValueError,
    chunk_rows,
    encode_header,
    format_column,
    format_value,
    is_null,
    line_ending_of,
    ordered_columns,
)
from include.provisioning.salesforce.jobs import (
    ABORTED,
    DEFAULT_JOB_TIMEOUT,
    FAILED,
    IN_PROGRESS,
    JOB_COMPLETE,
    OPEN,
    UPLOAD_COMPLETE,
    BulkJobError,
    abort_job,
    error_text,
    get_job,
    wait_for_job,
)
from include.provisioning.salesforce_messages import plain_message

logger = logging.getLogger(__name__)

KEY_FIELDS = {"insert": "Username", "update": "Id"}
DEFAULT_ACTIONS = {"insert": Action.CREATE, "update": Action.UPDATE}
JOB_ROWS = 20_000
"""Rows per ingest job. A multiple of the 10,000 records Salesforce processes as one internal
batch, so sending a request as several jobs adds at most one partial batch per job to the
15,000 batches a day (Bulk API 2.0 limits); small enough that the first job is working while
the rest of a 200,000-row request is formatted. docs/decisions.md, "Bulk jobs of 20,000 rows"."""
MAX_JOB_ATTEMPTS = 3
"""Jobs tried for one chunk when its upload is interrupted (expired session, outage)."""
RESULT_KINDS = ("successfulResults", "failedResults", "unprocessedrecords")

# Error codes of rows the loader refused or Salesforce did not account for (Salesforce's own
# codes, such as DUPLICATE_USERNAME, pass through unchanged).
MISSING_KEY = "MISSING_KEY"
DUPLICATE_KEY = "DUPLICATE_KEY"
UNSENDABLE_VALUE = "UNSENDABLE_VALUE"
NOT_REPORTED = "NOT_REPORTED"
UNPROCESSED = "UNPROCESSED"
JOB_NOT_FOUND = "JOB_NOT_FOUND"
UPLOAD_REFUSED = "UPLOAD_REFUSED"

JobCreated = Callable[[str, str, str, dict[str, str]], None]
"""``(job_id, operation, key_field, {key value: entra id})``, called before the upload."""
Progress = Callable[[str], None]


@dataclass
class LoadRequest:
    """Rows to write with one operation. Each row is ``{"_entra_id": ..., <User field>: value}``;
    a field left out is not sent, a None (or "") means null: ``#N/A`` on update (so the caller
    passes None only when it means "clear"), nothing on insert."""

    action: Action
    operation: Literal["insert", "update"]
    rows: list[dict[str, Any]]

    @property
    def key_field(self) -> str:
        return KEY_FIELDS[self.operation]


class PendingJobLike(Protocol):
    """What ``recover`` needs of a job a crashed run recorded (``model.PendingJob`` fits)."""

    job_id: str
    operation: str
    key_field: str
    keys: Mapping[str, str]


def normalise_key(key_field: str, value: str) -> str:
    """How Salesforce compares key values: usernames ignore case, Ids compare on 15 characters."""
    return key_normaliser(key_field)(value)


def _same(value: str) -> str:
    return value


def key_normaliser(key_field: str) -> Callable[[str], str]:
    """``normalise_key`` for one key field, chosen once for the many values of a job."""
    if key_field.lower() == "id":
        return salesforce_id_key
    if key_field.lower() == "username":
        return str.lower
    return _same


_JOB_ERROR_CODE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def parse_record_error(cell: str) -> tuple[str, str]:
    """``sf__Error`` → (code, message). The cell reads ``CODE:message:Field1,Field2 --`` (or
    ``CODE:message:--``); the message may itself hold colons, the field list never does."""
    code, sep, rest = cell.partition(":")
    if not sep:
        return (cell.strip() or "UNKNOWN_ERROR"), (cell.strip() or "Salesforce gave no error text")
    rest = rest.strip()
    if rest.endswith("--"):
        rest = rest[:-2].rstrip()
        message, sep, _fields = rest.rpartition(":")
        if not sep:
            message = rest
    else:
        message = rest
    return code.strip(), plain_message(message.strip()) or code.strip()


def job_error_code(message: str | None) -> str:
    """``InvalidBatch : Field name not found : Foo`` → ``InvalidBatch``."""
    match = _JOB_ERROR_CODE.match(message or "")
    return match.group(1) if match else "JOB_FAILED"


def _is_blank(value: Any) -> bool:
    if type(value) is str:  # the common case, without pandas' isna
        return value == ""
    return is_null(value) or (isinstance(value, str) and value == "")


def _unsendable_reason(row: Mapping[str, Any], columns: list[str], update: bool, exc: UnsendableValueError) -> str:
    """Name the column whose value could not be written (the fast path does not track it)."""
    if exc.field:
        return f"{exc.field}: {exc.reason}"
    for column in columns:
        if column in row:
            try:
                format_value(row[column], update=update)
            except UnsendableValueError as inner:
                return f"{column}: {inner.reason}"
    return exc.reason


def _handed_over(lines: list[bytes]) -> Iterator[bytes]:
    """``lines`` in order, each let go of by the list as it is taken: once in a job's upload
    its line is not kept a second time (a job's CSV is up to 100 MB)."""
    for at, line in enumerate(lines):
        lines[at] = b""
        yield line


@dataclass
class _Lines:
    """The rows of one line ending that are to be sent, in order: index in the request, key
    value, entra id and encoded CSV line of each."""

    indices: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    entra_ids: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)

    def add(self, index: int, key: str, entra_id: str, line: bytes) -> None:
        self.indices.append(index)
        self.keys.append(key)
        self.entra_ids.append(entra_id)
        self.lines.append(line)


@dataclass
class _SentJob:
    """A job uploaded and closed whose results are still to be read: its id and, in the CSV's
    row order, each row's key value, entra id and index in the request."""

    job_id: str
    chunk: CsvChunk
    indices: list[int]


@dataclass
class _Sending:
    """One request on its way: the header's columns, the keys already taken (normalised key →
    entra id, so a repeated key is refused across the whole request), the jobs sent and the
    results settled so far (by index in the request)."""

    request: LoadRequest
    columns: list[str]
    seen: dict[str, str] = field(default_factory=dict)
    sent: list[_SentJob] = field(default_factory=list)
    results: dict[int, RecordResult] = field(default_factory=dict)


class BulkLoader:
    """Runs ``LoadRequest``s as Bulk 2.0 ingest jobs and settles jobs a crashed run left."""

    def __init__(
        self,
        session: SalesforceSession,
        *,
        on_job_created: JobCreated,
        poll_initial: float = 0.05,
        poll_max: float = 2.0,
        progress: Progress | None = None,
        max_job_bytes: int = MAX_JOB_BYTES,
        job_rows: int = JOB_ROWS,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
    ) -> None:
        if job_rows < 1:
            raise ValueError(f"job_rows must be at least 1, not {job_rows}")
        self.session = session
        self.on_job_created = on_job_created
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.progress = progress
        self.max_job_bytes = max_job_bytes
        self.job_rows = job_rows
        self.job_timeout = job_timeout
        self.job_ids: list[str] = []
        """Every job this loader created, aborted replacements included (the caller may forget
        its records of them once the results are stored)."""

    # --- running a request -----------------------------------------------------------------

    def run(self, request: LoadRequest) -> list[RecordResult]:
        """Write the rows; one ``RecordResult`` per row, in the order of ``request.rows``.

        The rows are taken ``job_rows`` at a time: formatted, refused where they cannot be sent
        or joined back, and sent as a job (uploaded and closed, so Salesforce starts on it);
        once every job is sent, each is waited for and its results read, in the order sent.
        A key value is refused as a duplicate across the whole request, not only within a job.

        ``request.rows`` is emptied and its rows let go of once every job is sent, and each job's
        CSV once it is uploaded: a million users' rows would otherwise stay in memory while
        Salesforce works (the load task's peak), although nothing reads them again."""
        if request.operation not in KEY_FIELDS:
            raise ValueError(f"unsupported Bulk operation {request.operation!r} (insert or update)")
        count = len(request.rows)
        if not count:
            return []
        for index, row in enumerate(request.rows):  # before any job is sent, not halfway
            if _is_blank(row.get("_entra_id")):
                raise ValueError(f"row {index} of the {request.operation} request has no _entra_id")
        sending = _Sending(request, ordered_columns(request.rows, request.key_field))
        rows, request.rows = request.rows, []
        for offset in range(0, count, self.job_rows):
            groups = self._prepare(sending, rows[offset : offset + self.job_rows], offset)
            for line_ending, group in groups.items():
                self._send(sending, line_ending, group)
        del rows  # before the wait: nothing reads the row dicts again
        results = sending.results
        for job in sending.sent:
            results.update(zip(job.indices, self._settle(request, job), strict=True))
        missing = [i for i in range(count) if i not in results]
        if missing:  # a bug here must not drop users silently
            raise AssertionError(f"rows {missing[:10]} of the {request.operation} request got no result")
        return [results[i] for i in range(count)]

    def _send(self, sending: _Sending, line_ending: str, group: _Lines) -> None:
        """Send ``group``'s rows as jobs of at most ``max_job_bytes``; each job sent goes to
        ``sending.sent``, the rows of an upload that failed for good to ``sending.results``."""
        if not group.indices:
            return
        at = 0
        cells = zip(group.keys, group.entra_ids, _handed_over(group.lines), strict=True)
        for chunk in chunk_rows(sending.columns, cells, line_ending, self.max_job_bytes):
            indices = group.indices[at : at + len(chunk)]
            at += len(chunk)
            job = self._submit(sending.request, chunk, indices, attempt=1)
            if isinstance(job, _SentJob):
                sending.sent.append(job)
            else:
                sending.results.update(zip(indices, job, strict=True))

    def _prepare(self, sending: _Sending, rows: list[dict[str, Any]], offset: int) -> dict[str, _Lines]:
        """Format ``rows`` (the request's rows from index ``offset`` on) into CSV lines by line
        ending; refuse those that cannot be sent or joined back (into ``sending.results``).

        The values are formatted a column at a time (``format_column``), then checked and
        encoded a row at a time, in the request's order."""
        request, columns, seen, results = sending.request, sending.columns, sending.seen, sending.results
        key_field = request.key_field
        update = request.operation == "update"
        header_size = {ending: len(encode_header(columns, ending)) for ending in NEWLINES}
        groups: dict[str, _Lines] = {ending: _Lines() for ending in NEWLINES}
        unsendable: set[int] = set()
        cells: list[list[str]] = []
        for column in columns:
            formatted, bad = format_column([row.get(column, NOT_SENT) for row in rows], update=update)
            cells.append(formatted)
            unsendable.update(bad)
        normalise = key_normaliser(key_field)
        for at, (row, values) in enumerate(zip(rows, zip(*cells, strict=True), strict=True)):
            index = offset + at
            entra_id = str(row["_entra_id"])  # run checked every row has one

            sf_id = str(row["Id"]) if update and not _is_blank(row.get("Id")) else None

            def refuse(code: str, message: str, at: int = index, who: str = entra_id, sf: str | None = sf_id) -> None:
                results[at] = RecordResult(who, request.action, sf, False, code, message)

            raw_key = row.get(key_field)
            if _is_blank(raw_key):
                refuse(MISSING_KEY, f"no {key_field}: a {request.operation} row needs one to be sent and matched")
                continue
            key = str(raw_key)
            norm = normalise(key)
            if norm in seen:
                refuse(
                    DUPLICATE_KEY,
                    f"{key_field} {key!r} appears twice in this {request.operation} (also for Entra user "
                    f"{seen[norm]}); only the first was sent",
                )
                continue
            try:
                if at in unsendable:
                    raise UnsendableValueError("", "a value cannot be sent")  # the column is named below
                text = ",".join(values)
                line_ending = LF if "\n" not in text else line_ending_of(values, columns)
            except UnsendableValueError as exc:
                refuse(UNSENDABLE_VALUE, _unsendable_reason(row, columns, update, exc))
                continue
            line = (text + NEWLINES[line_ending]).encode("utf-8")
            if header_size[line_ending] + len(line) > self.max_job_bytes:
                refuse(
                    UNSENDABLE_VALUE,
                    f"the row is {len(line):,} bytes of CSV; a Bulk API 2.0 job takes at most {self.max_job_bytes:,}",
                )
                continue
            seen[norm] = entra_id
            groups[line_ending].add(index, key, entra_id, line)
        return groups

    def _submit(
        self, request: LoadRequest, chunk: CsvChunk, indices: list[int], *, attempt: int
    ) -> _SentJob | list[RecordResult]:
        """Create a job for ``chunk``, record it, upload and close it: the job sent, or (the
        upload refused, or interrupted ``MAX_JOB_ATTEMPTS`` times) a failed result per row."""
        operation, key_field = request.operation, request.key_field
        created = self.session.call(
            lambda: self.session.bulk2()._client.create_job(
                Operation(operation), line_ending=LineEnding(chunk.line_ending)
            ),
            f"create a Bulk {operation} job",
        )
        job_id = str(created["id"])
        self.job_ids.append(job_id)
        self.on_job_created(job_id, operation, key_field, chunk.key_map)
        self._say(f"Bulk {operation} job {job_id}: created for {len(chunk):,} rows ({len(chunk.data):,} bytes)")
        try:
            self._upload(job_id, chunk.data)
        except (SalesforceExpiredSession, SalesforceGeneralError, requests.RequestException) as exc:
            return self._retry_chunk(request, chunk, indices, job_id, attempt=attempt, exc=exc)
        except SalesforceError as exc:
            # Refused for good (e.g. 400): the job is Open and empty; every row fails with why.
            self._abandon(job_id)
            message = error_text(exc)
            self._say(f"Bulk {operation} job {job_id}: upload refused: {message}")
            return [
                RecordResult(entra_id, request.action, self._sf_id(key_field, key), False, UPLOAD_REFUSED, message)
                for key, entra_id in zip(chunk.keys, chunk.entra_ids, strict=True)
            ]
        chunk.data = b""  # uploaded: Salesforce has it, and it is never sent again
        self._close(job_id)
        self._say(f"Bulk {operation} job {job_id}: uploaded and closed")
        return _SentJob(job_id, chunk, indices)

    def _settle(self, request: LoadRequest, job: _SentJob) -> list[RecordResult]:
        """Wait for a sent job and read its results: one per row, in the chunk's order."""
        info = self._wait(job.job_id, request.operation, len(job.chunk))
        return self._collect(
            job.job_id,
            info,
            request.operation,
            request.key_field,
            job.chunk.key_map,
            action_of=lambda _e: request.action,
        )

    def _upload(self, job_id: str, data: bytes) -> None:
        """``PUT .../batches`` with the encoded bytes, through simple-salesforce's session and
        headers (its ``upload_job_data`` wants a str and re-encodes it)."""
        client = self.session.bulk2()._client
        url = client._construct_request_url(job_id, False) + "/batches"
        headers = client._get_headers(client.CSV_CONTENT_TYPE, client.JSON_CONTENT_TYPE)
        call_salesforce(url=url, method="PUT", session=client.session, headers=headers, data=data)

    def _retry_chunk(
        self, request: LoadRequest, chunk: CsvChunk, indices: list[int], job_id: str, *, attempt: int, exc: Exception
    ) -> _SentJob | list[RecordResult]:
        """The upload broke off: log in again if the session expired, abort the job (Open, never
        closed, so nothing in it was processed) and send the rows again in a new one; after
        ``MAX_JOB_ATTEMPTS`` jobs they stay unprocessed."""
        if isinstance(exc, SalesforceExpiredSession):
            self.session.relogin()
        # The job was never closed, so Salesforce cannot have processed anything in it.
        self._abandon(job_id)
        reason = error_text(exc)
        if attempt < MAX_JOB_ATTEMPTS:
            self._say(f"Bulk {request.operation} job {job_id}: upload interrupted ({reason}); sending again")
            return self._submit(request, chunk, indices, attempt=attempt + 1)
        message = f"not sent: the upload failed {attempt} times (last: {reason})"
        return [
            RecordResult(
                entra_id, request.action, self._sf_id(request.key_field, key), False, UNPROCESSED, message, True
            )
            for key, entra_id in zip(chunk.keys, chunk.entra_ids, strict=True)
        ]

    def _abandon(self, job_id: str) -> str | None:
        """Abort a job that is still Open; returns the state it is in afterwards (None: unknown)."""
        try:
            state = get_job(self.session, job_id, is_query=False).get("state")
            if state == OPEN:
                state = abort_job(self.session, job_id, is_query=False).get("state", ABORTED)
            return state
        except (SalesforceError, requests.RequestException) as exc:
            logger.warning("could not abort Bulk job %s: %s", job_id, exc)
            return None

    def _close(self, job_id: str) -> None:
        try:
            self.session.call(lambda: self.session.bulk2()._client.close_job(job_id), f"close job {job_id}")
        except SalesforceMalformedRequest:
            # A close that was retried after it had worked answers INVALIDJOBSTATE: fine if closed.
            if get_job(self.session, job_id, is_query=False).get("state") == OPEN:
                raise

    def _wait(self, job_id: str, operation: str, rows: int) -> dict[str, Any]:
        last: list[Any] = [None]

        def report(info: dict[str, Any]) -> None:
            seen = (info.get("state"), info.get("numberRecordsProcessed"))
            if seen != last[0]:
                last[0] = seen
                self._say(
                    f"Bulk {operation} job {job_id}: {info.get('state')}, "
                    f"{info.get('numberRecordsProcessed', 0):,}/{rows:,} processed, "
                    f"{info.get('numberRecordsFailed', 0):,} failed"
                )

        return wait_for_job(
            self.session,
            job_id,
            is_query=False,
            poll_initial=self.poll_initial,
            poll_max=self.poll_max,
            timeout=self.job_timeout,
            on_poll=report,
            rows=rows,
        )

    # --- reading results -------------------------------------------------------------------

    def _collect(
        self,
        job_id: str,
        info: dict[str, Any],
        operation: str,
        key_field: str,
        keys: Mapping[str, str],
        *,
        action_of: Callable[[str], Action],
    ) -> list[RecordResult]:
        """Join the job's three result sets back to ``keys`` (key value → entra id); one result
        per key, in the order of ``keys``."""
        state = str(info.get("state"))
        normalise = key_normaliser(key_field)
        by_norm: dict[str, tuple[str, str]] = {}
        for key, entra_id in keys.items():
            by_norm.setdefault(normalise(key), (key, entra_id))
        outcomes: dict[str, RecordResult] = {}
        duplicates = unknown = 0
        for kind in RESULT_KINDS:
            for norm, result in self._read_results(job_id, kind, key_field, by_norm, action_of):
                if norm is None:
                    unknown += 1
                elif norm in outcomes:
                    duplicates += 1
                else:
                    outcomes[norm] = result
        if duplicates or unknown:
            logger.warning(
                "Bulk job %s: %d row(s) reported more than once (first report kept), %d row(s) with a %s "
                "this job did not send",
                job_id,
                duplicates,
                unknown,
                key_field,
            )
        error_message = plain_message(info.get("errorMessage"))
        results: list[RecordResult] = []
        key_is_id = key_field.lower() == "id"  # as _sf_id has it
        for key, entra_id in keys.items():
            norm = normalise(key)
            sf_id = key if key_is_id else None
            if by_norm[norm][0] != key:  # two recorded keys Salesforce cannot tell apart
                message = f"{key_field} {key!r} is the same key as Entra user {by_norm[norm][1]}'s in job {job_id}"
                results.append(RecordResult(entra_id, action_of(entra_id), sf_id, False, DUPLICATE_KEY, message))
                continue
            result = outcomes.get(norm)
            if result is not None and result.unprocessed and state == FAILED:
                result = None  # a failed job's leftovers fail with the job's reason (below)
            if result is None:
                action = action_of(entra_id)
                if state == FAILED:
                    message = f"job {job_id} failed: {error_message or 'Salesforce gave no reason'}"
                    result = RecordResult(entra_id, action, sf_id, False, job_error_code(error_message), message)
                elif state == ABORTED:
                    message = f"not processed: job {job_id} was aborted before reaching this record"
                    result = RecordResult(entra_id, action, sf_id, False, UNPROCESSED, message, True)
                else:
                    message = f"not reported by Salesforce in the results of job {job_id} ({state})"
                    result = RecordResult(entra_id, action, sf_id, False, NOT_REPORTED, message)
            results.append(result)
        ok = sum(r.ok for r in results)
        self._say(f"Bulk {operation} job {job_id}: {state}, {ok:,} succeeded, {len(results) - ok:,} did not")
        return results

    def _read_results(
        self,
        job_id: str,
        kind: str,
        key_field: str,
        by_norm: Mapping[str, tuple[str, str]],
        action_of: Callable[[str], Action],
    ) -> Iterator[tuple[str | None, RecordResult]]:
        text = self.session.call(
            lambda: self.session.bulk2()._client.get_ingest_results(job_id, kind), f"read {kind} of job {job_id}"
        )
        if not text or text.isspace():  # (strip() would copy a 100 MB text to say so)
            return
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            return
        lowered = [name.lower() for name in header]
        try:
            key_at = next(i for i, name in enumerate(lowered) if name == key_field.lower())
        except StopIteration:
            raise BulkJobError(job_id, f"{kind} has no {key_field} column (header: {header})") from None
        id_at = lowered.index("sf__id") if "sf__id" in lowered else None
        created_at = lowered.index("sf__created") if "sf__created" in lowered else None
        error_at = lowered.index("sf__error") if "sf__error" in lowered else None
        normalise = key_normaliser(key_field)
        key_is_id = key_field.lower() == "id"  # as _sf_id has it
        succeeded, failed = kind == "successfulResults", kind == "failedResults"
        not_processed = f"not processed by Salesforce (job {job_id} ended before reaching this record)"
        for row in reader:
            width = len(row)
            if key_at >= width:  # an empty row too
                continue
            norm = normalise(row[key_at])
            target = by_norm.get(norm)
            if target is None:
                yield None, RecordResult("", Action.OTHER, None, False)
                continue
            key, entra_id = target
            action = action_of(entra_id)
            sf_id = (row[id_at] if id_at is not None and id_at < width else "") or (key if key_is_id else None)
            if succeeded:
                created = created_at is not None and created_at < width and row[created_at].lower() == "true"
                yield norm, RecordResult(entra_id, action, sf_id or None, True, None, None, False, created)
            elif failed:
                code, message = parse_record_error(row[error_at] if error_at is not None and error_at < width else "")
                yield norm, RecordResult(entra_id, action, sf_id or None, False, code, message)
            else:
                yield norm, RecordResult(entra_id, action, sf_id or None, False, UNPROCESSED, not_processed, True)

    @staticmethod
    def _sf_id(key_field: str, key: str) -> str | None:
        return key if key_field.lower() == "id" else None

    # --- settling a crashed run's job ------------------------------------------------------

    def recover(self, job: PendingJobLike, actions: Mapping[str, Action] | None = None) -> list[RecordResult]:
        """Settle a job recorded by an interrupted run, one result per recorded key.

        Open (the run died before closing it): aborted, every row unprocessed so it is sent again.
        UploadComplete/InProgress: waited for. JobComplete/Failed/Aborted: its results are read
        and joined through the recorded keys. A job Salesforce no longer has (purged after 7
        days) gives unprocessed rows: what happened to them is unknown, and the next full cycle's
        org query shows it. ``actions`` (entra id → Action) labels the results; by default the
        operation's action (Create for insert, Update for update).
        """
        default = DEFAULT_ACTIONS.get(job.operation, Action.OTHER)

        def action_of(entra_id: str) -> Action:
            return (actions or {}).get(entra_id, default)

        keys = dict(job.keys)

        def all_unprocessed(code: str, message: str) -> list[RecordResult]:
            return [
                RecordResult(e, action_of(e), self._sf_id(job.key_field, k), False, code, message, True)
                for k, e in keys.items()
            ]

        try:
            info = get_job(self.session, job.job_id, is_query=False)
        except SalesforceResourceNotFound:
            self._say(f"Bulk {job.operation} job {job.job_id}: no longer exists in Salesforce")
            return all_unprocessed(
                JOB_NOT_FOUND, f"job {job.job_id} of an interrupted run no longer exists in Salesforce; outcome unknown"
            )
        state = info.get("state")
        self._say(f"Bulk {job.operation} job {job.job_id} of an interrupted run is {state}")
        if state == OPEN:
            state = self._abandon(job.job_id)
            if state in (OPEN, ABORTED, None):
                return all_unprocessed(
                    UNPROCESSED, f"not processed: job {job.job_id} was left open by an interrupted run and aborted"
                )
        if state in (UPLOAD_COMPLETE, IN_PROGRESS):
            info = self._wait(job.job_id, job.operation, len(keys))
        elif state != info.get("state"):
            info = get_job(self.session, job.job_id, is_query=False)
        if info.get("state") not in (JOB_COMPLETE, FAILED, ABORTED):
            raise BulkJobError(job.job_id, f"unexpected state {info.get('state')!r}")
        return self._collect(job.job_id, info, job.operation, job.key_field, keys, action_of=action_of)

    def _say(self, message: str) -> None:
        # One place or the other: under Airflow the progress sink is the task log already.
        if self.progress is not None:
            self.progress(message)
        else:
            logger.info("%s", message)
