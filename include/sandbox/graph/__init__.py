"""The Microsoft Graph emulator, with the Entra ID token endpoint.

``build_service(tenant, base_url=...)`` returns the ``SandboxService`` that
``python -m include.sandbox up`` serves. The package follows moto's split: ``models`` (the
tenant and Graph's rules), ``responses`` (HTTP in and out of the Graph handlers), ``urls``
(routes), ``exceptions`` (Graph's and Entra's error shapes), plus ``odata`` (query options
and tokens), ``delta`` (users/delta), ``batch`` ($batch), ``throttling`` (resource-unit
buckets), ``tokens`` and ``entra`` (the token endpoint).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.faults import FaultRule
from include.sandbox.core.service import SandboxService
from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.endpoints import control_endpoints, entra_endpoints, to_starlette
from include.sandbox.graph.responses import GraphApi, GraphRequest
from include.sandbox.graph.state import GraphState
from include.sandbox.graph.urls import GraphRouter, control_routes, entra_routes


def build_service(tenant: dict[str, Any], *, base_url: str) -> SandboxService:
    """Load and validate the tenant fixture (``ValueError`` with a clear message if it is bad)."""
    state = GraphState(tenant, base_url)
    api = GraphApi(state)
    router = GraphRouter(api)

    def fault_response(rule: FaultRule, request: Request) -> Response:
        graph_req = GraphRequest(
            method=request.method,
            path=request.scope["path"],
            query_pairs=request.query_params.multi_items(),
            headers=dict(request.headers),
        )
        error = errors.fault_error(rule.status or 500, rule.retry_after)
        return to_starlette(api.error_response(graph_req, error))

    return SandboxService(
        name="graph",
        routes=[*router.starlette_routes(), *entra_routes(entra_endpoints(state))],
        dump_state=state.dump,
        load_state=state.load,
        fault_response=fault_response,
        not_found_response=router.not_found_response,
        control_routes=control_routes(control_endpoints(state)),
    )


__all__ = ["build_service"]
