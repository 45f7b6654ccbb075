"""``POST /v1.0/$batch``: JSON batching (https://learn.microsoft.com/en-us/graph/json-batching).

Up to 20 requests ``{id, method, url, headers?, body?, dependsOn?}``; each runs through the
same handlers and pipeline as a plain request, so each is authenticated with the batch's
token, charged to the app's resource-unit bucket on its own and can be throttled on its
own (its own 429 inside a 200 batch response). Fault rules of the control API apply to
sub-requests too (matched on the sub-request's ``/v1.0/...`` path; ``latency_ms`` is not
applied inside a batch). A request whose dependency failed answers 424. URLs may be
relative (``/users/x``, ``users/x``), ``/v1.0/``-prefixed or absolute (msgraph-core sends
absolute ones). msgraph-core writes ``depends_on``; Graph's own spelling is ``dependsOn``;
both are read. Each sub-request is counted by its route (``batched_by_route`` of the counts).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.responses import GraphApi, GraphRequest, GraphResponse, Handler

MAX_BATCH_REQUESTS = 20
# Headers of a sub-response that belong to the envelope, not to the sub-response.
_ENVELOPE_HEADERS = {"request-id", "client-request-id", "x-ms-ags-diagnostic", "strict-transport-security"}

# (method, path) -> the handler and its path parameters; raises GraphError for unknown routes.
Resolver = Callable[[str, str], tuple[Handler, dict[str, str]]]
# (method, path) -> the route's path template, the label of the request counts.
Labeller = Callable[[str, str], str]


def _sub_path(url: str) -> tuple[str, str]:
    """``(path below the host, query string)`` of a batch item's url, always ``/v1.0/...``."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path.startswith("/"):
        path = "/" + path
    if not (path == "/v1.0" or path.startswith("/v1.0/")):
        path = "/v1.0" + path
    return path, parts.query


def _sub_body(item: dict[str, Any], headers: dict[str, str]) -> bytes:
    body = item.get("body")
    if body is None:
        return b""
    if isinstance(body, dict | list):
        return orjson.dumps(body)
    if isinstance(body, str):
        # Graph's JSON batching page: a non-JSON body is sent base64-encoded.
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode()
    return orjson.dumps(body)


class BatchHandler:
    def __init__(self, api: GraphApi, resolve: Resolver, label: Labeller | None = None) -> None:
        self.api = api
        self.resolve = resolve
        self.label = label

    def __call__(self, request: GraphRequest) -> GraphResponse:
        payload = request.json()
        invalid = errors.bad_request("Invalid batch payload format.", "BadRequest")
        if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list) or not payload["requests"]:
            raise invalid
        items = payload["requests"]
        if len(items) > MAX_BATCH_REQUESTS:
            raise errors.bad_request(
                f"Number of requests in the batch exceeds the limit of {MAX_BATCH_REQUESTS}.", "BadRequest"
            )
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "method", "url")):
                raise invalid
            if item["id"] in seen:
                raise errors.bad_request(f"Request Id {item['id']} has to be unique in a batch.", "BadRequest")
            seen.add(item["id"])
        results: dict[str, int] = {}
        responses = []
        for item in items:
            depends = item.get("dependsOn") or item.get("depends_on") or []
            if any(results.get(dep, 424) >= 400 for dep in depends):
                response = self.api.error_response(
                    self._sub_request(request, item),
                    errors.GraphError(424, "FailedDependency", "The request depends on a request that failed."),
                )
            else:
                response = self._run(request, item)
            results[item["id"]] = response.status
            responses.append(self._render(item["id"], response))
        return GraphResponse(200, {"responses": responses})

    def _sub_request(self, outer: GraphRequest, item: dict[str, Any]) -> GraphRequest:
        path, query = _sub_path(item["url"])
        headers = {"authorization": outer.headers.get("authorization", "")}
        raw_headers = item.get("headers") or {}
        if isinstance(raw_headers, dict):
            headers.update({str(k).lower(): str(v) for k, v in raw_headers.items()})
        return GraphRequest(
            method=item["method"].upper(),
            path=path,
            query_pairs=parse_qsl(query, keep_blank_values=True),
            headers=headers,
            body=_sub_body(item, headers),
            request_id=str(uuid.uuid4()),
            faults=outer.faults,
        )

    def _run(self, outer: GraphRequest, item: dict[str, Any]) -> GraphResponse:
        sub = self._sub_request(outer, item)
        if outer.counter is not None and self.label is not None:
            outer.counter.record_batched(sub.method, self.label(sub.method, sub.path))
        if outer.faults is not None:
            rule = outer.faults.pick(sub.method, sub.path)
            if rule is not None and rule.status is not None:
                return self.api.error_response(sub, errors.fault_error(rule.status, rule.retry_after))
        if sub.path.rstrip("/").lower() == "/v1.0/$batch":
            return self.api.error_response(sub, errors.bad_request("Nested batch requests are not supported."))
        try:
            handler, params = self.resolve(sub.method, sub.path)
        except errors.GraphError as error:
            return self.api.error_response(sub, error)
        sub.path_params = params
        return self.api.dispatch(sub, handler)

    @staticmethod
    def _render(item_id: str, response: GraphResponse) -> dict[str, Any]:
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _ENVELOPE_HEADERS}
        rendered: dict[str, Any] = {"id": item_id, "status": response.status}
        if response.body is not None:
            headers["Content-Type"] = response.content_type
        rendered["headers"] = headers
        if response.body is not None:
            rendered["body"] = response.body
        return rendered
