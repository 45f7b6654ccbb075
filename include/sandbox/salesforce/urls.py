"""Every route of the Salesforce emulator: login, REST, Bulk 2.0 and the control extras.

Login endpoints exist twice: at the real paths and under ``/{anything}.salesforce.com/``,
where simple-salesforce's fixed ``https://{domain}.salesforce.com/...`` login URLs land
when ``domain`` is ``127.0.0.1:PORT/login`` (see ``include/sandbox/core/envfile.py``).
Resources answer with and without a trailing slash, as the real service does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute, Route

from include.sandbox.salesforce.auth import Auth, expire_sessions_route
from include.sandbox.salesforce.bulk_urls import bulk_routes
from include.sandbox.salesforce.models import Org
from include.sandbox.salesforce.responses import RestApi

DATA = "/services/data/{version}"
LOGIN_HOST = "/{login_host:path}.salesforce.com"


def _both(path: str, endpoint: Callable[..., Any], methods: list[str]) -> list[Route]:
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def rest_routes(rest: RestApi) -> list[BaseRoute]:
    e = rest.endpoint
    sobject = f"{DATA}/sobjects/{{sobject}}"
    return [
        *_both("/services/data", rest.versions, ["GET"]),
        *_both(DATA, e(rest.resources), ["GET"]),
        *_both(f"{DATA}/query", e(rest.query), ["GET"]),
        *_both(f"{DATA}/queryAll", e(rest.query_all), ["GET"]),
        *_both(f"{DATA}/query/{{cursor}}", e(rest.query_more), ["GET"]),
        *_both(f"{DATA}/queryAll/{{cursor}}", e(rest.query_more), ["GET"]),
        *_both(f"{DATA}/limits", e(rest.limits), ["GET"]),
        *_both(f"{DATA}/sobjects", e(rest.describe_global), ["GET"]),
        *_both(sobject, e(rest.sobject_info), ["GET"]),
        *_both(sobject, e(rest.create_record), ["POST"]),
        *_both(f"{sobject}/describe", e(rest.describe), ["GET"]),
        *_both(f"{sobject}/{{record_id}}", e(rest.get_record), ["GET"]),
        *_both(f"{sobject}/{{record_id}}", e(rest.update_record), ["PATCH"]),
        *_both(f"{sobject}/{{record_id}}", e(rest.delete_record), ["DELETE"]),
        *_both(f"{sobject}/{{field}}/{{value}}", e(rest.get_by_external_id), ["GET"]),
        *_both(f"{sobject}/{{field}}/{{value}}", e(rest.upsert_record), ["PATCH"]),
    ]


def login_routes(auth: Auth) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for prefix in ("", LOGIN_HOST):
        routes += _both(f"{prefix}/services/Soap/u/{{version}}", auth.soap_login, ["POST"])
        routes += _both(f"{prefix}/services/oauth2/token", auth.oauth_token, ["POST"])
    return routes


def bulk_api_routes(get_org: Callable[[], Org], auth: Auth, base_url: str) -> list[BaseRoute]:
    """Bulk 2.0 routes (``bulk_urls``)."""
    return list(bulk_routes(get_org, base_url, authenticate=auth.authenticate, limit_info=auth.limit_info))


def api_routes(get_org: Callable[[], Org], auth: Auth, rest: RestApi, base_url: str) -> list[BaseRoute]:
    return [*login_routes(auth), *bulk_api_routes(get_org, auth, base_url), *rest_routes(rest)]


def control_routes(auth: Auth) -> list[BaseRoute]:
    """Extras under ``/_sandbox/``: ``POST /_sandbox/sessions/expire``."""
    return [Route("/sessions/expire", expire_sessions_route(auth), methods=["POST"])]
