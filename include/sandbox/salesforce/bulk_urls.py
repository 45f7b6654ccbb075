"""Routes of Bulk API 2.0 (ingest and query jobs) under ``/services/data/vXX.X/jobs/``.

Every resource answers with and without a trailing slash: the guide writes both
(``.../jobs/ingest/`` in curl examples, ``.../successfulResults/`` in the URI lines) and
clients use either. ``unprocessedrecords`` is the documented spelling; simple-salesforce
asks for ``unprocessedRecords``; result names are matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from include.sandbox.salesforce.bulk_jobs import BulkJobs
from include.sandbox.salesforce.bulk_responses import Authenticate, BulkApi, LimitInfo
from include.sandbox.salesforce.models import Org

PREFIX = "/services/data/{version}/jobs"


def _routes(path: str, endpoint: Callable[..., Any], methods: list[str]) -> list[Route]:
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def build_bulk_routes(api: BulkApi) -> list[BaseRoute]:
    e = api.endpoint
    ingest, query = f"{PREFIX}/ingest", f"{PREFIX}/query"
    return [
        *_routes(ingest, e(api.create_ingest_job), ["POST"]),
        *_routes(ingest, e(api.list_ingest_jobs), ["GET"]),
        *_routes(ingest + "/{job_id}", e(api.get_ingest_job), ["GET"]),
        *_routes(ingest + "/{job_id}", e(api.patch_ingest_job), ["PATCH"]),
        *_routes(ingest + "/{job_id}", e(api.delete_ingest_job), ["DELETE"]),
        *_routes(ingest + "/{job_id}/batches", e(api.upload_job_data), ["PUT"]),
        *_routes(ingest + "/{job_id}/{result}", e(api.ingest_results), ["GET"]),
        *_routes(query, e(api.create_query_job), ["POST"]),
        *_routes(query, e(api.list_query_jobs), ["GET"]),
        *_routes(query + "/{job_id}", e(api.get_query_job), ["GET"]),
        *_routes(query + "/{job_id}", e(api.patch_query_job), ["PATCH"]),
        *_routes(query + "/{job_id}", e(api.delete_query_job), ["DELETE"]),
        *_routes(query + "/{job_id}/results", e(api.query_results), ["GET"]),
    ]


def bulk_routes(
    org: Org | Callable[[], Org],
    base_url: str,
    *,
    authenticate: Authenticate | None = None,
    limit_info: LimitInfo | None = None,
) -> list[BaseRoute]:
    """The Bulk 2.0 routes for one emulated org.

    ``org`` is the org, or a function returning the current one: the control API can
    replace the org, and jobs are dropped when it does. ``authenticate`` and
    ``limit_info`` default to the ``auth.Auth`` the Salesforce app puts in the ASGI scope
    (``salesforce.auth``), so every Bulk request is a counted, checked API request.
    """
    get_org: Callable[[], Org] = org if callable(org) else (lambda: org)
    api = BulkApi(BulkJobs(get_org), authenticate or _session_user, limit_info)
    return build_bulk_routes(api)


async def _session_user(request: Request) -> str:
    from include.sandbox.salesforce.auth import authenticate

    return authenticate(request).user_id
