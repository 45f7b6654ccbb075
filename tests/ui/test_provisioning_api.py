"""The Provisioning page's JSON API on a state store filled by real cycles against the sandbox:
overview counts, progress of a running cycle, log search, filters and keyset paging, a row's
details, the CSV export and its formula neutralisation, and directory values kept as data."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from include.provisioning import stages
from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.model import CycleStatus, Mode, Status
from include.provisioning.workspace import MemoryWorkspace
from tests.airflow.server import free_port
from tests.e2e.conftest import add_assigned_user
from tests.sandbox_process import SandboxProcess

ADELE, ALEX, MEGAN, ZOE, NOSURNAME = (f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3, 4, 5))
ADELE_UPN = "adele.vance@contoso.example"
SCRIPT_NAME = "<script>alert(1)</script>"
SCRIPT_USER = "00000000-0000-0000-0000-0000000000f2"
FORMULA_UPN = "=hyperlink.x@contoso.example"
Cycle = Callable[..., CycleResult]
UI = Path(__file__).resolve().parents[2] / "plugins" / "entra_provisioning" / "ui"


def _initial(cycle: Cycle) -> CycleResult:
    result = cycle()
    assert result.summary.status is CycleStatus.SUCCEEDED, result.summary.reason
    return result


def _all_pages(api: TestClient, limit: int, **filters: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    before = None
    while True:
        params = {**filters, "limit": limit, **({"before": before} if before is not None else {})}
        answer = api.get("/api/log", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["rows"]) <= limit
        rows += page["rows"]
        before = page["next_before"]
        if before is None:
            return rows


def _log_ids(engine: Engine, where: str = "1 = 1") -> list[int]:
    """Row ids straight from the database, newest first: what the pages must add up to."""
    db = create_engine(engine.state.url)
    with db.connect() as conn:
        ids = [row[0] for row in conn.execute(text(f"SELECT id FROM provisioning_log WHERE {where} ORDER BY id DESC"))]
    db.dispose()
    return ids


def test_the_overview_shows_the_last_cycle_with_counts_that_add_up(api: TestClient, cycle: Cycle) -> None:
    result = _initial(cycle)
    body = api.get("/api/overview").json()
    shown, summary = body["cycle"], result.summary
    assert shown["cycle_id"] == summary.cycle_id == body["last_committed"]["cycle_id"]
    assert (shown["mode"], shown["status"], shown["stage"]) == ("full", "succeeded", "commit")
    assert shown["progress"]["percent"] == 100
    counts = {name: shown[name] for name in ("created", "updated", "unchanged", "escrowed", "deactivated")}
    assert counts == {"created": 3, "updated": 1, "unchanged": 1, "escrowed": 1, "deactivated": 0}
    outcomes = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
    assert shown["in_scope"] == sum(shown[name] for name in outcomes) == summary.in_scope == 6
    assert shown["reactivated"] == summary.reactivated == 0  # a part of "updated", outside the sum
    assert shown["duration_seconds"] > 0 and shown["airflow_run"] is None  # the CLI's cycle
    assert body["escrow"]["count"] == 1
    (escrowed,) = body["escrow"]["items"]
    assert (escrowed["entra_id"], escrowed["error_code"]) == (ALEX, "DUPLICATE_USERNAME")
    # Named as its failure's log row names it (the escrow table keeps neither value).
    assert (escrowed["display_name"], escrowed["user_principal_name"]) == ("Alex Wilber", "alex.wilber@contoso.example")
    assert escrowed["next_attempt_at"] > summary.started_at.isoformat()
    assert body["delta_link"]["present"] and body["delta_link"]["age_seconds"] >= 0
    assert "delta_link" not in str(body["delta_link"].keys() - {"present", "updated_at", "age_seconds"})
    assert body["job_quarantine"]["active"] is False
    assert (body["held_back"]["count"], body["quarantined_users"]["count"]) == (0, 0)


def test_a_running_cycle_shows_the_stage_it_reached(api: TestClient, engine: Engine) -> None:
    workspace = MemoryWorkspace()
    context, ws = stages.begin(engine, lambda _cycle_id: workspace, run_key="airflow:entra_dag:manual__1")
    stages.run_extract(engine, ws)
    running = api.get("/api/overview").json()["cycle"]
    assert (running["cycle_id"], running["status"], running["stage"]) == (context.cycle_id, "running", "extract")
    assert running["progress"]["done"] == 0 and running["progress"]["percent"] == 0
    assert running["airflow_run"] == {"dag_id": "entra_dag", "run_id": "manual__1"}
    stages.run_validate(engine, ws)
    stages.run_transform(engine, ws)
    progress = api.get("/api/overview").json()["cycle"]["progress"]
    assert (progress["stage"], progress["done"], progress["total"]) == ("transform", 2, len(stages.STAGES))
    by_run = api.get("/api/cycles/by-run", params={"dag_id": "entra_dag", "run_id": "manual__1"})
    assert by_run.status_code == 200 and by_run.json()["cycle_id"] == context.cycle_id
    assert api.get("/api/cycles/by-run", params={"dag_id": "entra_dag", "run_id": "other"}).status_code == 404


def test_paging_returns_every_row_once_newest_first_with_and_without_filters(
    api: TestClient, engine: Engine, cycle: Cycle, sandbox: SandboxProcess
) -> None:
    _initial(cycle)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"jobTitle": "Sales Director"}).raise_for_status()
    cycle()
    cycle(Mode.FULL)
    expected = _log_ids(engine)
    assert len(expected) >= 6  # several pages of 1 and of 4
    for limit in (1, 4, len(expected)):
        assert [row["id"] for row in _all_pages(api, limit)] == expected
    succeeded = _all_pages(api, 2, status="Success")
    assert [row["id"] for row in succeeded] == _log_ids(engine, "status = 'Success'")
    assert {row["status"] for row in succeeded} == {"Success"}
    cycles = api.get("/api/cycles").json()["cycles"]
    assert [c["started_at"] for c in cycles] == sorted(c["started_at"] for c in cycles)  # oldest first, for charts
    first = cycles[0]["cycle_id"]
    assert [row["id"] for row in _all_pages(api, 2, cycle_id=first)] == _log_ids(engine, f"cycle_id = '{first}'")


def test_search_by_upn_prefix_entra_id_and_salesforce_id(api: TestClient, cycle: Cycle) -> None:
    result = _initial(cycle)
    adele = [entry for entry in result.log if entry.entra_id == ADELE]
    assert adele and adele[0].sf_id
    sf_id = str(adele[0].sf_id)
    for search in ("ADELE.V", ADELE_UPN, ADELE, ADELE.upper(), sf_id, sf_id[:15]):
        rows = api.get("/api/log", params={"q": search}).json()["rows"]
        assert {row["entra_id"] for row in rows} == {ADELE}, search
    assert api.get("/api/log", params={"q": "nobody.here"}).json()["rows"] == []


def test_search_by_the_start_of_a_display_name_in_any_case(api: TestClient, cycle: Cycle) -> None:
    result = _initial(cycle)
    named = {entry.entra_id: entry.display_name for entry in result.log}
    assert named[ADELE] == "Adele Vance" and named[ZOE] == "Zoë Müller"  # Entra's displayName, logged
    # "adele v" is no start of the UPN (adele.vance@...): these rows are found by the display name.
    for search, who in (("aDeLe V", ADELE), ("ADELE VANCE", ADELE), ("zOë mü", ZOE), ("Zoë Müller", ZOE)):
        rows = api.get("/api/log", params={"q": search}).json()["rows"]
        assert rows and {row["entra_id"] for row in rows} == {who}, search
        assert {row["display_name"] for row in rows} == {named[who]}
    # A name search pages by key like any other: every row of "a" (Adele, Alex: UPNs and names), once.
    names = ("user_principal_name", "display_name")
    everything = _all_pages(api, 50)
    expected = [row["id"] for row in everything if any((row[n] or "").lower().startswith("a") for n in names)]
    assert len(expected) >= 2 and [row["id"] for row in _all_pages(api, 1, q="A")] == expected
    combined = api.get("/api/log", params={"q": "alex w", "status": "Failure"}).json()["rows"]
    assert [(row["entra_id"], row["display_name"]) for row in combined] == [(ALEX, "Alex Wilber")]
    details = api.get(f"/api/log/{combined[0]['id']}").json()
    assert details["display_name"] == "Alex Wilber"


def test_filters_by_action_status_error_code_and_time(api: TestClient, cycle: Cycle) -> None:
    result = _initial(cycle)
    failed = api.get("/api/log", params={"status": "Failure"}).json()["rows"]
    assert [(row["entra_id"], row["action"], row["error_code"]) for row in failed] == [
        (ALEX, "Create", "DUPLICATE_USERNAME")
    ]
    by_code = api.get("/api/log", params={"error_code": "DUPLICATE_USERNAME", "action": "Create"}).json()["rows"]
    assert [row["id"] for row in by_code] == [row["id"] for row in failed]
    creates = api.get("/api/log", params={"action": "Create"}).json()["rows"]
    assert len(creates) == sum(1 for entry in result.log if entry.action.value == "Create")
    at = dt.datetime.fromisoformat(failed[0]["at"])
    window = {"since": (at - dt.timedelta(seconds=1)).isoformat(), "until": (at + dt.timedelta(seconds=1)).isoformat()}
    assert len(api.get("/api/log", params=window).json()["rows"]) == len(result.log)
    later = {"since": (at + dt.timedelta(seconds=1)).isoformat()}
    assert api.get("/api/log", params=later).json()["rows"] == []
    refused = api.get("/api/log", params={"status": "Broken"})
    assert refused.status_code == 422 and "Success" in refused.text


def test_a_failed_rows_details_give_the_steps_the_changes_and_salesforces_error(api: TestClient, cycle: Cycle) -> None:
    _initial(cycle)
    (failed,) = api.get("/api/log", params={"status": "Failure"}).json()["rows"]
    details = api.get(f"/api/log/{failed['id']}").json()
    assert [step["name"] for step in details["steps"]] == ["import", "scope", "match", "action"]
    action = details["steps"][-1]
    assert action["status"] == "Failure" and "DUPLICATE_USERNAME" in action["detail"]
    assert details["error_message"] and details["error_message"] in action["detail"]
    username = next(change for change in details["changes"] if change["property"] == "Username")
    assert username == {"property": "Username", "old": None, "new": "alex.wilber@contoso.example"}
    assert api.get("/api/log/999999").status_code == 404


def test_an_updates_details_show_old_and_new_values(api: TestClient, cycle: Cycle) -> None:
    _initial(cycle)
    (megan,) = [row for row in api.get("/api/log", params={"q": MEGAN}).json()["rows"] if row["action"] == "Update"]
    details = api.get(f"/api/log/{megan['id']}").json()
    last_name = next(change for change in details["changes"] if change["property"] == "LastName")
    assert last_name["new"] == "Bowen" and last_name["old"] not in (None, "Bowen")
    match = details["steps"][2]
    assert match == {"name": "match", "status": "Success", "detail": f"Matched Salesforce user {megan['sf_id']}"}


def test_the_csv_export_streams_the_filtered_rows_with_formulas_neutralised(
    api: TestClient, engine: Engine, cycle: Cycle, sandbox: SandboxProcess
) -> None:
    add_assigned_user(sandbox, "00000000-0000-0000-0000-0000000000f1", FORMULA_UPN)
    _initial(cycle)
    answer = api.get("/api/log.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [int(row["id"]) for row in rows] == _log_ids(engine)
    formula = [row for row in rows if row["entra_id"] == "00000000-0000-0000-0000-0000000000f1"]
    assert formula and all(row["user_principal_name"] == "'" + FORMULA_UPN for row in formula)
    assert all(row["Display name"] == "'=Hyperlink X" for row in formula)  # its displayName, neutralised
    adele = [row for row in rows if row["entra_id"] == ADELE]
    assert adele and {row["Display name"] for row in adele} == {"Adele Vance"}
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    failed_csv = api.get("/api/log.csv", params={"status": "Failure"}).content.decode("utf-8-sig")
    failed = list(csv.DictReader(io.StringIO(failed_csv)))
    assert [(row["entra_id"], row["status"]) for row in failed] == [(ALEX, Status.FAILURE.value)]


def test_directory_values_are_data_never_markup(api: TestClient, cycle: Cycle, sandbox: SandboxProcess) -> None:
    add_assigned_user(sandbox, "00000000-0000-0000-0000-0000000000f2", "script.user@contoso.example")
    patch = {"givenName": SCRIPT_NAME, "displayName": SCRIPT_NAME, "jobTitle": SCRIPT_NAME}
    sandbox.graph.patch("/_sandbox/users/00000000-0000-0000-0000-0000000000f2", json=patch).raise_for_status()
    _initial(cycle)
    (row,) = api.get("/api/log", params={"q": "script.user"}).json()["rows"]
    (by_name,) = api.get("/api/log", params={"q": "<SCRIPT>alert("}).json()["rows"]  # the name, any case
    assert by_name["id"] == row["id"] and by_name["display_name"] == row["display_name"] == SCRIPT_NAME
    details = api.get(f"/api/log/{row['id']}")
    assert details.headers["content-type"] == "application/json"
    assert SCRIPT_NAME in [change["new"] for change in details.json()["changes"]]  # the value, unchanged, as JSON
    page = api.get("/")
    assert page.status_code == 200 and "<script>alert" not in page.text  # the page carries no directory value
    script = api.get("/static/provisioning.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script


def test_quarantined_users_are_listed_by_display_name_kept_as_data(
    api: TestClient, cycle: Cycle, sandbox: SandboxProcess
) -> None:
    add_assigned_user(sandbox, SCRIPT_USER, "script.user@contoso.example")
    patch = {"displayName": SCRIPT_NAME, "mail": None}  # no mail: a create is quarantined
    sandbox.graph.patch(f"/_sandbox/users/{SCRIPT_USER}", json=patch).raise_for_status()
    result = _initial(cycle)
    assert [user.entra_id for user in result.quarantined] == [SCRIPT_USER]
    answer = api.get("/api/overview")
    assert answer.headers["content-type"] == "application/json"
    listed = answer.json()["quarantined_users"]
    assert (listed["cycle_id"], listed["count"]) == (result.summary.cycle_id, 1)
    (user,) = listed["items"]
    assert user["entra_id"] == SCRIPT_USER and user["user_principal_name"] == "script.user@contoso.example"
    assert user["display_name"] == SCRIPT_NAME  # the value itself, which the page sets as text
    assert any("mail" in reason for reason in user["reasons"])
    (logged,) = api.get("/api/log", params={"q": SCRIPT_USER}).json()["rows"]
    assert (logged["action"], logged["display_name"]) == ("Quarantine", SCRIPT_NAME)
    steps = api.get(f"/api/log/{logged['id']}").json()["steps"]
    assert steps[0]["detail"] == (
        f"Read user {SCRIPT_NAME} (script.user@contoso.example), object id {SCRIPT_USER}, from Entra ID"
    )
    page = api.get("/")
    assert "<script>alert" not in page.text
    script = api.get("/static/provisioning.js").text
    # Both lists name users through userLabel, whose text goes in with textContent (never as HTML).
    assert script.count("userLabel(row)") >= 4 and "innerHTML" not in script


def test_the_page_and_its_files_are_served_under_the_prefix(api: TestClient) -> None:
    page = api.get("/")
    assert 'data-api="/provisioning/api"' in page.text and 'src="/provisioning/static/chart.umd.js"' in page.text
    chart = api.get("/static/chart.umd.js")
    assert chart.status_code == 200 and chart.text.startswith("/*!\n * Chart.js v4.6.1")
    assert api.get("/static/..%2Fapp.py").status_code == 404
    assert api.get("/static/missing.js").status_code == 404


def test_a_store_this_page_cannot_read_answers_503(api: TestClient, engine: Engine, cycle: Cycle) -> None:
    _initial(cycle)
    db = create_engine(engine.state.url)
    with db.begin() as conn:
        conn.execute(text("UPDATE state_schema SET version = 3"))
    db.dispose()
    from entra_provisioning.ui.queries import StateReader

    reader = StateReader(engine.state.url)
    from entra_provisioning.ui import app as ui

    ui.app.dependency_overrides[ui.state_reader] = lambda: reader
    answer = api.get("/api/overview")
    reader.close()
    assert answer.status_code == 503 and "schema version 3" in answer.json()["detail"]


def test_a_missing_sqlite_store_answers_503_and_is_not_created(api: TestClient, tmp_path: Path) -> None:
    from entra_provisioning.ui import app as ui
    from entra_provisioning.ui.queries import StateReader

    missing = tmp_path / "nowhere" / "provisioning.db"
    reader = StateReader(f"sqlite:///{missing}")
    ui.app.dependency_overrides[ui.state_reader] = lambda: reader
    answer = api.get("/api/log")
    assert answer.status_code == 503 and "no provisioning cycle has run" in answer.json()["detail"]
    assert not missing.parent.exists()


def test_actions_refuse_what_the_dag_would_refuse_before_asking_airflow(api: TestClient) -> None:
    assert api.post("/api/actions/delete_everything", json={}).status_code == 404
    for user in (None, "", "not an address"):
        answer = api.post("/api/actions/provision_user", json={"user": user})
        assert answer.status_code == 422 and "userPrincipalName" in answer.text
    form = api.post("/api/actions/reset_quarantine", data={"user": "x"})  # a cross-site form's body
    assert form.status_code == 415


def test_held_back_deactivations_are_listed_and_their_steps_wait_for_approval(
    api: TestClient, engine: Engine, make_engine: Callable[..., Engine], sandbox: SandboxProcess
) -> None:
    strict = make_engine(state_url=engine.state.url, AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_COUNT="1")
    try:
        run_cycle(strict)
        for assignment in ("asg-1", "asg-4"):
            sandbox.graph.delete(f"/_sandbox/appRoleAssignments/{assignment}").raise_for_status()
        result = run_cycle(strict)
    finally:
        strict.state.close()
    held = api.get("/api/overview").json()["held_back"]
    assert held["cycle_id"] == result.summary.cycle_id and held["count"] == result.summary.held_back == 2
    staged = {entry.entra_id for entry in result.log if entry.action.value == "StagedDelete"}
    assert {row["entra_id"] for row in held["items"]} == staged
    # Named as the log names them: Entra's display name beside the UPN.
    names = {row["entra_id"]: (row["display_name"], row["user_principal_name"]) for row in held["items"]}
    assert names == {
        ADELE: ("Adele Vance", ADELE_UPN),
        NOSURNAME: ("Nosurname None", "no.surname@contoso.example"),
    }
    details = api.get(f"/api/log/{held['items'][0]['id']}").json()
    assert details["steps"][-1]["status"] == "Skipped" and details["steps"][-1]["name"] == "action"


def test_a_state_store_that_does_not_answer_is_a_503_without_its_address(api: TestClient) -> None:
    from entra_provisioning.ui import app as ui
    from entra_provisioning.ui.queries import StateReader

    port = free_port()  # nothing listens there
    reader = StateReader(f"postgresql+psycopg2://provisioning:s3cret@127.0.0.1:{port}/state")
    ui.app.dependency_overrides[ui.state_reader] = lambda: reader
    answer = api.get("/api/overview")
    assert answer.status_code == 503 and "does not answer" in answer.text
    assert "s3cret" not in answer.text and str(port) not in answer.text
