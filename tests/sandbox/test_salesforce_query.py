"""SOQL: the parser/evaluator on an ``Org``, and query/queryAll paging through
simple-salesforce against the running sandbox."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from include.sandbox.salesforce.exceptions import SoqlError
from include.sandbox.salesforce.models import Org
from tests.sandbox_process import FIXTURES, SandboxProcess

CHATTER = "00e000000000003AAA"


def org_fixture(extra_users: int = 0) -> dict[str, Any]:
    fixture = orjson.loads((FIXTURES / "example-org.json").read_bytes())
    fixture["user_licenses"][1]["TotalLicenses"] = max(500, extra_users)
    for n in range(extra_users):
        fixture["users"].append(
            {
                "Username": f"bulk{n:05d}@contoso.example",
                "Email": f"bulk{n:05d}@contoso.example",
                "LastName": f"Person{n:05d}",
                "FirstName": "Bulk" if n % 2 else None,
                "Alias": f"b{n}"[:8],
                "ProfileId": CHATTER,
                "IsActive": n % 10 != 0,
                "Title": "Engineer" if n % 3 == 0 else "Manager",
            }
        )
    return fixture


@pytest.fixture
def org() -> Org:
    return Org.load(org_fixture(30))


def soql_error(org: Org, soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        org.query(soql)
    return caught.value


# --- the evaluator ------------------------------------------------------------------------


def test_select_where_order_limit_offset(org: Org) -> None:
    fields, records = org.query(
        "select id, USERNAME, Profile.Name from user where IsActive = true and Title = 'engineer' "
        "order by Username desc limit 3 offset 1"
    )
    assert fields == ["Id", "Username", "Profile.Name"]  # canonical names, SELECT order
    assert [r["Username"] for r in records] == [
        "bulk00024@contoso.example",
        "bulk00021@contoso.example",
        "bulk00018@contoso.example",
    ]
    assert {r["Profile.Name"] for r in records} == {"Chatter Free User"}


def test_boolean_logic_in_not_in_and_null(org: Org) -> None:
    _, records = org.query(
        "SELECT Username FROM User WHERE (LastName IN ('Person00001', 'Person00002') OR Username LIKE 'megan%') "
        "AND NOT (FirstName = null) AND Username NOT IN ('bulk00002@contoso.example')"
    )
    assert [r["Username"] for r in records] == ["megan.bowen@contoso.example", "bulk00001@contoso.example"]
    _, nulls = org.query("SELECT Id FROM User WHERE FirstName = null")
    assert len(nulls) == 15
    _, inactive = org.query("SELECT Id FROM User WHERE IsActive != true")
    assert len(inactive) == 3


def test_relationships_counts_and_other_objects(org: Org) -> None:
    _, rows = org.query("SELECT Profile.UserLicense.Name FROM User WHERE Username = 'integration@contoso.example.sfdc'")
    assert rows == [{"Profile.UserLicense.Name": "Salesforce"}]
    assert org.query("SELECT COUNT() FROM User WHERE Profile.Name = 'Chatter Free User'") == (
        ["COUNT()"],
        [{"COUNT()": 30}],
    )
    _, licences = org.query("SELECT Name, TotalLicenses, UsedLicenses FROM UserLicense ORDER BY Name")
    assert licences[0] == {"Name": "Chatter Free", "TotalLicenses": 500, "UsedLicenses": 27}
    _, profiles = org.query("SELECT Id, Name FROM Profile WHERE UserLicense.Name = 'Salesforce' ORDER BY Name")
    assert [p["Name"] for p in profiles] == ["Standard User", "System Administrator"]
    _, by_date = org.query("SELECT Id FROM User WHERE CreatedDate > 2000-01-01T00:00:00Z")
    assert len(by_date) == 32


def test_escapes_of_format_soql_round_trip(org: Org) -> None:
    hostile = 'o\'brien\\ "quoted"\nnext\ttab%_'
    org.insert_user(
        {
            "Username": "obrien@contoso.example",
            "LastName": hostile,
            "Email": "obrien@contoso.example",
            "Alias": "ob",
            "TimeZoneSidKey": "Europe/London",
            "LocaleSidKey": "en_GB",
            "EmailEncodingKey": "UTF-8",
            "LanguageLocaleKey": "en_US",
            "ProfileId": CHATTER,
        }
    )
    _, rows = org.query(format_soql("SELECT LastName FROM User WHERE LastName = {}", hostile))
    assert rows == [{"LastName": hostile}]
    _, rows = org.query(format_soql("SELECT Username FROM User WHERE LastName LIKE '{:like}%'", "o'brien\\ \"q"))
    assert [r["Username"] for r in rows] == ["obrien@contoso.example"]
    _, rows = org.query(format_soql("SELECT Username FROM User WHERE LastName LIKE '%{:like}'", "tab%_"))
    assert [r["Username"] for r in rows] == ["obrien@contoso.example"]  # \% and \_ are literal
    _, rows = org.query(format_soql("SELECT Username FROM User WHERE Username = {}", "x' OR Username != '"))
    assert rows == []  # injection stays a value


def test_errors_read_like_salesforce(org: Org) -> None:
    error = soql_error(org, "SELECT Id FORM User")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message == "\nSELECT Id FORM User\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
    error = soql_error(org, "SELECT Id, Foo FROM User")
    assert error.error_code == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'User'." in error.message
    assert error.message.startswith("\nSELECT Id, Foo FROM User\n           ^\nERROR at Row:1:Column:12\n")
    error = soql_error(org, "SELECT Id FROM Opportunity")
    assert error.error_code == "INVALID_TYPE"
    assert "sObject type 'Opportunity' is not supported." in error.message
    assert soql_error(org, "SELECT Id FROM User WHERE").message.endswith("unexpected token: <EOF>")
    assert soql_error(org, "SELECT Id FROM User WHERE LastName = 'open").error_code == "MALFORMED_QUERY"
    assert "must be of type boolean" in soql_error(org, "SELECT Id FROM User WHERE IsActive = 'true'").message
    assert "Didn't understand relationship 'Boss'" in soql_error(org, "SELECT Boss.Name FROM User").message
    assert soql_error(org, "SELECT Id FROM User OFFSET 2001").error_code == "NUMBER_OUTSIDE_VALID_RANGE"


# --- through simple-salesforce ----------------------------------------------------------------


def http_session(sandbox: SandboxProcess) -> requests.Session:
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    return session


def login(sandbox: SandboxProcess) -> Salesforce:
    conn = json.loads(sandbox.settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    return Salesforce(
        username=conn["login"],
        password=conn["password"],
        security_token=conn["extra"]["security_token"],
        domain=conn["extra"]["domain"],
        version=conn["extra"]["version"],
        session=http_session(sandbox),
    )


def test_query_all_pages_with_small_batches(sandbox: SandboxProcess) -> None:
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org_fixture(450))).raise_for_status()
    sf = login(sandbox)
    options = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id, Username, Profile.Name FROM User ORDER BY Username", headers=options)
    assert (first["totalSize"], first["done"], len(first["records"])) == (452, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-200")
    record = first["records"][0]
    assert record["attributes"] == {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{record['Id']}"}
    assert record["Profile"]["Name"] == "Chatter Free User"
    assert record["Profile"]["attributes"]["type"] == "Profile"
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=options)
    assert (second["done"], len(second["records"])) == (False, 200)
    everything = sf.query_all("SELECT Username FROM User ORDER BY Username", headers=options)
    usernames = [r["Username"] for r in everything["records"]]
    assert len(usernames) == 452 and usernames == sorted(usernames) and len(set(usernames)) == 452
    deleted_too = sf.query_all("SELECT Id FROM User WHERE IsActive = false", include_deleted=True)
    assert deleted_too["totalSize"] == 45  # users are never deleted: queryAll == query
    assert sandbox.requests("salesforce")["by_route"]["GET /services/data/{version}/query/{cursor}"] >= 2


def test_count_and_hostile_values(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    assert sf.query("SELECT COUNT() FROM User") == {"totalSize": 2, "done": True, "records": []}
    hostile = "megan.bowen@contoso.example' OR Username != '"
    assert sf.query(format_soql("SELECT Id FROM User WHERE Username = {}", hostile))["totalSize"] == 0
    found = sf.query(format_soql("SELECT LastName FROM User WHERE Username = {}", "MEGAN.BOWEN@contoso.example"))
    assert [r["LastName"] for r in found["records"]] == ["Bowen-Old"]


def test_malformed_query_raises_the_client_error(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FORM User")
    assert caught.value.status == 400
    assert caught.value.content == [
        {
            "message": "\nSELECT Id FORM User\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'",
            "errorCode": "MALFORMED_QUERY",
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Nope FROM User")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("/services/data/v62.0/query/01g000000000001AAA-2000", identifier_is_url=True)
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_state_reset_between_tests_is_visible(sandbox: SandboxProcess) -> None:
    fixture = copy.deepcopy(sandbox.org)
    fixture["users"] = fixture["users"][:1]
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()
    assert login(sandbox).query("SELECT Id FROM User")["totalSize"] == 1
