"""The Provisioning page's FastAPI app (mounted by Airflow's api-server at ``URL_PREFIX``).

Thin: each route checks access, asks ``queries``/``log_query``/``actions`` and shapes the answer.
Airflow does not protect plugin apps, so every route declares Airflow's own access dependencies
(``airflow.api_fastapi.core_api.security``): reading needs the Plugins view
(``requires_access_view(AccessView.PLUGINS)``, anonymous → 401) and reading the provisioning DAG's
runs; an action needs the right to create a run of the DAG (``requires_access_dag("POST",
DagAccessEntity.RUN)``, else 403), and Airflow checks again when the run is created as the user.
Static files are served by a route too (a mount would bypass the dependencies).

Routes (JSON unless said; documented in README "Provisioning page"):
``GET /`` the page; ``GET /static/{name}``; ``GET /api/overview``; ``GET /api/cycles``;
``GET /api/cycles/by-run``; ``GET /api/log``; ``GET /api/log/{id}``; ``GET /api/log.csv``;
``POST /api/actions/{name}``; ``GET /api/runs/{run_id}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag, requires_access_view
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader
from pydantic import BaseModel

from entra_provisioning.ui import actions, csv_export, log_query, steps
from entra_provisioning.ui.queries import StateNotReadyError, StateReader

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}

# Declared once, so tests of the JSON API can stand in for Airflow's auth manager
# (``app.dependency_overrides``); against a real api-server these are Airflow's own checks.
can_view_plugins = requires_access_view(AccessView.PLUGINS)
can_read_runs = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=actions.PROVISIONING_DAG_ID)
can_trigger_runs = requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=actions.PROVISIONING_DAG_ID)
READ = [Depends(can_view_plugins), Depends(can_read_runs)]

_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
_readers: dict[str, StateReader] = {}


def state_url() -> str:
    """The state store's URL, from the ``provisioning_state`` connection (as the DAG's tasks)."""
    from entra_provisioning.hooks.state import ProvisioningStateHook

    return ProvisioningStateHook().get_url()


def state_reader() -> StateReader:
    """A reader of the configured store (one per URL, kept for the process)."""
    url = state_url()
    if url not in _readers:
        _readers[url] = StateReader(url)
    return _readers[url]


Reader = Annotated[StateReader, Depends(state_reader)]


def _read(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except StateNotReadyError as exc:
        raise HTTPException(503, str(exc)) from exc


def _log_filter(
    *,
    q: Annotated[str | None, Query(description="Entra object id, Salesforce user id or the start of a UPN")] = None,
    cycle_id: str | None = None,
    action: str | None = None,
    status: str | None = None,
    error_code: str | None = None,
    since: Annotated[dt.datetime | None, Query(description="ISO 8601; rows at or after it")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO 8601; rows before it")] = None,
) -> log_query.LogFilter:
    try:
        return log_query.LogFilter(q, cycle_id, action or None, status or None, error_code or None, since, until)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


Filter = Annotated[log_query.LogFilter, Depends(_log_filter)]

app = FastAPI(
    title="Provisioning",
    description="Entra ID → Salesforce provisioning: cycles, the provisioning log and actions.",
    dependencies=[Depends(can_view_plugins)],
    # Starlette serves these without the app's dependencies; the README documents the API instead.
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
)


@app.get("/", response_class=HTMLResponse, dependencies=READ)
def page(request: Request) -> HTMLResponse:
    """The page: static structure; ``static/provisioning.js`` fills it from the JSON API."""
    root = request.scope.get("root_path", "").rstrip("/")
    html = _templates.get_template("provisioning.html").render(
        root=root, actions=actions.ACTIONS, dag_id=actions.PROVISIONING_DAG_ID
    )
    return HTMLResponse(html)


@app.get("/static/{name}", dependencies=READ)
def static(name: str) -> FileResponse:
    """One of the page's files (``static/``: its script, style sheet and Chart.js)."""
    path = STATIC / name
    if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix])


@app.get("/api/overview", dependencies=READ)
def overview(reader: Reader) -> dict[str, Any]:
    """``queries.StateReader.overview``: the current or last cycle with its progress, quarantine,
    held-back deactivations, escrow and the delta link's age."""
    return dict(_read(reader.overview))


