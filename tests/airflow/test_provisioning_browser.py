"""The Provisioning page in headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser download) against a real ``airflow standalone``, as a user goes through it: sign in on
Airflow's login page, open the page from the nav entry (the UI renders it in an iframe), start a
cycle from the page and watch its stage and progress, then its counts; search the log, open a
row's details, export the filtered rows as CSV, provision one user on demand; a user named
``<script>alert(1)</script>`` shows as text and fires no dialog.

The tests run in file order on one signed-in page (each step needs the data the one before made).
Screenshots of the overview, the log and a detail view go to ``$PROVISIONING_SCREENSHOTS`` when set
(``PROVISIONING_SCREENSHOTS=docs/screenshots`` refreshes the README's), else to the test's tmp dir.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Dialog, FrameLocator, Page, expect, sync_playwright

from tests.airflow.dag_runs_api import DAG_ID, ServerRuns, unpause, user_password
from tests.airflow.server import AirflowServer
from tests.e2e.conftest import add_assigned_user
from tests.sandbox_process import SandboxProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # a real scheduler: two runs

CHROMIUM = "/usr/lib/chromium/chromium"  # Debian's chromium (scripts/setup.sh --tests installs it)
SCRIPT_NAME = "<script>alert(1)</script>"
SCRIPT_USER = "00000000-0000-0000-0000-0000000000f2"
SCRIPT_UPN = "script.user@contoso.example"
JOINER = "00000000-0000-0000-0000-0000000000f3"
HELD_OUT = "00000000-0000-0000-0000-0000000000f4"  # quarantined: no mail, markup for a name
HELD_OUT_UPN = "held.out@contoso.example"
IMG_NAME = "<img src=x onerror=alert(2)>"
JOINER_UPN = "on.demand@contoso.example"
# Every Salesforce call waits this long during the first cycle, so its stages last long enough
# for the page's 3-second poll to see them (the sandbox's fault rules: docs/sandbox-fixtures.md).
SLOW_SALESFORCE = [{"method": "*", "path_regex": "/services/", "latency_ms": 700}]
WAIT_MS = 300_000  # a DAG run on a shared 2-core machine


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("PROVISIONING_SCREENSHOTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dialogs() -> list[str]:
    """Every dialog the page opened (message), in order; confirmations are accepted."""
    return []


@pytest.fixture(scope="module")
def console() -> list[str]:
    """The page's console messages ("type: text") and uncaught script errors ("pageerror: ..."),
    in order. In the UI's sandboxed iframe an alert() is not a dialog but a console error
    ("Ignored call to 'alert()'"), so both are watched."""
    return []


@pytest.fixture(scope="module")
def page(ui_server: AirflowServer, dialogs: list[str], console: list[str]) -> Iterator[Page]:
    """A Chromium page signed in as ``admin`` through Airflow's login page."""

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
        opened = context.new_page()
        opened.set_default_timeout(60_000)
        opened.on("dialog", on_dialog)
        opened.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        opened.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        opened.goto(ui_server.url + "/")
        opened.locator("input[name=username]").fill("admin")
        opened.locator("input[name=password]").fill(user_password(ui_server, "admin"))
        opened.get_by_role("button", name=re.compile("sign in|log ?in", re.I)).click()
        expect(opened.get_by_role("link", name="Provisioning", exact=True)).to_be_visible()
        try:
            yield opened
        finally:
            browser.close()


@pytest.fixture(scope="module")
def frame(page: Page) -> FrameLocator:
    """The Provisioning page, opened from the nav entry: the UI shows it in an iframe."""
    page.get_by_role("link", name="Provisioning", exact=True).click()
    expect(page).to_have_url(re.compile(r"/plugin/provisioning$"))
    inner = page.frame_locator("iframe")
    expect(inner.get_by_role("heading", name="Provisioning log")).to_be_visible()
    return inner


def _shoot(page: Page, frame: FrameLocator, screenshots: Path, name: str, element_id: str) -> None:
    frame.locator(f"#{element_id}").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / f"{name}.png")
    assert (screenshots / f"{name}.png").stat().st_size > 10_000


