"""The page's actions: each one is a run of the provisioning DAG with params, created through
Airflow's own REST API as the signed-in user (``POST /api/v2/dags/{dag_id}/dagRuns``), so
Airflow's authorization decides (a user who may not trigger the DAG gets its 403) and the cycle
runs on a worker like any other run, never inside the API server.

The user's token is the one the request came with (``Authorization: Bearer`` or the UI's ``_token``
cookie); it goes to Airflow and nowhere else, and no answer repeats it. Airflow is reached at
``[api] base_url`` (the address tasks use too), or at the address the request came to when that is
not set.

Params are the DAG's (``entra_provisioning.dag_factory.PARAMS``): ``user`` (a userPrincipalName:
provision on demand), ``approve_deactivations``, ``reset_quarantine``, ``restart_provisioning``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import HTTPException, Request

from entra_provisioning.dag_factory import PARAMS, UPN_PATTERN

PROVISIONING_DAG_ID = "entra_salesforce_provisioning"
"""The DAG the actions run (``dags/entra_salesforce_provisioning.py``)."""
TOKEN_COOKIE = "_token"
"""The cookie the Airflow UI keeps the user's JWT in (``COOKIE_NAME_JWT_TOKEN``)."""
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Action:
    """One action: its name in the API, the param it sets and what the page says it does."""

    name: str
    param: str
    description: str


ACTIONS = {
    action.name: action
    for action in (
        Action("provision_user", "user", "Provision one user now (Entra's 'Provision on demand')"),
        Action("approve_deactivations", "approve_deactivations", "Run a cycle that applies held-back deactivations"),
        Action("reset_quarantine", "reset_quarantine", "Lift the job's quarantine and run a cycle"),
        Action("restart_provisioning", "restart_provisioning", "Restart provisioning: full cycle, escrow cleared"),
    )
}
assert all(action.param in PARAMS for action in ACTIONS.values()), "an action sets a param the DAG does not have"


def run_conf(name: str, user: str | None) -> dict[str, Any]:
    """The DAG run's ``conf`` for action ``name``. Raises ``HTTPException`` 404 for an unknown
    action and 422 for ``provision_user`` without a userPrincipalName (the DAG's ``user`` param
    pattern, ``UPN_PATTERN``, would refuse it too)."""
    action = ACTIONS.get(name)
    if action is None:
        raise HTTPException(404, f"no action {name!r}; actions are {', '.join(ACTIONS)}")
    if action.param != "user":
        return {action.param: True}
    upn = (user or "").strip()
    if not upn or not re.match(UPN_PATTERN, upn):
        raise HTTPException(422, "provision_user needs 'user': the userPrincipalName to provision (a.b@contoso.com)")
    return {"user": upn}


def user_token(request: Request) -> str:
    """The JWT the request was authenticated with (header first, as Airflow's ``get_user``)."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        return cookie
    raise HTTPException(401, "Not authenticated")


def airflow_base_url(request: Request) -> str:
    """Where Airflow's REST API is: ``[api] base_url`` or the request's own origin, ending in ``/``."""
    from airflow.configuration import conf

    configured = conf.get("api", "base_url", fallback="") or ""
    base = configured or f"{request.url.scheme}://{request.url.netloc}/"
    return base if base.endswith("/") else base + "/"


async def call_airflow(request: Request, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """``method`` on Airflow's REST API ``path`` (relative, e.g. ``api/v2/...``) as the user."""
    headers = {"Authorization": f"Bearer {user_token(request)}"}
    async with httpx.AsyncClient(base_url=airflow_base_url(request), timeout=TIMEOUT_SECONDS) as client:
        try:
            return await client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"Airflow's API did not answer: {type(exc).__name__}") from exc


def _relay(answer: httpx.Response, what: str) -> dict[str, Any]:
    """Airflow's JSON answer, or its refusal with Airflow's status (401, 403, 404, 409...)."""
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail")
        except ValueError:
            detail = None
        raise HTTPException(answer.status_code, f"Airflow refused to {what}: {detail or answer.reason_phrase}")
    return dict(answer.json())


async def trigger(request: Request, name: str, user: str | None) -> dict[str, Any]:
    """Create the DAG run for action ``name``: ``{"action", "dag_id", "dag_run_id", "state",
    "conf"}``. Airflow's refusal is passed on with its status (403 without the right to trigger)."""
    conf = run_conf(name, user)
    path = f"api/v2/dags/{quote(PROVISIONING_DAG_ID, safe='')}/dagRuns"
    answer = await call_airflow(request, "POST", path, json={"logical_date": None, "conf": conf})
    run = _relay(answer, f"trigger {PROVISIONING_DAG_ID}")
    return {
        "action": name,
        "dag_id": run.get("dag_id", PROVISIONING_DAG_ID),
        "dag_run_id": run["dag_run_id"],
        "state": run.get("state"),
        "conf": conf,
    }


async def run_state(request: Request, run_id: str) -> dict[str, Any]:
    """``{"dag_id", "dag_run_id", "state", "start_date", "end_date", "conf", "failed_tasks"}`` of a
    provisioning DAG run, read from Airflow as the user. ``failed_tasks`` (``[{"task_id",
    "map_index", "try_number"}]``, empty unless the run failed) names where it failed even when it
    failed before it opened a cycle (whose row would say why): Airflow's task instances with
    ``state=failed`` (``GET .../dagRuns/{run_id}/taskInstances``; empty when Airflow refuses it)."""
    path = f"api/v2/dags/{quote(PROVISIONING_DAG_ID, safe='')}/dagRuns/{quote(run_id, safe='')}"
    run = _relay(await call_airflow(request, "GET", path), f"read run {run_id}")
    found = {key: run.get(key) for key in ("dag_id", "dag_run_id", "state", "start_date", "end_date", "conf")}
    found["failed_tasks"] = []
    if found["state"] == "failed":
        answer = await call_airflow(request, "GET", f"{path}/taskInstances", params={"state": "failed"})
        # A user who may read runs but not task instances still gets the run (without this list).
        instances = (answer.json().get("task_instances") or []) if answer.status_code == 200 else []
        found["failed_tasks"] = [
            {key: ti.get(key) for key in ("task_id", "map_index", "try_number")}
            for ti in sorted(instances, key=lambda ti: ti.get("start_date") or "")
        ]
    return found
