"""The Salesforce emulator: login (SOAP, OAuth), REST (query, sObjects, describe, limits)
and Bulk API 2.0 over one in-memory org, in moto's split: ``models`` (state and rules),
``responses`` (HTTP in and out), ``urls`` (routes), ``exceptions`` (error shapes).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.service import SandboxService
from include.sandbox.salesforce.auth import Auth
from include.sandbox.salesforce.models import Org
from include.sandbox.salesforce.responses import RestApi, fault_response, not_found_response
from include.sandbox.salesforce.urls import api_routes, control_routes

__all__ = ["Org", "build_service"]


class _Current:
    """The org being served; ``PUT /_sandbox/state`` swaps it for a freshly loaded one
    (routes hold ``get`` rather than the org, so they always see the current one)."""

    def __init__(self, org: Org) -> None:
        self.org = org

    def get(self) -> Org:
        return self.org


def build_service(org: dict[str, Any], *, base_url: str) -> SandboxService:
    """The Salesforce emulator for the org fixture ``org``, served at ``base_url``."""
    current = _Current(Org.load(org))
    auth = Auth(current.get, base_url)
    rest = RestApi(current.get, auth, base_url)

    def load_state(fixture: dict[str, Any]) -> None:
        current.org = Org.load(fixture)
        auth.reset()
        rest.reset()

    async def on_request(request: Request) -> Response | None:
        # Lets route code call ``auth.authenticate(request)`` with the request alone.
        request.scope["salesforce.auth"] = auth
        return None

    return SandboxService(
        name="salesforce",
        routes=api_routes(current.get, auth, rest, base_url),
        dump_state=lambda: current.get().dump(),
        load_state=load_state,
        fault_response=fault_response,
        not_found_response=not_found_response,
        control_routes=control_routes(auth),
        on_request=on_request,
    )
