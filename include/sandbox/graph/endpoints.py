"""Starlette endpoints: the Graph adapter, the Entra endpoints and the Graph control API.

The Graph adapter turns a Starlette request into a ``GraphRequest`` and runs it through
``GraphApi.dispatch``; Entra's endpoints answer in Entra's OAuth shape; the control routes
(``docs/sandbox-fixtures.md``) answer ``{"error": "..."}`` with a clear message on bad input.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.service import json_response, read_json
from include.sandbox.graph import entra
from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.models import ControlError
from include.sandbox.graph.responses import GraphApi, GraphRequest, GraphResponse, Handler
from include.sandbox.graph.state import GraphState


def to_starlette(response: GraphResponse) -> Response:
    return Response(
        response.encoded() if response.status != 204 else b"",
        status_code=response.status,
        headers=response.headers,
        media_type=response.content_type if response.body is not None else None,
    )


async def graph_request(request: Request) -> GraphRequest:
    return GraphRequest(
        method=request.method,
        path=request.scope["path"],
        query_pairs=request.query_params.multi_items(),
        headers=dict(request.headers),
        body=await request.body(),
        path_params={k: str(v) for k, v in request.path_params.items()},
        faults=getattr(request.app.state, "faults", None),
        counter=getattr(request.app.state, "counter", None),
    )


def graph_endpoint(api: GraphApi, handler: Handler, *, charge: bool = True):
    async def endpoint(request: Request) -> Response:
        return to_starlette(api.dispatch(await graph_request(request), handler, charge=charge))

    return endpoint


# --- Entra ----------------------------------------------------------------------------------


def _entra_error(err: errors.EntraError, request: Request, base_url: str) -> Response:
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    body = errors.entra_error_body(err, trace_id, correlation_id, base_url)
    headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "x-ms-request-id": trace_id}
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm=""'
    return Response(orjson.dumps(body), err.status, headers, media_type="application/json; charset=utf-8")


def entra_endpoints(state: GraphState) -> dict[str, Any]:
    base_url = state.base_url

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            body = entra.issue_token(state.tenant, state.tokens, request.path_params["tenant"], form, base_url)
        except errors.EntraError as err:
            return _entra_error(err, request, base_url)
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "x-ms-request-id": str(uuid.uuid4())}
        if request.headers.get("client-request-id"):
            headers["client-request-id"] = request.headers["client-request-id"]
        return Response(orjson.dumps(body), 200, headers, media_type="application/json; charset=utf-8")

    async def openid_configuration(request: Request) -> Response:
        try:
            body = entra.openid_configuration(state.tenant, request.path_params["tenant"], base_url)
        except errors.EntraError as err:
            return _entra_error(err, request, base_url)
        return json_response(body)

    async def instance_discovery(request: Request) -> Response:
        return json_response(entra.instance_discovery(request.query_params.get("authorization_endpoint"), base_url))

    async def keys(request: Request) -> Response:
        return json_response({"keys": []})

    return {
        "token": token,
        "openid_configuration": openid_configuration,
        "instance_discovery": instance_discovery,
        "keys": keys,
    }


# --- control API ----------------------------------------------------------------------------


def _control(action):
    """Run a tenant change; a ``ControlError`` becomes ``{"error": ...}`` with its status."""

    async def endpoint(request: Request) -> Response:
        try:
            return await action(request)
        except ControlError as exc:
            return json_response({"error": exc.message}, exc.status)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    return endpoint


def control_endpoints(state: GraphState) -> dict[str, Any]:
    async def add_user(request: Request) -> Response:
        return json_response(state.tenant.add_user(await read_json(request)), 201)

    async def patch_user(request: Request) -> Response:
        return json_response(state.tenant.patch_user(request.path_params["user_id"], await read_json(request)))

    async def delete_user(request: Request) -> Response:
        permanent = request.query_params.get("permanent", "false").lower() in ("true", "1", "yes")
        state.tenant.delete_user(request.path_params["user_id"], permanent)
        return Response(status_code=204)

    async def restore_user(request: Request) -> Response:
        return json_response(state.tenant.restore_user(request.path_params["user_id"]))

    async def add_assignment(request: Request) -> Response:
        return json_response(state.tenant.add_assignment(await read_json(request)), 201)

    async def delete_assignment(request: Request) -> Response:
        state.tenant.delete_assignment(request.path_params["assignment_id"])
        return Response(status_code=204)

    async def add_member(request: Request) -> Response:
        state.tenant.add_member(request.path_params["group_id"], await read_json(request))
        return Response(status_code=204)

    async def remove_member(request: Request) -> Response:
        state.tenant.remove_member(request.path_params["group_id"], request.path_params["member_id"])
        return Response(status_code=204)

    async def expire_tokens(request: Request) -> Response:
        return json_response({"expired": state.tokens.expire_all()})

    async def revoke_tokens(request: Request) -> Response:
        return json_response({"revoked": state.tokens.revoke_all()})

    async def expire_delta(request: Request) -> Response:
        state.delta.epoch += 1
        return json_response({"expired": True, "epoch": state.delta.epoch})

    actions = {
        "add_user": add_user,
        "patch_user": patch_user,
        "delete_user": delete_user,
        "restore_user": restore_user,
        "add_assignment": add_assignment,
        "delete_assignment": delete_assignment,
        "add_member": add_member,
        "remove_member": remove_member,
        "expire_tokens": expire_tokens,
        "revoke_tokens": revoke_tokens,
        "expire_delta": expire_delta,
    }
    return {name: _control(action) for name, action in actions.items()}
