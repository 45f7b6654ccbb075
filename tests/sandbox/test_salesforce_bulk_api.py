"""Bulk API 2.0 of the Salesforce emulator, driven by simple-salesforce and plain HTTPS.

Runs against the real sandbox process (``sandbox`` fixture: the example fixtures, reset
before each test). simple-salesforce is used exactly as the product uses it: an OAuth
client-credentials token, then ``Salesforce(instance_url=..., session_id=...)`` over a
``requests.Session`` that trusts the sandbox CA. ``trust_env`` is off because a
``REQUESTS_CA_BUNDLE`` in the environment would otherwise override ``Session.verify``.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import SalesforceOperationError

from tests.sandbox_process import SandboxProcess

STANDARD_PROFILE = "00e000000000001AAA"
CHATTER_PROFILE = "00e000000000003AAA"
MEGAN = "005000000000002AAA"
HEADER = [
    "Username",
    "LastName",
    "FirstName",
    "Alias",
    "Email",
    "TimeZoneSidKey",
    "LocaleSidKey",
    "EmailEncodingKey",
    "ProfileId",
    "LanguageLocaleKey",
]
DUPLICATE_USERNAME = (
    "DUPLICATE_USERNAME:Duplicate Username.<br>The username already exists in this or another Salesforce "
    "organization. Usernames must be unique across all Salesforce organizations. To resolve, use a different "
    "username (it doesn't need to match the user's email address). :Username --"
)


def user_row(username: str, **overrides: str) -> dict[str, str]:
    row = {
        "Username": username,
        "LastName": "Tester",
        "FirstName": "Tess",
        "Alias": username.split("@", maxsplit=1)[0][:8],
        "Email": username,
        "TimeZoneSidKey": "America/Los_Angeles",
        "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "ProfileId": STANDARD_PROFILE,
        "LanguageLocaleKey": "en_US",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None, **fmt: Any) -> str:
    header = header or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n", **fmt)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def read_results(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def http_session(sandbox: SandboxProcess) -> requests.Session:
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False
    return session


def access_token(sandbox: SandboxProcess, session: requests.Session) -> str:
    app = sandbox.org["connected_apps"][0]
    answer = session.post(
        f"{sandbox.salesforce_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(app["consumer_key"], app["consumer_secret"]),
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


@pytest.fixture
def sf(sandbox: SandboxProcess) -> Salesforce:
    session = http_session(sandbox)
    return Salesforce(
        instance_url=sandbox.salesforce_url,
        session_id=access_token(sandbox, session),
        session=session,
        version=sandbox.org["api_version"],
    )


class RawBulk:
    """Plain HTTPS calls for what simple-salesforce does not expose (states, errors)."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.session = http_session(sandbox)
        self.session.headers["Authorization"] = f"Bearer {access_token(sandbox, self.session)}"
        self.base = f"{sandbox.salesforce_url}/services/data/v{sandbox.org['api_version']}/jobs"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}/{path}", **kwargs)

    def wait(self, kind: str, job_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.call("GET", f"{kind}/{job_id}").json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                return info
            assert time.monotonic() < deadline, f"job {job_id} still {info['state']}"
            time.sleep(0.05)


@pytest.fixture
def raw(sandbox: SandboxProcess) -> RawBulk:
    return RawBulk(sandbox)


def sandbox_users(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    state = sandbox.salesforce.get("/_sandbox/state").json()
    return {user["Username"]: user for user in state["users"]}


def api_error(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    return response.status_code, body[0]["errorCode"], body[0]["message"]


# --- ingest through simple-salesforce -------------------------------------------------------


def test_insert_mixed_rows_reports_each_failure_exactly(
    sf: Salesforce, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    rows = [
        user_row("new.hire@contoso.example"),
        user_row("no.lastname@contoso.example", LastName=""),
        user_row("bad.email@contoso.example", Email="not-an-email"),
        user_row("megan.bowen@contoso.example", Alias="mbowen2"),
        user_row("alex.wilber@contoso.example"),
        user_row("ghost.profile@contoso.example", ProfileId="00e000000000009AAA"),
        user_row("mars@contoso.example", TimeZoneSidKey="Mars/Olympus_Mons"),
        user_row("long.alias@contoso.example", Alias="waytoolongalias"),
        user_row("no.first@contoso.example", FirstName="#N/A"),
    ]
    [summary] = sf.bulk2.User.insert(csv_file=write_csv(tmp_path / "users.csv", rows), wait=0)
    assert summary["numberRecordsTotal"] == 9
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (9, 7)
    job_id = summary["job_id"]

    failed = {r["Username"]: r for r in read_results(sf.bulk2.User.get_failed_records(job_id))}
    assert {u: r["sf__Error"] for u, r in failed.items()} == {
        "no.lastname@contoso.example": "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
        "bad.email@contoso.example": "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --",
        "megan.bowen@contoso.example": DUPLICATE_USERNAME,
        "alex.wilber@contoso.example": DUPLICATE_USERNAME,
        "ghost.profile@contoso.example": "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:ProfileId --",
        "mars@contoso.example": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Time Zone: bad value for restricted "
        "picklist field: Mars/Olympus_Mons:TimeZoneSidKey --",
        "long.alias@contoso.example": "STRING_TOO_LONG:Alias: data value too large: waytoolongalias "
        "(max length=8):Alias --",
    }
    assert all(r["sf__Id"] == "" for r in failed.values())
    assert failed["bad.email@contoso.example"]["Email"] == "not-an-email", "values come back as uploaded"

    successful = read_results(sf.bulk2.User.get_successful_records(job_id))
    assert [r["Username"] for r in successful] == ["new.hire@contoso.example", "no.first@contoso.example"]
    assert all(r["sf__Created"] == "true" and r["sf__Id"].startswith("005") for r in successful)
    assert len(successful[0]["sf__Id"]) == 18
    assert successful[1]["FirstName"] == "#N/A"
    assert sf.bulk2.User.get_unprocessed_records(job_id) == ",".join(HEADER) + "\n"

    users = sandbox_users(sandbox)
    assert users["new.hire@contoso.example"]["Id"] == successful[0]["sf__Id"]
    assert users["no.first@contoso.example"]["FirstName"] is None
    assert "mars@contoso.example" not in users


def test_result_files_use_the_jobs_delimiter_and_line_ending(sf: Salesforce, tmp_path: Path) -> None:
    rows = [user_row("pipe.one@contoso.example", Title="A|B"), user_row("pipe.two@contoso.example", LastName="")]
    path = write_csv(tmp_path / "pipe.csv", rows, delimiter="|")
    [summary] = sf.bulk2.User.insert(
        csv_file=path, column_delimiter=ColumnDelimiter.PIPE, line_ending=LineEnding.CRLF, wait=0
    )
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (2, 1)
    text = sf.bulk2.User.get_successful_records(summary["job_id"])
    assert text.startswith('"sf__Id"|"sf__Created"|Username|') and text.endswith("\r\n")
    assert read_results(text, "|")[0]["Title"] == "A|B"
    failed = read_results(sf.bulk2.User.get_failed_records(summary["job_id"]), "|")
    assert failed[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING:")


def test_licence_ceiling_fails_rows_in_upload_order_and_deactivation_frees_one(
    sf: Salesforce, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    licence = next(lic for lic in sandbox.org["user_licenses"] if lic["Name"] == "Salesforce")
    active = sum(
        1 for u in sandbox.org["users"] if u["IsActive"] and u["ProfileId"] in {STANDARD_PROFILE, "00e000000000002AAA"}
    )
    free = licence["TotalLicenses"] - active
    rows = [user_row(f"seat{i:03d}@contoso.example", Alias=f"seat{i:03d}") for i in range(free + 2)]
    [summary] = sf.bulk2.User.insert(csv_file=write_csv(tmp_path / "seats.csv", rows), wait=0)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (free + 2, 2)
    failed = read_results(sf.bulk2.User.get_failed_records(summary["job_id"]))
    assert [r["Username"] for r in failed] == [f"seat{free:03d}@contoso.example", f"seat{free + 1:03d}@contoso.example"]
    assert {r["sf__Error"] for r in failed} == {"LICENSE_LIMIT_EXCEEDED:License Limit Exceeded:--"}

    # a Chatter Free user takes a licence of another type
    [chatter] = sf.bulk2.User.insert(
        csv_file=write_csv(tmp_path / "chatter.csv", [user_row("chatter@contoso.example", ProfileId=CHATTER_PROFILE)]),
        wait=0,
    )
    assert chatter["numberRecordsFailed"] == 0

    deactivate = [{"Id": MEGAN, "IsActive": "false"}]
    [update] = sf.bulk2.User.update(csv_file=write_csv(tmp_path / "off.csv", deactivate), wait=0)
    assert update["numberRecordsFailed"] == 0
    [retry] = sf.bulk2.User.insert(csv_file=write_csv(tmp_path / "retry.csv", [rows[free]]), wait=0)
    assert retry["numberRecordsFailed"] == 0


def test_update_ignores_empty_values_and_nulls_na(sf: Salesforce, sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = [
        {"Id": MEGAN, "LastName": "Bowen", "FirstName": "", "Title": "Director, Sales", "Department": "#N/A"},
        {"Id": "", "LastName": "Nobody", "FirstName": "", "Title": "", "Department": ""},
        {"Id": "005000000000999AAA", "LastName": "Ghost", "FirstName": "", "Title": "", "Department": ""},
        {"Id": "not-an-id", "LastName": "Bad", "FirstName": "", "Title": "", "Department": ""},
        {"Id": MEGAN[:15], "LastName": "#N/A", "FirstName": "", "Title": "", "Department": ""},
    ]
    [summary] = sf.bulk2.User.update(csv_file=write_csv(tmp_path / "update.csv", rows), wait=0)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (5, 4)
    ok = read_results(sf.bulk2.User.get_successful_records(summary["job_id"]))
    assert [(r["sf__Id"], r["sf__Created"]) for r in ok] == [(MEGAN, "false")]
    errors = [r["sf__Error"] for r in read_results(sf.bulk2.User.get_failed_records(summary["job_id"]))]
    assert errors == [
        "MISSING_ARGUMENT:Id not specified in an update call:--",
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
        "MALFORMED_ID:User ID: id value of incorrect type: not-an-id:Id --",
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
    ]
    megan = sandbox_users(sandbox)["megan.bowen@contoso.example"]
    assert (megan["LastName"], megan["FirstName"], megan["Title"]) == ("Bowen", "Megan", "Director, Sales")
    assert megan.get("Department") is None

    # simple-salesforce turns None into an empty cell: ignored, not nulled
    [again] = sf.bulk2.User.update(records=[{"Id": MEGAN, "Title": None, "LastName": "Bowen"}], wait=0)
    assert again["numberRecordsFailed"] == 0
    assert sandbox_users(sandbox)["megan.bowen@contoso.example"]["Title"] == "Director, Sales"


def test_upsert_on_username_updates_or_creates(sf: Salesforce, sandbox: SandboxProcess, tmp_path: Path) -> None:
    rows = [
        user_row("megan.bowen@contoso.example", LastName="Bowen", Alias="mbowen"),
        user_row("brand.new@contoso.example"),
    ]
    [summary] = sf.bulk2.User.upsert(
        csv_file=write_csv(tmp_path / "upsert.csv", rows), external_id_field="Username", wait=0
    )
    assert summary["numberRecordsFailed"] == 0
    results = {r["Username"]: r for r in read_results(sf.bulk2.User.get_successful_records(summary["job_id"]))}
    assert (
        results["megan.bowen@contoso.example"]["sf__Id"],
        results["megan.bowen@contoso.example"]["sf__Created"],
    ) == (
        MEGAN,
        "false",
    )
    assert results["brand.new@contoso.example"]["sf__Created"] == "true"
    assert sandbox_users(sandbox)["megan.bowen@contoso.example"]["LastName"] == "Bowen"


def test_users_cannot_be_deleted(sf: Salesforce, tmp_path: Path) -> None:
    [summary] = sf.bulk2.User.delete(csv_file=write_csv(tmp_path / "delete.csv", [{"Id": MEGAN}]), wait=0)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (1, 1)
    [failed] = read_results(sf.bulk2.User.get_failed_records(summary["job_id"]))
    assert failed["sf__Error"] == "INVALID_TYPE_FOR_OPERATION:entity type cannot be deleted:--"
    assert failed["sf__Id"] == MEGAN


def test_unknown_column_fails_the_job(sf: Salesforce, raw: RawBulk, tmp_path: Path) -> None:
    rows = [{**user_row("x@contoso.example"), "Shoe_Size__c": "44"}]
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Shoe_Size__c"):
        sf.bulk2.User.insert(csv_file=write_csv(tmp_path / "bad.csv", rows), wait=0)
    [job] = [j for j in raw.call("GET", "ingest").json()["records"] if j["state"] == "Failed"]
    info = raw.call("GET", f"ingest/{job['id']}").json()
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Shoe_Size__c"
    assert info["numberRecordsProcessed"] == 0
    unprocessed = read_results(raw.call("GET", f"ingest/{job['id']}/unprocessedrecords/").text)
    assert unprocessed[0]["Shoe_Size__c"] == "44"


# --- the job lifecycle over plain HTTPS -----------------------------------------------------


def test_ingest_job_lifecycle_and_state_errors(raw: RawBulk) -> None:
    created = raw.call("POST", "ingest/", json={"object": "User", "operation": "insert", "lineEnding": "LF"})
    assert created.status_code == 200
    job = created.json()
    job_id = job["id"]
    assert job["state"] == "Open" and job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job_id}/batches"

    early = raw.call("GET", f"ingest/{job_id}/successfulResults/")
    assert api_error(early)[:2] == (400, "INVALIDJOBSTATE")

    data = ",".join(HEADER) + "\n" + ",".join(user_row("life@contoso.example").values()) + "\n"
    upload = raw.call("PUT", job["contentUrl"].split("/jobs/")[1], data=data, headers={"Content-Type": "text/csv"})
    assert (upload.status_code, upload.content) == (201, b"")
    second = raw.call("PUT", f"ingest/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})
    status, code, message = api_error(second)
    assert (status, code) == (400, "BULK_API_ERROR")
    assert message.startswith(f"Found multiple contents for job: <{job_id[:15]}>")

    closed = raw.call("PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    late = raw.call("PUT", f"ingest/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})
    assert api_error(late)[:2] == (400, "INVALIDJOBSTATE")

    info = raw.wait("ingest", job_id)
    assert info["state"] == "JobComplete" and info["jobType"] == "V2Ingest"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"], info["retries"]) == (1, 0, 0)
    assert {"totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"} <= set(info)
    assert api_error(raw.call("PATCH", f"ingest/{job_id}", json={"state": "Aborted"})) == (
        400,
        "INVALIDJOBSTATE",
        "Aborting already Completed Job not allowed",
    )
    assert api_error(raw.call("PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"}))[:2] == (
        400,
        "INVALIDJOBSTATE",
    )
    for path in ("successfulResults", "successfulResults/", "failedResults", "unprocessedRecords/"):
        answer = raw.call("GET", f"ingest/{job_id}/{path}")
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv"), path

    listed = raw.call("GET", "ingest").json()
    assert listed["done"] is True and listed["nextRecordsUrl"] is None
    assert [j["id"] for j in listed["records"]] == [job_id]
    assert raw.call("GET", "ingest", params={"jobType": "Classic"}).json()["records"] == []

    assert raw.call("DELETE", f"ingest/{job_id}").status_code == 204
    assert api_error(raw.call("GET", f"ingest/{job_id}")) == (404, "NOT_FOUND", "The requested resource does not exist")


def test_aborted_job_returns_its_rows_as_unprocessed(raw: RawBulk) -> None:
    job_id = raw.call("POST", "ingest", json={"object": "User", "operation": "insert"}).json()["id"]
    rows = [user_row(f"abort{i}@contoso.example") for i in range(3)]
    data = ",".join(HEADER) + "\n" + "\n".join(",".join(r.values()) for r in rows) + "\n"
    raw.call("PUT", f"ingest/{job_id}/batches", data=data, headers={"Content-Type": "text/csv"})
    aborted = raw.call("PATCH", f"ingest/{job_id}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert api_error(raw.call("PATCH", f"ingest/{job_id}", json={"state": "UploadComplete"}))[:2] == (
        400,
        "INVALIDJOBSTATE",
    )
    unprocessed = read_results(raw.call("GET", f"ingest/{job_id}/unprocessedrecords").text)
    assert [r["Username"] for r in unprocessed] == [r["Username"] for r in rows]
    assert read_results(raw.call("GET", f"ingest/{job_id}/successfulResults").text) == []


def test_create_errors_and_unknown_jobs(raw: RawBulk, sandbox: SandboxProcess) -> None:
    assert api_error(raw.call("POST", "ingest", json={"object": "Contact", "operation": "insert"})) == (
        400,
        "INVALIDJOB",
        "Unable to find object: Contact",
    )
    assert api_error(raw.call("POST", "ingest", json={"object": "User", "operation": "upsert"})) == (
        400,
        "INVALIDJOB",
        "External ID was blank for User. An External ID must be specified for upsert.",
    )
    status, code, _ = api_error(
        raw.call("POST", "ingest", json={"object": "User", "operation": "insert", "columnDelimiter": "COLON"})
    )
    assert (status, code) == (400, "JSON_PARSER_ERROR")
    assert api_error(raw.call("GET", "ingest/7505g0000000zzzAAA"))[:2] == (404, "NOT_FOUND")
    assert api_error(raw.call("GET", "query/7505g0000000zzzAAA/results"))[:2] == (404, "NOT_FOUND")

    anonymous = http_session(sandbox).get(f"{raw.base}/ingest")
    assert api_error(anonymous) == (401, "INVALID_SESSION_ID", "Session expired or invalid")
    old_version = raw.session.get(raw.base.replace("/v62.0/", "/v40.0/") + "/ingest")
    assert api_error(old_version)[:2] == (404, "NOT_FOUND")


def test_every_bulk_call_counts_against_the_daily_allowance(raw: RawBulk, sandbox: SandboxProcess) -> None:
    answer = raw.call("GET", "ingest")
    used, limit = answer.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    assert int(used) >= 1 and int(limit) > int(used)
    counts = sandbox.requests("salesforce")["by_route"]
    assert counts["GET /services/data/{version}/jobs/ingest"] == 1


# --- query jobs -----------------------------------------------------------------------------


def test_bulk_query_pages_with_locators(sf: Salesforce, raw: RawBulk) -> None:
    pages = list(
        sf.bulk2.User.query("SELECT Id, Username, IsActive FROM User ORDER BY Username", max_records=1, wait=0)
    )
    assert len(pages) == 2
    records = [row for page in pages for row in read_results(page)]
    assert [r["Username"] for r in records] == ["integration@contoso.example.sfdc", "megan.bowen@contoso.example"]
    assert {r["IsActive"] for r in records} == {"true"}
    assert pages[0].startswith('"Id","Username","IsActive"\n')

    created = raw.call(
        "POST", "query", json={"operation": "query", "query": "SELECT Id, FederationIdentifier FROM User"}
    )
    assert created.json()["state"] == "UploadComplete"
    job_id = created.json()["id"]
    info = raw.wait("query", job_id)
    assert (info["state"], info["jobType"], info["numberRecordsProcessed"]) == ("JobComplete", "V2Query", 2)
    first = raw.call("GET", f"query/{job_id}/results", params={"maxRecords": 1})
    assert first.headers["Sforce-NumberOfRecords"] == "1"
    locator = first.headers["Sforce-Locator"]
    assert locator not in ("", "null")
    last = raw.call("GET", f"query/{job_id}/results", params={"maxRecords": 1, "locator": locator})
    assert last.headers["Sforce-Locator"] == "null"
    assert last.text.splitlines()[1].endswith('",'), "null is written as nothing"
    everything = raw.call("GET", f"query/{job_id}/results")
    assert (everything.headers["Sforce-NumberOfRecords"], everything.headers["Sforce-Locator"]) == ("2", "null")
    assert [j["id"] for j in raw.call("GET", "query").json()["records"]][-1] == job_id
    assert api_error(raw.call("PATCH", f"query/{job_id}", json={"state": "Aborted"})) == (
        400,
        "INVALIDJOBSTATE",
        "Aborting already Completed Job not allowed",
    )
    assert raw.call("DELETE", f"query/{job_id}").status_code == 204
    assert api_error(raw.call("GET", f"query/{job_id}"))[:2] == (404, "NOT_FOUND")


def test_bad_soql_is_refused_when_the_query_job_is_created(raw: RawBulk) -> None:
    status, code, message = api_error(
        raw.call("POST", "query", json={"operation": "query", "query": "SELECT Shoe FROM User"})
    )
    assert (status, code) == (400, "INVALID_FIELD")
    assert "No such column 'Shoe' on entity 'User'" in message
    assert api_error(raw.call("POST", "query", json={"operation": "query", "query": "SELECT FROM User"}))[:2] == (
        400,
        "MALFORMED_QUERY",
    )
