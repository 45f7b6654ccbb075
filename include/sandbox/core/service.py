"""The contract between an emulated service and the sandbox host.

Each emulator package (``include/sandbox/graph``, ``include/sandbox/salesforce``) builds a
``SandboxService``: its API routes, its own extra control routes, how to dump and load its
state in the fixture format, and how it renders an injected fault or an unknown route in
its own error shape. ``build_app`` wraps that in the parts every emulator shares: the
common control API, request counting and fault injection, so the two emulators cannot
drift apart on the fixed control contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from include.sandbox.core.faults import FaultInjector, FaultRule, FaultRuleError
from include.sandbox.core.heap import settle_loaded_state
from include.sandbox.core.request_counter import RequestCounter

CONTROL_PREFIX = "/_sandbox"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (fast for 999-user pages)."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


async def read_json(request: Request) -> Any:
    """Parse a JSON body; raises ``ValueError`` with a readable reason on bad input."""
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from exc


@dataclass
class SandboxService:
    """Everything the sandbox host needs from one emulated service."""

    name: str
    routes: Sequence[BaseRoute]
    dump_state: Callable[[], dict[str, Any]]
    load_state: Callable[[dict[str, Any]], None]
    fault_response: Callable[[FaultRule, Request], Response]
    not_found_response: Callable[[Request], Response]
    control_routes: Sequence[BaseRoute] = field(default_factory=list)
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None
    on_request: Callable[[Request], Awaitable[Response | None]] | None = None
    """Optional hook run before every API request (e.g. Graph's throttling bucket);
    returning a response short-circuits the request."""


class _CountAndFault:
    """ASGI middleware: counts API requests and applies fault rules before routing."""

    def __init__(self, app: ASGIApp, service: SandboxService, faults: FaultInjector, counter: RequestCounter):
        self.app = app
        self.service = service
        self.faults = faults
        self.counter = counter
        self.api_routes = list(service.routes)

    def _route_label(self, scope: Scope) -> str:
        for route in self.api_routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", scope["path"])
        return "(unmatched)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        self.counter.record(scope["method"], self._route_label(scope))
        rule = self.faults.pick(scope["method"], scope["path"])
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.status is not None:
                response = self.service.fault_response(rule, Request(scope, receive))
                await response(scope, receive, send)
                return
        if self.service.on_request is not None:
            response = await self.service.on_request(Request(scope, receive))
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _load_and_settle(service: SandboxService, fixture: dict[str, Any]) -> None:
    """Load a fixture, then keep the new state out of the collector's way (core/heap.py)."""
    service.load_state(fixture)
    settle_loaded_state()


def _common_control_routes(service: SandboxService, faults: FaultInjector, counter: RequestCounter) -> list[Route]:
    async def get_state(request: Request) -> Response:
        return json_response(await asyncio.to_thread(service.dump_state))

    async def put_state(request: Request) -> Response:
        try:
            fixture = await read_json(request)
            if not isinstance(fixture, dict):
                raise ValueError("the state must be a JSON object in the fixture format")
            await asyncio.to_thread(_load_and_settle, service, fixture)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"invalid {service.name} fixture: {exc}"}, status=400)
        return json_response({"status": "loaded"})

    async def get_requests(request: Request) -> Response:
        return json_response(counter.snapshot())

    async def delete_requests(request: Request) -> Response:
        counter.reset()
        return Response(status_code=204)

    async def put_faults(request: Request) -> Response:
        try:
            rules = faults.replace(await read_json(request))
        except (ValueError, FaultRuleError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"rules": [rule.to_dict() for rule in rules]})

    async def get_faults(request: Request) -> Response:
        return json_response({"rules": faults.rules()})

    async def delete_faults(request: Request) -> Response:
        faults.clear()
        return Response(status_code=204)

    return [
        Route("/state", get_state, methods=["GET"]),
        Route("/state", put_state, methods=["PUT"]),
        Route("/requests", get_requests, methods=["GET"]),
        Route("/requests", delete_requests, methods=["DELETE"]),
        Route("/faults", get_faults, methods=["GET"]),
        Route("/faults", put_faults, methods=["PUT"]),
        Route("/faults", delete_faults, methods=["DELETE"]),
    ]


def build_app(service: SandboxService, *, seed: int = 0) -> Starlette:
    """Assemble the ASGI app for one emulator: API, control API, counting, faults."""
    faults = FaultInjector(seed=seed)
    counter = RequestCounter()
    control = Mount(
        CONTROL_PREFIX,
        routes=[*_common_control_routes(service, faults, counter), *service.control_routes],
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(CONTROL_PREFIX):
            return json_response({"error": f"no control route {request.method} {request.url.path}"}, 404)
        return service.not_found_response(request)

    app = Starlette(
        routes=[control, *service.routes],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=service.lifespan,
    )
    app.state.faults = faults
    app.state.counter = counter
    app.add_middleware(_CountAndFault, service=service, faults=faults, counter=counter)
    return app