def test_a_cycle_started_on_the_page_shows_its_stages_then_its_counts(
    ui_server: AirflowServer, sandbox_session: SandboxProcess, frame: FrameLocator, page: Page, screenshots: Path
) -> None:
    add_assigned_user(sandbox_session, SCRIPT_USER, SCRIPT_UPN)
    patch = {"givenName": SCRIPT_NAME, "displayName": SCRIPT_NAME, "jobTitle": SCRIPT_NAME}
    sandbox_session.graph.patch(f"/_sandbox/users/{SCRIPT_USER}", json=patch).raise_for_status()
    add_assigned_user(sandbox_session, HELD_OUT, HELD_OUT_UPN)
    held_out = {"displayName": IMG_NAME, "mail": None}
    sandbox_session.graph.patch(f"/_sandbox/users/{HELD_OUT}", json=held_out).raise_for_status()
    sandbox_session.salesforce.put("/_sandbox/faults", json=SLOW_SALESFORCE).raise_for_status()
    unpause(ui_server)
    try:
        frame.locator("#action-restart_provisioning").click()
        confirmation = frame.get_by_test_id("action-confirm")
        expect(confirmation).to_contain_text("Restart provisioning: full cycle, escrow cleared?")
        frame.locator("#action-confirm-run").click()
        expect(confirmation).to_be_hidden()
        result = frame.get_by_test_id("action-result")
        expect(result).to_contain_text(re.compile(r"run \S+ (queued|running)"), timeout=30_000)
        run_id = str(result.get_attribute("data-run-id"))
        stages_seen: set[str] = set()
        stage = frame.get_by_test_id("cycle-stage")
        progress = frame.get_by_test_id("cycle-progress")
        # Watch the overview while the cycle runs: the stage it is in and the progress bar move.
        expect(frame.get_by_test_id("cycle-status")).to_have_text("running", timeout=WAIT_MS)
        while frame.get_by_test_id("cycle-status").text_content() == "running":
            text = stage.text_content() or ""
            if "stages done" in text:
                stages_seen.add(f"{text} @ {progress.get_attribute('value')}")
            page.wait_for_timeout(500)
        assert len(stages_seen) >= 2, stages_seen  # at least two stages, each with its progress
        expect(result).to_have_attribute("data-state", "success", timeout=WAIT_MS)
    finally:
        sandbox_session.salesforce.delete("/_sandbox/faults").raise_for_status()
    assert ServerRuns(ui_server).run(run_id)["conf"] == {"restart_provisioning": True}
    expect(frame.get_by_test_id("cycle-status")).to_have_text("succeeded")
    expect(progress).to_have_attribute("value", "100")
    counts = {
        name: int(frame.get_by_test_id(f"count-{name}").text_content() or "")
        for name in ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
    }
    in_scope = int(frame.get_by_test_id("count-in_scope").text_content() or "")
    assert counts["created"] >= 1 and in_scope >= counts["created"], counts
    # The quarantined user is listed "Display name (UPN)", the markup in the name shown as text.
    assert counts["quarantined"] == 1, counts
    expect(frame.get_by_test_id("quarantined-list")).to_contain_text(f"{IMG_NAME} ({HELD_OUT_UPN}): mail")
    assert frame.locator("#quarantined-list img").count() == 0
    expect(frame.get_by_test_id("cycle-run-link")).to_have_text(run_id)
    run_page = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"  # the UI's route, the id URL-encoded
    expect(frame.get_by_test_id("cycle-run-link")).to_have_attribute("href", run_page)
    page.wait_for_timeout(1000)  # the charts draw on the refresh after the cycle
    _shoot(page, frame, screenshots, "overview", "overview")


