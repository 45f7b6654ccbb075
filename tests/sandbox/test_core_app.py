"""The shared control API, counting and fault injection, on a minimal stand-in service.

The stand-in is only a vehicle for the core: the real emulators are exercised through the
real clients in their own contract tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from include.sandbox.core.service import SandboxService, build_app, json_response


def _service() -> SandboxService:
    state: dict[str, Any] = {"items": [1, 2]}

    async def items(request: Request) -> Response:
        return json_response(state)

    async def item(request: Request) -> Response:
        return json_response({"id": request.path_params["item_id"]})

    def load(fixture: dict[str, Any]) -> None:
        if "items" not in fixture:
            raise KeyError("items")
        state.clear()
        state.update(fixture)

    async def throttle(request: Request) -> Response | None:
        return json_response({"throttled": True}, 429) if request.headers.get("x-throttle") else None

    return SandboxService(
        name="demo",
        routes=[Route("/api/items", items), Route("/api/items/{item_id}", item)],
        dump_state=lambda: dict(state),
        load_state=load,
        fault_response=lambda rule, request: json_response({"fault": rule.status}, rule.status or 500),
        not_found_response=lambda request: json_response({"own": "404 shape"}, 404),
        on_request=throttle,
    )


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_app(_service()))


def test_state_round_trip_and_bad_fixture(client: TestClient) -> None:
    assert client.get("/_sandbox/state").json() == {"items": [1, 2]}
    assert client.put("/_sandbox/state", json={"items": [3]}).status_code == 200
    assert client.get("/api/items").json() == {"items": [3]}
    bad = client.put("/_sandbox/state", json={"nothing": 1})
    assert bad.status_code == 400 and "invalid demo fixture" in bad.json()["error"]
    assert client.put("/_sandbox/state", content=b"{not json").status_code == 400


def test_requests_are_counted_by_route_template_and_reset(client: TestClient) -> None:
    client.get("/api/items")
    client.get("/api/items/a")
    client.get("/api/items/b")
    client.get("/nowhere")
    client.get("/_sandbox/state")  # control calls are not API requests
    counts = client.get("/_sandbox/requests").json()
    assert counts == {
        "total": 4,
        "by_route": {"GET /api/items": 1, "GET /api/items/{item_id}": 2, "GET (unmatched)": 1},
        "batched_by_route": {},  # no $batch envelope here
    }
    assert client.delete("/_sandbox/requests").status_code == 204
    assert client.get("/_sandbox/requests").json()["total"] == 0


def test_faults_answer_in_the_services_shape_and_can_be_removed(client: TestClient) -> None:
    response = client.put("/_sandbox/faults", json=[{"method": "GET", "path_regex": "^/api/items$", "status": 503}])
    assert response.status_code == 200
    assert client.get("/api/items").json() == {"fault": 503}
    assert client.get("/api/items/x").status_code == 200
    assert client.get("/_sandbox/faults").json()["rules"][0]["status"] == 503
    assert client.delete("/_sandbox/faults").status_code == 204
    assert client.get("/api/items").status_code == 200
    bad = client.put("/_sandbox/faults", json=[{"status": 42}])
    assert bad.status_code == 400 and "fault rule #0" in bad.json()["error"]


def test_unknown_routes_use_the_services_own_shape(client: TestClient) -> None:
    assert client.get("/api/unknown/deeper").json() == {"own": "404 shape"}
    assert client.get("/_sandbox/nope").status_code == 404


def test_on_request_hook_can_short_circuit(client: TestClient) -> None:
    response = client.get("/api/items", headers={"x-throttle": "1"})
    assert response.status_code == 429 and response.json() == {"throttled": True}
