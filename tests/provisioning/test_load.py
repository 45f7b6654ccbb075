"""Bulk API 2.0 loads against the sandbox through simple-salesforce: every row accounted for
with Salesforce's own error, hostile values round-tripping, #N/A clearing, expired sessions,
transient 503s, size splits, and settling jobs a crashed run left behind."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.provisioning.model import Action, PendingJob, RecordResult
from include.provisioning.salesforce.client import SalesforceSession, connect
from include.provisioning.salesforce.jobs import get_job
from include.provisioning.salesforce.load import BulkLoader, LoadRequest, parse_record_error
from include.provisioning.salesforce.org import fetch_users
from include.provisioning.salesforce.settings import settings_from_env
from include.sandbox.salesforce.validation import make_id
from tests.sandbox_process import SandboxProcess

STANDARD = "00e000000000001AAA"
CHATTER = "00e000000000003AAA"
MEGAN = "005000000000002AAA"


class SimulatedCrashError(Exception):
    """Stands in for the process dying at a chosen moment."""


class Jobs:
    """Records ``on_job_created`` calls, as the state store would."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, str, dict[str, str]]] = []

    def __call__(self, job_id: str, operation: str, key_field: str, keys: dict[str, str]) -> None:
        self.created.append((job_id, operation, key_field, dict(keys)))

    def pending(self, index: int = -1) -> PendingJob:
        job_id, operation, key_field, keys = self.created[index]
        return PendingJob(job_id, "cycle-1", operation, key_field, keys)


def session_for(sandbox: SandboxProcess) -> SalesforceSession:
    return connect(settings_from_env(sandbox.settings))


def put_org(sandbox: SandboxProcess, change: Callable[[dict[str, Any]], None]) -> None:
    fixture = copy.deepcopy(sandbox.org)
    change(fixture)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()


def new_user(entra_id: str, username: str, **fields: Any) -> dict[str, Any]:
    local = username.split("@", maxsplit=1)[0]
    row = {
        "_entra_id": entra_id,
        "Username": username,
        "Email": username,
        "LastName": local.title(),
        "Alias": local[:8],
        "ProfileId": STANDARD,
        "TimeZoneSidKey": "Europe/Berlin",
        "LocaleSidKey": "de_DE",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "de",
    }
    row.update(fields)
    return row


def org_users(session: SalesforceSession, fields: list[str]) -> dict[str, dict[str, Any]]:
    frame = fetch_users(session, fields)
    return {row["Id"]: row for row in frame.to_dict("records")}


def codes(results: list[RecordResult]) -> list[tuple[str, bool, str | None]]:
    return [(r.entra_id, r.ok, r.error_code) for r in results]


def extra_users(n: int) -> Callable[[dict[str, Any]], None]:
    """Adds ``n`` active Standard users (ids ``make_id('005', 500 + i)``) to the org."""

    def change(fixture: dict[str, Any]) -> None:
        for i in range(n):
            fixture["users"].append(
                {
                    "Id": make_id("005", 500 + i),
                    "Username": f"extra{i}@contoso.example",
                    "Email": f"extra{i}@contoso.example",
                    "FirstName": "Extra",
                    "LastName": f"User{i}",
                    "Alias": f"extra{i}",
                    "ProfileId": STANDARD,
                    "IsActive": True,
                    "TimeZoneSidKey": "America/Los_Angeles",
                    "LocaleSidKey": "en_US",
                    "EmailEncodingKey": "UTF-8",
                    "LanguageLocaleKey": "en_US",
                }
            )

    return change


# --- unit: Salesforce's error cells -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "parsed"),
    [
        (
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
            ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"),
        ),
        (
            "MISSING_ARGUMENT:Id not specified in an update call:--",
            ("MISSING_ARGUMENT", "Id not specified in an update call"),
        ),
        ("LICENSE_LIMIT_EXCEEDED:License Limit Exceeded:--", ("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")),
        (
            "STRING_TOO_LONG:Title: data value too large: a:b (max length=80):Title --",
            ("STRING_TOO_LONG", "Title: data value too large: a:b (max length=80)"),
        ),
        ("UNKNOWN_EXCEPTION", ("UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION")),
    ],
)
def test_parse_record_error(cell: str, parsed: tuple[str, str]) -> None:
    assert parse_record_error(cell) == parsed


