"""The Provisioning page inside a real ``airflow standalone`` with the plugin loaded: Airflow's
authentication and authorization on every route (anonymous 401, a signed-in viewer reads, the
viewer may not run actions: 403) and one action end to end (provision one user on demand: a DAG
run with the ``user`` param is created as the signed-in admin, runs, and its steps are shown).

Users come from SimpleAuthManager's ``[core] simple_auth_manager_users`` ("name:role"); their
generated passwords are in ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.airflow.dag_runs_api import DAG_ID, ServerRuns, password_token, unpause
from tests.airflow.server import AirflowServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a real scheduler: module fixture + one run

ADELE = "00000000-0000-0000-0000-000000000001"
ADELE_UPN = "adele.vance@contoso.example"
PREFIX = "/provisioning"
READ_ROUTES = ("/", "/static/provisioning.js", "/api/overview", "/api/cycles", "/api/log", "/api/log.csv")


def _client(server: AirflowServer, token: str | None = None, *, cookie: bool = False) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token and not cookie else {}
    cookies = {"_token": token} if token and cookie else {}
    return httpx.Client(base_url=server.url + PREFIX, headers=headers, cookies=cookies, timeout=60)


def test_anonymous_requests_get_401_on_every_route(ui_server: AirflowServer) -> None:
    with _client(ui_server) as anonymous:
        for route in READ_ROUTES:
            assert anonymous.get(route).status_code == 401, route
        assert anonymous.post("/api/actions/reset_quarantine", json={}).status_code == 401
        assert anonymous.get("/openapi.json").status_code == 404  # no unprotected API description either


def test_a_signed_in_viewer_reads_with_the_cookie_or_a_bearer_token(ui_server: AirflowServer) -> None:
    viewer = password_token(ui_server, "viewer")
    for client in (_client(ui_server, viewer), _client(ui_server, viewer, cookie=True)):
        with client:
            page = client.get("/")
            assert page.status_code == 200 and 'id="log-table"' in page.text
            assert viewer not in page.text  # no token in the page
            # No cycle has run yet: the store does not exist, which the API says (and never creates).
            assert client.get("/api/overview").status_code == 503
    with _client(ui_server, "not-a-jwt") as forged:
        assert forged.get("/api/overview").status_code == 403


def test_a_viewer_may_not_run_actions(ui_server: AirflowServer) -> None:
    with _client(ui_server, password_token(ui_server, "viewer")) as viewer:
        for action, body in (("provision_user", {"user": ADELE_UPN}), ("restart_provisioning", {})):
            answer = viewer.post(f"/api/actions/{action}", json=body)
            assert answer.status_code == 403, answer.text
    runs = ui_server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")
    assert runs.status_code in (200, 404) and (runs.status_code == 404 or runs.json()["total_entries"] == 0)


def test_provisioning_one_user_on_demand_runs_the_dag_as_the_admin_and_shows_the_steps(
    ui_server: AirflowServer,
) -> None:
    unpause(ui_server)
    admin = password_token(ui_server, "admin")
    with _client(ui_server, admin, cookie=True) as client:
        assert client.post("/api/actions/provision_user", content=json.dumps({"user": ADELE_UPN})).status_code == 415
        started = client.post("/api/actions/provision_user", json={"user": ADELE_UPN})
        assert started.status_code == 200, started.text
        body = started.json()
        assert (body["dag_id"], body["conf"]) == (DAG_ID, {"user": ADELE_UPN})
        assert admin not in started.text
        run_id = body["dag_run_id"]
        assert ServerRuns(ui_server).run(run_id)["conf"] == {"user": ADELE_UPN}  # Airflow has the run, with the param
        assert ServerRuns(ui_server).wait(run_id) == "success", ServerRuns(ui_server).tasks(run_id)
        shown = client.get(f"/api/runs/{run_id}").json()
        assert shown["run"]["state"] == "success"
        assert shown["cycle"]["airflow_run"] == {"dag_id": DAG_ID, "run_id": run_id}
        assert shown["cycle"]["status"] == "succeeded" and shown["cycle"]["in_scope"] == 1
        (row,) = shown["log"]
        assert (row["entra_id"], row["status"]) == (ADELE, "Success")
        assert [step["name"] for step in row["steps"]] == ["import", "scope", "match", "action"]
        overview = client.get("/api/overview").json()
        assert overview["cycle"]["cycle_id"] == shown["cycle"]["cycle_id"]
        by_run = client.get("/api/cycles/by-run", params={"dag_id": DAG_ID, "run_id": run_id})
        assert by_run.status_code == 200 and by_run.json()["cycle_id"] == shown["cycle"]["cycle_id"]


def test_a_run_for_a_user_entra_does_not_have_says_why_and_where_it_stopped(ui_server: AirflowServer) -> None:
    # Found by a new user's trial: the page said only "failed" and progress 100 %; the reason was
    # in the task log alone. Now the extract records the engine's error on the run's cycle.
    unpause(ui_server)
    nobody = "nobody.here@relecloud.example"
    with _client(ui_server, password_token(ui_server, "admin")) as client:
        started = client.post("/api/actions/provision_user", json={"user": nobody})
        assert started.status_code == 200, started.text
        run_id = started.json()["dag_run_id"]
        assert ServerRuns(ui_server).wait(run_id) == "failed", ServerRuns(ui_server).tasks(run_id)
        shown = client.get(f"/api/runs/{run_id}").json()
    assert shown["run"]["failed_tasks"] == [{"task_id": "extract", "map_index": -1, "try_number": 1}]
    cycle = shown["cycle"]
    assert (cycle["status"], cycle["committed"], shown["log"]) == ("failed", False, [])
    assert (cycle["failure"]["kind"], cycle["failure"]["stage"]) == ("configuration", "extract")
    assert cycle["failure"]["message"].startswith(f"Entra ID has no user {nobody} (Graph: 404")
    assert cycle["reason"] == cycle["failure"]["message"]
    assert (cycle["progress"]["stage"], cycle["progress"]["done"], cycle["progress"]["percent"]) == ("extract", 0, 0)
