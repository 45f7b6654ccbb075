"""HTTP in and out for Bulk API 2.0: bodies, status codes, headers.

Every request is authenticated first (``INVALID_SESSION_ID`` / ``REQUEST_LIMIT_EXCEEDED``
come from there), then the API version in the path is checked: Bulk 2.0 exists from
v41.0 on, and any other version is an unknown resource (404 ``NOT_FOUND``), as on the
real service. Errors are Salesforce's JSON list ``[{"errorCode", "message"}]``; results
are ``text/csv``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.service import json_response
from include.sandbox.salesforce.bulk_jobs import (
    BulkJobs,
    Job,
    bad_request,
    decode_locator,
    encode_locator,
    not_found,
)
from include.sandbox.salesforce.exceptions import ApiError

Authenticate = Callable[[Request], Awaitable[str]]
"""Checks the request's session (and counts it against the daily allowance); returns the
session user's Id or raises ``ApiError``."""
LimitInfo = Callable[[], str | None]
"""The ``Sforce-Limit-Info`` header value (``api-usage=N/M``), when known."""

_VERSION = re.compile(r"^v(\d+)\.(\d)$")
MIN_BULK2_VERSION = 41
RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _api_version(request: Request) -> str:
    match = _VERSION.match(request.path_params.get("version", ""))
    if match is None or int(match.group(1)) < MIN_BULK2_VERSION:
        raise not_found()
    return f"{match.group(1)}.{match.group(2)}"


async def _json_body(request: Request) -> tuple[Any, bytes]:
    raw = await request.body()
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError as exc:
        raise bad_request("JSON_PARSER_ERROR", f"Unexpected character in the request body: {exc}") from None


class BulkApi:
    """The Bulk 2.0 endpoints; one instance per emulated org."""

    def __init__(self, jobs: BulkJobs, authenticate: Authenticate, limit_info: LimitInfo | None = None) -> None:
        self.jobs = jobs
        self.authenticate = authenticate
        self.limit_info = limit_info

    async def _guard(self, request: Request, handler: Callable[[Request, str, str], Awaitable[Response]]) -> Response:
        try:
            user_id = await self.authenticate(request)
            version = _api_version(request)
            response = await handler(request, user_id, version)
        except ApiError as exc:
            return json_response(exc.body(), exc.status, exc.headers)
        limit = self.limit_info() if self.limit_info is not None else _scope_limit_info(request)
        if limit:
            response.headers["Sforce-Limit-Info"] = limit
        return response

    def endpoint(self, handler: Callable[[Request, str, str], Awaitable[Response]]) -> Callable[..., Any]:
        async def run(request: Request) -> Response:
            return await self._guard(request, handler)

        run.__name__ = handler.__name__
        return run

    # --- ingest ------------------------------------------------------------------------

    async def create_ingest_job(self, request: Request, user_id: str, version: str) -> Response:
        body, raw = await _json_body(request)
        job = self.jobs.create_ingest(body, raw, version, user_id)
        return _json(job.base_info())

    async def upload_job_data(self, request: Request, user_id: str, version: str) -> Response:
        job = self.jobs.get(request.path_params["job_id"], "ingest")
        data = await request.body()
        self.jobs.upload(job, data)
        return Response(status_code=201)

    async def get_ingest_job(self, request: Request, user_id: str, version: str) -> Response:
        return _json(self.jobs.get(request.path_params["job_id"], "ingest").full_info())

    async def patch_ingest_job(self, request: Request, user_id: str, version: str) -> Response:
        return await self._patch(request, "ingest")

    async def delete_ingest_job(self, request: Request, user_id: str, version: str) -> Response:
        self.jobs.delete(self.jobs.get(request.path_params["job_id"], "ingest"))
        return Response(status_code=204)

    async def list_ingest_jobs(self, request: Request, user_id: str, version: str) -> Response:
        return self._list(request, "ingest", version)

    async def ingest_results(self, request: Request, user_id: str, version: str) -> Response:
        kind = RESULT_KINDS.get(request.path_params["result"].lower())
        if kind is None:
            raise not_found()
        job = self.jobs.get(request.path_params["job_id"], "ingest")
        self.jobs.require_terminal(job)
        render = {"successful": job.successful_csv, "failed": job.failed_csv, "unprocessed": job.unprocessed_csv}[kind]
        text = await asyncio.to_thread(render)
        return Response(text.encode("utf-8"), media_type="text/csv")

    # --- query -------------------------------------------------------------------------

    async def create_query_job(self, request: Request, user_id: str, version: str) -> Response:
        body, raw = await _json_body(request)
        job = await asyncio.to_thread(self.jobs.create_query, body, raw, version, user_id)
        return _json(job.base_info())

    async def get_query_job(self, request: Request, user_id: str, version: str) -> Response:
        return _json(self.jobs.get(request.path_params["job_id"], "query").full_info())

    async def patch_query_job(self, request: Request, user_id: str, version: str) -> Response:
        return await self._patch(request, "query")

    async def delete_query_job(self, request: Request, user_id: str, version: str) -> Response:
        self.jobs.delete(self.jobs.get(request.path_params["job_id"], "query"))
        return Response(status_code=204)

    async def list_query_jobs(self, request: Request, user_id: str, version: str) -> Response:
        return self._list(request, "query", version)

    async def query_results(self, request: Request, user_id: str, version: str) -> Response:
        """``Get Results for a Query Job``: a page of CSV, ``Sforce-Locator`` names the
        next page (the literal ``null`` after the last), ``Sforce-NumberOfRecords`` counts
        the rows of this page."""
        job = self.jobs.get(request.path_params["job_id"], "query")
        self.jobs.require_terminal(job)
        locator = request.query_params.get("locator") or None
        if locator == "null":
            locator = None
        max_records = _positive_int(request.query_params.get("maxRecords"))
        text, next_locator, count = await asyncio.to_thread(job.results_page, locator, max_records)
        headers = {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(count)}
        return Response(text.encode("utf-8"), media_type="text/csv", headers=headers)

    # --- shared ------------------------------------------------------------------------

    async def _patch(self, request: Request, kind: str) -> Response:
        job = self.jobs.get(request.path_params["job_id"], kind)
        body, _ = await _json_body(request)
        state = body.get("state") if isinstance(body, dict) else None
        updated: Job = self.jobs.set_state(job, state)
        return _json(updated.base_info())

    def _list(self, request: Request, kind: str, version: str) -> Response:
        """``Get All Jobs``: ``done``, ``records`` and ``nextRecordsUrl`` (1,000 a page)."""
        params = request.query_params
        locator = params.get("queryLocator")
        start = decode_locator(locator) if locator else 0
        page, following = self.jobs.list_jobs(
            kind,
            job_type=params.get("jobType"),
            concurrency_mode=params.get("concurrencyMode"),
            pk_chunking=params.get("isPkChunkingEnabled"),
            start=start,
        )
        next_url = None
        if following is not None:
            next_url = f"/services/data/v{version}/jobs/{kind}?queryLocator={encode_locator(following)}"
        return _json(
            {"done": next_url is None, "records": [job.listed_info() for job in page], "nextRecordsUrl": next_url}
        )


def _scope_limit_info(request: Request) -> str | None:
    """``api-usage=N/M`` from the ``auth.Auth`` the Salesforce app puts in the scope."""
    auth = request.scope.get("salesforce.auth")
    return auth.limit_info() if auth is not None else None


def _positive_int(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise bad_request("INVALIDJOB", f"maxRecords must be a positive integer: {text}") from None
    if value <= 0:
        raise bad_request("INVALIDJOB", f"maxRecords must be a positive integer: {text}")
    return value