def test_the_log_is_searched_and_a_row_opens_its_details(
    frame: FrameLocator, page: Page, screenshots: Path, dialogs: list[str], console: list[str]
) -> None:
    frame.locator("#log-search").fill("<SCRIPT>alert")  # the start of the display name, in another case
    frame.locator("#log-apply").click()
    rows = frame.get_by_test_id("log-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(SCRIPT_UPN)
    expect(rows.first).to_contain_text(SCRIPT_NAME)  # the name as text in its cell
    assert frame.locator("#log-rows script").count() == 0
    rows.first.click()
    detail = frame.get_by_test_id("log-detail")
    expect(detail).to_be_visible()
    expect(frame.locator("#detail-steps li")).to_have_count(4)
    assert frame.locator("#detail-steps li").evaluate_all("items => items.map(item => item.dataset.step)") == [
        "import",
        "scope",
        "match",
        "action",
    ]
    # The directory value is shown as text (JSON-quoted, as every old/new value), never run.
    changes = frame.get_by_test_id("detail-changes")
    expect(changes).to_contain_text(f'"{SCRIPT_NAME}"')
    assert frame.locator("#detail-changes script").count() == 0
    assert dialogs == []
    assert [line for line in console if "alert" in line or line.startswith("pageerror")] == []
    _shoot(page, frame, screenshots, "detail", "log-detail")

    frame.locator("#log-search").fill("")
    frame.locator("#log-apply").click()
    expect(detail).to_be_hidden()  # a new search closes the row it may no longer list
    expect(rows.filter(has_text="Failure")).not_to_have_count(0)  # the sandbox's duplicate username
    _shoot(page, frame, screenshots, "log", "log")
    shown = rows.count()
    frame.locator("#log-status").select_option("Success")
    frame.locator("#log-apply").click()
    expect(rows.filter(has_text="Failure")).to_have_count(0)
    assert 2 <= rows.count() < shown


def test_the_filtered_log_exports_as_csv(frame: FrameLocator, page: Page, tmp_path: Path) -> None:
    frame.locator("#log-search").fill("script.user")
    frame.locator("#log-status").select_option("Success")
    frame.locator("#log-apply").click()
    expect(frame.get_by_test_id("log-row")).to_have_count(1)
    with page.expect_download() as download_info:
        frame.get_by_test_id("log-export").click()
    download = download_info.value
    assert download.suggested_filename == "provisioning-log.csv"
    saved = tmp_path / "export.csv"
    download.save_as(saved)
    (row,) = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert (row["entra_id"], row["user_principal_name"], row["status"]) == (SCRIPT_USER, SCRIPT_UPN, "Success")
    assert row["Display name"] == SCRIPT_NAME


def test_one_user_is_provisioned_on_demand_and_its_steps_are_shown(
    ui_server: AirflowServer, sandbox_session: SandboxProcess, frame: FrameLocator
) -> None:
    add_assigned_user(sandbox_session, JOINER, JOINER_UPN)  # a joiner since the last cycle: a create
    frame.locator("#provision-upn").fill(JOINER_UPN)
    frame.locator("#provision-submit").click()
    result = frame.get_by_test_id("action-result")
    expect(result).to_contain_text(re.compile(r"provision_user: run \S+ (queued|running)"), timeout=30_000)
    run_id = str(result.get_attribute("data-run-id"))
    assert ServerRuns(ui_server).run(run_id)["conf"] == {"user": JOINER_UPN}
    expect(result).to_have_attribute("data-state", "success", timeout=WAIT_MS)
    expect(result).to_contain_text(f"provision_user: run {run_id} success (cycle ")
    steps = frame.get_by_test_id("action-steps")
    expect(steps.get_by_test_id("action-log-row")).to_have_count(1)
    expect(steps).to_contain_text(f"Create On Demand ({JOINER_UPN}): Success")  # "Display name (UPN)"
    expect(steps).to_contain_text(f"Read user On Demand ({JOINER_UPN}), object id {JOINER}, from Entra ID")
    assert steps.locator("li li").evaluate_all("items => items.map(item => item.dataset.step)") == [
        "import",
        "scope",
        "match",
        "action",
    ]


def test_a_script_in_a_directory_value_stays_text_on_the_page_opened_alone(
    ui_server: AirflowServer, page: Page, dialogs: list[str], console: list[str]
) -> None:
    """Outside the UI's sandboxed iframe an alert() would open a dialog: the page, opened on its own
    with the same session, shows the value as text and opens none."""
    alone = page.context.new_page()
    alone.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    alone.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    try:
        alone.goto(f"{ui_server.url}/provisioning/")
        alone.locator("#log-search").fill("script.user")
        alone.locator("#log-apply").click()
        expect(alone.get_by_test_id("log-row")).to_have_count(1)
        alone.get_by_test_id("log-row").first.click()
        expect(alone.get_by_test_id("detail-changes")).to_contain_text(f'"{SCRIPT_NAME}"')
        alone.wait_for_timeout(1000)  # time for a script, were one to run
    finally:
        alone.close()
    assert dialogs == []
    assert [line for line in console if line.startswith("pageerror")] == []