# --- inserts and updates ----------------------------------------------------------------------


def test_insert_accounts_for_every_row_with_salesforces_error(sandbox: SandboxProcess) -> None:
    # The Salesforce licence has 3 seats and 2 are taken: one more Standard user fits.
    put_org(sandbox, lambda f: f["user_licenses"][0].update(TotalLicenses=3))
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [
        new_user("e1", "anna.new@contoso.example"),
        new_user("e2", "Megan.Bowen@contoso.example"),  # exists in this org (case differs)
        new_user("e3", "alex.wilber@contoso.example"),  # taken in another org
        new_user("e4", "ben.new@contoso.example"),  # no seat left
        new_user("e5", "cleo.new@contoso.example", ProfileId=CHATTER),  # another licence
        new_user("e6", "dan.new@contoso.example", TimeZoneSidKey="Mars/Olympus"),
        {k: v for k, v in new_user("e7", "eve.new@contoso.example").items() if k != "LastName"},
        new_user("e8", "fay.new@contoso.example", LastName="L" * 81),
    ]
    results = BulkLoader(session, on_job_created=jobs).run(LoadRequest(Action.CREATE, "insert", rows))
    assert codes(results) == [
        ("e1", True, None),
        ("e2", False, "DUPLICATE_USERNAME"),
        ("e3", False, "DUPLICATE_USERNAME"),
        ("e4", False, "LICENSE_LIMIT_EXCEEDED"),
        ("e5", True, None),
        ("e6", False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ("e7", False, "REQUIRED_FIELD_MISSING"),
        ("e8", False, "STRING_TOO_LONG"),
    ]
    assert all(r.action is Action.CREATE for r in results)
    assert results[5].error_message == "Time Zone: bad value for restricted picklist field: Mars/Olympus"
    assert results[6].error_message == "Required fields are missing: [LastName]"
    assert [r.created for r in results if r.ok] == [True, True]
    in_org = org_users(session, ["Username", "ProfileId"])
    assert in_org[results[0].sf_id]["Username"] == "anna.new@contoso.example"
    assert in_org[results[4].sf_id]["ProfileId"] == CHATTER
    assert len(in_org) == 4
    assert len(jobs.created) == 1
    _, operation, key_field, keys = jobs.created[0]
    assert (operation, key_field) == ("insert", "Username")
    assert keys == {row["Username"]: row["_entra_id"] for row in rows}


def test_update_changes_clears_deactivates_and_reports_bad_ids(sandbox: SandboxProcess) -> None:
    put_org(sandbox, extra_users(3))
    session = session_for(sandbox)
    u0, u1, u2 = (make_id("005", 500 + i) for i in range(3))
    rows = [
        {"_entra_id": "e1", "Id": MEGAN, "LastName": "Bowen", "FirstName": None, "Title": "Product Manager"},
        {"_entra_id": "e2", "Id": u0, "IsActive": False},
        {"_entra_id": "e3", "Id": u1, "LastName": None},  # a required field cannot be cleared
        {"_entra_id": "e4", "Id": u2[:15], "Title": "Fifteen"},  # 15-character ids work too
        {"_entra_id": "e5", "Id": make_id("005", 999), "Title": "Nobody"},
        {"_entra_id": "e6", "Id": "not-an-id", "Title": "Broken"},
    ]
    results = BulkLoader(session, on_job_created=Jobs()).run(LoadRequest(Action.UPDATE, "update", rows))
    assert codes(results) == [
        ("e1", True, None),
        ("e2", True, None),
        ("e3", False, "REQUIRED_FIELD_MISSING"),
        ("e4", True, None),
        ("e5", False, "INVALID_CROSS_REFERENCE_KEY"),
        ("e6", False, "MALFORMED_ID"),
    ]
    assert [r.sf_id for r in results] == [MEGAN, u0, u1, u2, make_id("005", 999), "not-an-id"]
    assert not any(r.created for r in results)
    users = org_users(session, ["FirstName", "LastName", "Title", "IsActive"])
    assert users[MEGAN] | {"Id": None} == {
        "Id": None,
        "FirstName": None,
        "LastName": "Bowen",
        "Title": "Product Manager",
        "IsActive": "true",
    }
    assert users[u0]["IsActive"] == "false"
    assert users[u1]["LastName"] == "User1"
    assert users[u2]["Title"] == "Fifteen"
    assert users[u2]["FirstName"] == "Extra"  # a field left out of the row is not touched


def test_rows_that_cannot_be_sent_or_matched_fail_before_upload(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [
        new_user("e1", "good.one@contoso.example"),
        new_user("e2", "GOOD.ONE@contoso.example"),
        {**new_user("e3", "x@contoso.example"), "Username": None},
        new_user("e4", "na.text@contoso.example", Title="#N/A"),
        new_user("e5", "mixed.breaks@contoso.example", Street="a\r\nb\nc"),
    ]
    results = BulkLoader(session, on_job_created=jobs).run(LoadRequest(Action.CREATE, "insert", rows))
    assert codes(results) == [
        ("e1", True, None),
        ("e2", False, "DUPLICATE_KEY"),
        ("e3", False, "MISSING_KEY"),
        ("e4", False, "UNSENDABLE_VALUE"),
        ("e5", False, "UNSENDABLE_VALUE"),
    ]
    assert "only the first was sent" in (results[1].error_message or "")
    assert (results[3].error_message or "").startswith("Title: ")
    assert (results[4].error_message or "").startswith("Street: ")
    assert [keys for *_, keys in jobs.created] == [{"good.one@contoso.example": "e1"}]
    usernames = {u["Username"] for u in org_users(session, ["Username"]).values()}
    assert "good.one@contoso.example" in usernames and "na.text@contoso.example" not in usernames


def test_a_failed_job_fails_every_row_with_its_reason(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    rows = [{"_entra_id": "e1", "Id": MEGAN, "NoSuchField": "x"}, {"_entra_id": "e2", "Id": "005000000000001AAA"}]
    results = BulkLoader(session, on_job_created=Jobs()).run(LoadRequest(Action.UPDATE, "update", rows))
    assert [(r.ok, r.error_code) for r in results] == [(False, "InvalidBatch")] * 2
    assert "Field name not found : NoSuchField" in (results[0].error_message or "")


# --- hostile values ---------------------------------------------------------------------------

NASTY = [
    "Smith, John",
    'The "Boss"',
    '"',
    '""',
    ",",
    "line one\nline two",
    "\nleading newline",
    "=SUM(A1:A9)",
    "+cmd|' /C calc'!A0",
    "@import",
    "-1+1",
    "  spaced  ",
    "Zoë Ångström-Ørsted",
    "Παπαδόπουλος",
    "李小龙",
    "🙂👍🏽 emoji",
    "back\\slash",
    "tab\tinside",
    "carriage\ronly",
    "NULL",
    "NA",
    "true",
    "'quoted'",
]


def test_hostile_values_round_trip_exactly(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [
        new_user(f"e{i}", f"nasty{i}@contoso.example", FirstName=value[:40], Title=value, Street=value)
        for i, value in enumerate(NASTY)
    ]
    rows.append(new_user("crlf", "crlf.user@contoso.example", Street="1 Main St\r\nFloor 2", Title="a\r\nb"))
    loader = BulkLoader(session, on_job_created=jobs)
    results = loader.run(LoadRequest(Action.CREATE, "insert", rows))
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert len(jobs.created) == 2  # the CRLF row travels in a CRLF job of its own
    assert [get_job(session, j, is_query=False)["lineEnding"] for j, *_ in jobs.created] == ["LF", "CRLF"]
    users = org_users(session, ["FirstName", "Title", "Street"])
    for row, result in zip(rows, results, strict=True):
        stored = users[result.sf_id or ""]
        assert (stored["FirstName"], stored["Title"], stored["Street"]) == (
            row.get("FirstName"),
            row["Title"],
            row["Street"],
        )
    # and back through an update, reversed, so every value lands on another user
    updates = [
        {"_entra_id": row["_entra_id"], "Id": result.sf_id, "Title": other["Title"], "Street": other["Street"]}
        for row, result, other in zip(rows, results, reversed(rows), strict=True)
    ]
    assert all(r.ok for r in loader.run(LoadRequest(Action.UPDATE, "update", updates)))
    users = org_users(session, ["Title", "Street"])
    for update in updates:
        assert (users[update["Id"]]["Title"], users[update["Id"]]["Street"]) == (update["Title"], update["Street"])


title_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30).filter(
    lambda v: v != "#N/A" and not ("\r\n" in v and v.count("\n") > v.count("\r\n"))
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=title_text, department=title_text)
def test_generated_values_round_trip_through_an_update(sandbox: SandboxProcess, title: str, department: str) -> None:
    session = session_for(sandbox)
    row = {"_entra_id": "e1", "Id": MEGAN, "Title": title, "Department": department}
    results = BulkLoader(session, on_job_created=Jobs()).run(LoadRequest(Action.UPDATE, "update", [row]))
    if "\r\n" in title + department and "\n" in (title + department).replace("\r\n", ""):
        assert results[0].error_code == "UNSENDABLE_VALUE"  # CRLF in one value, LF in the other
        return
    assert results[0].ok, results[0]
    stored = org_users(session, ["Title", "Department"])[MEGAN]
    assert (stored["Title"], stored["Department"]) == (title or None, department or None)  # "" clears


# --- sessions, faults, sizes ------------------------------------------------------------------


def test_session_expiring_while_the_job_runs_is_renewed(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)

    def expire(message: str) -> None:
        if "uploaded and closed" in message:
            sandbox.salesforce.post("/_sandbox/sessions/expire").raise_for_status()

    rows = [new_user(f"e{i}", f"poll{i}@contoso.example") for i in range(5)]
    jobs = Jobs()
    results = BulkLoader(session, on_job_created=jobs, progress=expire).run(LoadRequest(Action.CREATE, "insert", rows))
    assert all(r.ok for r in results) and len({r.sf_id for r in results}) == 5
    assert session.relogins == 1 and len(jobs.created) == 1


def test_session_expiring_during_the_upload_resends_in_a_new_job(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    rule = {"method": "PUT", "path_regex": "jobs/ingest/.+/batches", "status": 401, "times": 1}
    sandbox.salesforce.put("/_sandbox/faults", json=[rule]).raise_for_status()
    rows = [new_user(f"e{i}", f"upload{i}@contoso.example") for i in range(3)]
    jobs = Jobs()
    loader = BulkLoader(session, on_job_created=jobs)
    results = loader.run(LoadRequest(Action.CREATE, "insert", rows))
    assert all(r.ok for r in results)
    assert session.relogins == 1
    assert len(jobs.created) == 2 and loader.job_ids == [j for j, *_ in jobs.created]
    assert get_job(session, jobs.created[0][0], is_query=False)["state"] == "Aborted"
    assert get_job(session, jobs.created[1][0], is_query=False)["state"] == "JobComplete"
    usernames = [u["Username"] for u in org_users(session, ["Username"]).values()]
    assert sorted(u for u in usernames if u.startswith("upload")) == [r["Username"] for r in rows]


def test_session_expiring_while_reading_results_is_renewed(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    rule = {"method": "GET", "path_regex": "jobs/ingest/.+/failedResults", "status": 401, "times": 1}
    sandbox.salesforce.put("/_sandbox/faults", json=[rule]).raise_for_status()
    rows = [new_user("e1", "res1@contoso.example"), new_user("e2", "res2@contoso.example", LocaleSidKey="xx_XX")]
    results = BulkLoader(session, on_job_created=Jobs()).run(LoadRequest(Action.CREATE, "insert", rows))
    assert codes(results) == [("e1", True, None), ("e2", False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")]
    assert session.relogins == 1


def test_503_answers_during_a_load_are_retried(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    rules = [{"path_regex": "jobs/ingest", "status": 503, "probability": 0.5, "times": 6}]
    sandbox.salesforce.put("/_sandbox/faults", json=rules).raise_for_status()
    rows = [new_user(f"e{i}", f"flaky{i}@contoso.example") for i in range(4)]
    results = BulkLoader(session, on_job_created=Jobs()).run(LoadRequest(Action.CREATE, "insert", rows))
    assert all(r.ok for r in results)
    remaining = sandbox.salesforce.get("/_sandbox/faults").json()["rules"][0]["remaining"]
    assert session.requests_by_kind()["retries"] == 6 - remaining > 0


def test_a_load_is_split_at_the_job_size_limit(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [new_user(f"e{i}", f"split{i:02d}@contoso.example") for i in range(20)]
    loader = BulkLoader(session, on_job_created=jobs, max_job_bytes=600)
    request = LoadRequest(Action.CREATE, "insert", list(rows))
    results = loader.run(request)
    assert all(r.ok for r in results) and [r.entra_id for r in results] == [f"e{i}" for i in range(20)]
    assert request.rows == []  # let go of once formatted (the load's memory); the caller's list stays
    assert len(rows) == 20
    assert len(jobs.created) > 3
    sent = [key for *_, keys in jobs.created for key in keys]
    assert sent == [row["Username"] for row in rows]
    one_job = BulkLoader(session, on_job_created=(single := Jobs()))
    more = [new_user(f"f{i}", f"whole{i:02d}@contoso.example") for i in range(20)]
    assert all(r.ok for r in one_job.run(LoadRequest(Action.CREATE, "insert", more)))
    assert len(single.created) == 1


def test_a_load_goes_in_jobs_of_job_rows_all_sent_before_any_is_awaited(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    said: list[str] = []
    rows = [new_user(f"e{i}", f"piece{i}@contoso.example") for i in range(8)]
    rows[4]["Username"] = "PIECE1@contoso.example"  # the same key as row 1's, in a later job
    rows[5]["Username"] = ""  # no key
    rows[6]["Title"] = "two\r\nlines"  # a CRLF job of its own, within its piece
    loader = BulkLoader(session, on_job_created=jobs, job_rows=3, progress=said.append)
    request = LoadRequest(Action.CREATE, "insert", list(rows))
    results = loader.run(request)

    assert [r.entra_id for r in results] == [f"e{i}" for i in range(8)]
    assert codes(results) == [
        ("e0", True, None),
        ("e1", True, None),
        ("e2", True, None),
        ("e3", True, None),
        ("e4", False, "DUPLICATE_KEY"),
        ("e5", False, "MISSING_KEY"),
        ("e6", True, None),
        ("e7", True, None),
    ]
    assert "also for Entra user e1" in str(results[4].error_message)
    # rows 0-2, rows 3-5 (4 and 5 refused), row 6 (CRLF) and row 7 (LF) of the third piece
    assert [list(keys.values()) for *_, keys in jobs.created] == [["e0", "e1", "e2"], ["e3"], ["e7"], ["e6"]]
    assert loader.job_ids == [job_id for job_id, *_ in jobs.created]
    # Every job is uploaded and closed before the first one is waited for and read.
    closed = [at for at, text in enumerate(said) if text.endswith("uploaded and closed")]
    read = [at for at, text in enumerate(said) if "succeeded" in text]
    assert len(closed) == len(read) == 4 and max(closed) < min(read)
    assert request.rows == [] and len(rows) == 8  # the caller's list is left as it was
    in_org = {u["Username"].lower() for u in org_users(session, ["Username"]).values()}
    assert {f"piece{i}@contoso.example" for i in (0, 1, 2, 3, 6, 7)} <= in_org


def test_a_row_without_an_entra_id_stops_the_request_before_any_job_is_sent(sandbox: SandboxProcess) -> None:
    jobs = Jobs()
    rows = [new_user(f"e{i}", f"noid{i}@contoso.example") for i in range(5)]
    del rows[4]["_entra_id"]
    loader = BulkLoader(session_for(sandbox), on_job_created=jobs, job_rows=2)
    with pytest.raises(ValueError, match="row 4 of the insert request has no _entra_id"):
        loader.run(LoadRequest(Action.CREATE, "insert", rows))
    assert jobs.created == []


def test_job_rows_must_be_positive(sandbox: SandboxProcess) -> None:
    with pytest.raises(ValueError, match="job_rows must be at least 1"):
        BulkLoader(session_for(sandbox), on_job_created=Jobs(), job_rows=0)


# --- settling the jobs of a crashed run -------------------------------------------------------


def crash_when(text: str) -> Callable[[str], None]:
    def progress(message: str) -> None:
        if text in message:
            raise SimulatedCrashError(message)

    return progress


def test_recover_aborts_a_job_left_open(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [new_user(f"e{i}", f"open{i}@contoso.example") for i in range(3)]
    with pytest.raises(SimulatedCrashError):
        BulkLoader(session, on_job_created=jobs, progress=crash_when("created for")).run(
            LoadRequest(Action.CREATE, "insert", rows)
        )
    results = BulkLoader(session, on_job_created=Jobs()).recover(jobs.pending())
    assert [(r.entra_id, r.ok, r.unprocessed, r.action) for r in results] == [
        (f"e{i}", False, True, Action.CREATE) for i in range(3)
    ]
    assert get_job(session, jobs.created[0][0], is_query=False)["state"] == "Aborted"
    assert not any(u["Username"].startswith("open") for u in org_users(session, ["Username"]).values())


def test_recover_waits_for_a_job_in_progress_and_joins_its_results(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [new_user("e1", "inflight1@contoso.example"), new_user("e2", "inflight2@contoso.example", Alias="x" * 9)]
    with pytest.raises(SimulatedCrashError):
        BulkLoader(session, on_job_created=jobs, progress=crash_when("uploaded and closed")).run(
            LoadRequest(Action.CREATE, "insert", rows)
        )
    assert get_job(session, jobs.created[0][0], is_query=False)["state"] in ("UploadComplete", "InProgress")
    results = BulkLoader(session, on_job_created=Jobs()).recover(jobs.pending())
    assert codes(results) == [("e1", True, None), ("e2", False, "STRING_TOO_LONG")]
    assert org_users(session, ["Username"])[results[0].sf_id or ""]["Username"] == "inflight1@contoso.example"


def test_recover_reads_a_finished_job_like_the_run_would_have(sandbox: SandboxProcess) -> None:
    put_org(sandbox, extra_users(2))
    session = session_for(sandbox)
    jobs = Jobs()
    rows = [
        {"_entra_id": "e1", "Id": make_id("005", 500), "IsActive": False},
        {"_entra_id": "e2", "Id": make_id("005", 501), "Email": "not-an-email"},
    ]
    with pytest.raises(SimulatedCrashError):
        BulkLoader(session, on_job_created=jobs, progress=crash_when("JobComplete, 2/2 processed")).run(
            LoadRequest(Action.DISABLE, "update", rows)
        )
    pending = jobs.pending()
    pending.keys["005ghost0000001"] = "ghost"  # a key the job never carried: reported as missing
    pending.keys[make_id("005", 500)[:15]] = "twin"  # the same user as e1's key to Salesforce
    results = BulkLoader(session, on_job_created=Jobs()).recover(
        pending, actions={"e1": Action.DISABLE, "e2": Action.UPDATE}
    )
    assert [(r.entra_id, r.action, r.ok, r.error_code) for r in results] == [
        ("e1", Action.DISABLE, True, None),
        ("e2", Action.UPDATE, False, "INVALID_EMAIL_ADDRESS"),
        ("ghost", Action.UPDATE, False, "NOT_REPORTED"),
        ("twin", Action.UPDATE, False, "DUPLICATE_KEY"),
    ]
    assert results[0].sf_id == make_id("005", 500)


def test_recover_a_job_salesforce_no_longer_has(sandbox: SandboxProcess) -> None:
    session = session_for(sandbox)
    job = PendingJob("7505g00000000ZZAAA", "cycle-0", "insert", "Username", {"gone@contoso.example": "e1"})
    results = BulkLoader(session, on_job_created=Jobs()).recover(job)
    assert [(r.entra_id, r.ok, r.unprocessed, r.error_code) for r in results] == [("e1", False, True, "JOB_NOT_FOUND")]