@app.get("/api/cycles", dependencies=READ)
def cycles(reader: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 30) -> dict[str, Any]:
    """``{"cycles": [cycle...]}``, the latest ``limit``, oldest first (for the charts)."""
    return {"cycles": _read(lambda: reader.cycles(limit))}


@app.get("/api/cycles/by-run", dependencies=READ)
def cycle_of_run(reader: Reader, dag_id: str, run_id: str) -> dict[str, Any]:
    """The cycle an Airflow DAG run opened (the DAG run view links here); 404 when it opened none."""
    found = _read(lambda: reader.cycle_of_run(dag_id, run_id))
    if found is None:
        raise HTTPException(404, f"DAG run {run_id} of {dag_id} opened no provisioning cycle")
    return dict(found)


@app.get("/api/log", dependencies=READ)
def log_page(
    reader: Reader,
    log_filter: Filter,
    before: Annotated[int | None, Query(description="next_before of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=log_query.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """``{"rows": [...], "next_before": id | None}``: one page, newest first (``log_query.page``)."""

    def read() -> dict[str, Any]:
        with reader.connect() as conn:
            return log_query.page(conn, log_filter, before=before, limit=limit)

    return dict(_read(read))


@app.get("/api/log.csv", dependencies=READ)
def log_csv(reader: Reader, log_filter: Filter) -> StreamingResponse:
    """Every row the filters select, as CSV (``csv_export``), streamed."""
    _read(reader.check)  # a store this page cannot read answers 503 before the stream starts
    rows = log_query.export_rows(reader.connect, log_filter)
    headers = {"Content-Disposition": 'attachment; filename="provisioning-log.csv"'}
    return StreamingResponse(csv_export.csv_chunks(rows), media_type="text/csv; charset=utf-8", headers=headers)


@app.get("/api/log/{row_id}", dependencies=READ)
def log_row(reader: Reader, row_id: int) -> dict[str, Any]:
    """One row with ``changes`` (old → new) and ``steps`` (import, scope, match, action)."""

    def read() -> dict[str, Any] | None:
        with reader.connect() as conn:
            return log_query.one_row(conn, row_id)

    row = _read(read)
    if row is None:
        raise HTTPException(404, f"no provisioning-log row {row_id}")
    return {**row, "steps": steps.steps(row)}


class ActionBody(BaseModel):
    """An action's input: ``user`` (a userPrincipalName) for ``provision_user``."""

    user: str | None = None


def json_only(request: Request) -> None:
    """415 unless the body is JSON: a cross-site form cannot send JSON without the browser asking
    first, so the UI's cookie alone cannot trigger a run (cross-site request forgery). A dependency,
    so it answers before the body is validated."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send the action as application/json")


@app.post("/api/actions/{name}", dependencies=[*READ, Depends(can_trigger_runs), Depends(json_only)])
async def run_action(request: Request, name: str, body: ActionBody) -> dict[str, Any]:
    """Trigger the DAG run of action ``name`` (``actions.ACTIONS``) as the signed-in user."""
    return await actions.trigger(request, name, body.user)


@app.get("/api/runs/{run_id}", dependencies=READ)
async def run(request: Request, reader: Reader, run_id: str) -> dict[str, Any]:
    """A provisioning run as Airflow reports it to the user, with its cycle and, once that is
    committed, its log rows with their steps (what provisioning on demand shows when it ends):
    ``{"run": {...}, "cycle": cycle | None, "log": [row with steps...]}`` (at most 50 rows).
    ``cycle`` is None too while the store does not exist yet (the run's first cycle creates it)."""
    found = await actions.run_state(request, run_id)
    try:
        cycle = reader.cycle_of_run(actions.PROVISIONING_DAG_ID, run_id)
    except StateNotReadyError:
        # The run's first task creates the store: until then the run has no cycle yet (the page
        # keeps following it), rather than the 503 that would stop the page following the run.
        cycle = None
    log: list[dict[str, Any]] = []
    if cycle is not None and cycle["committed"]:

        def read() -> list[dict[str, Any]]:
            with reader.connect() as conn:
                rows = log_query.page(conn, log_query.LogFilter(cycle_id=cycle["cycle_id"]), limit=50, full=True)
            return [{**row, "steps": steps.steps(row)} for row in rows["rows"]]

        log = _read(read)
    return {"run": found, "cycle": cycle, "log": log}
