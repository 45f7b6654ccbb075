"""REST sObject resources (describe, create, update, get, upsert), licence counting and
fault rules, driven by simple-salesforce against the running sandbox."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.sandbox_process import SandboxProcess

STANDARD = "00e000000000001AAA"


def http_session(sandbox: SandboxProcess) -> requests.Session:
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    return session


def login(sandbox: SandboxProcess) -> Salesforce:
    c = json.loads(sandbox.settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    return Salesforce(
        consumer_key=c["extra"]["consumer_key"],
        consumer_secret=c["extra"]["consumer_secret"],
        domain=c["extra"]["domain"],
        version=c["extra"]["version"],
        session=http_session(sandbox),
    )


def new_user(n: str, **overrides: Any) -> dict[str, Any]:
    return {
        "Username": f"{n}@contoso.example",
        "LastName": n.title(),
        "Email": f"{n}@contoso.example",
        "Alias": n[:8],
        "TimeZoneSidKey": "America/New_York",
        "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US",
        "ProfileId": STANDARD,
        **overrides,
    }


def rest_error(call: Any) -> list[dict[str, Any]]:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        call()
    assert caught.value.status == 400
    return caught.value.content


def test_describe_user(sandbox: SandboxProcess) -> None:
    describe = login(sandbox).User.describe()
    assert (describe["name"], describe["keyPrefix"], describe["createable"], describe["deletable"]) == (
        "User",
        "005",
        True,
        False,
    )
    fields = {f["name"]: f for f in describe["fields"]}
    assert {"Id", "Username", "Name", "IsActive", "FederationIdentifier", "EmployeeNumber", "UserType"} <= set(fields)
    assert (fields["Username"]["length"], fields["Username"]["unique"], fields["Username"]["type"]) == (
        80,
        True,
        "string",
    )
    assert fields["Alias"]["length"] == 8 and fields["FederationIdentifier"]["length"] == 512
    assert fields["Name"]["createable"] is False and fields["Email"]["type"] == "email"
    assert fields["ProfileId"]["referenceTo"] == ["Profile"] and fields["ProfileId"]["relationshipName"] == "Profile"
    time_zone = fields["TimeZoneSidKey"]
    assert time_zone["restrictedPicklist"] is True and time_zone["type"] == "picklist"
    zones = {p["value"] for p in time_zone["picklistValues"]}
    assert {"America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney"} <= zones
    encodings = [p["value"] for p in fields["EmailEncodingKey"]["picklistValues"]]
    assert encodings[:2] == ["UTF-8", "ISO-8859-1"] and len(encodings) == 10
    languages = {p["value"] for p in fields["LanguageLocaleKey"]["picklistValues"]}
    assert {"en_US", "de", "fr", "es", "ja", "it", "nl_NL", "pt_BR", "zh_CN"} <= languages


def test_create_get_update(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    created = sf.User.create(new_user("ada", FirstName="Ada", IsActive=True))
    assert created["success"] is True and created["errors"] == [] and created["id"].startswith("005")
    record = sf.User.get(created["id"])
    assert record["attributes"]["type"] == "User"
    assert (record["Name"], record["CommunityNickname"], record["IsActive"]) == ("Ada Ada", "ada", True)
    assert record["CreatedById"] == "005000000000001AAA"  # the run-as user of the connected app
    assert sf.User.update(created["id"], {"Title": "Countess", "FirstName": ""}) == 204
    updated = sf.User.get(created["id"])
    assert (updated["Title"], updated["FirstName"], updated["Name"]) == ("Countess", None, "Ada")
    by_username = sf.User.get_by_custom_id("Username", "ADA@contoso.example")
    assert by_username["Id"] == created["id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.User.get("005000000000009AAA")


def test_create_and_update_errors(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    assert rest_error(lambda: sf.User.create({"LastName": "Nobody", "Username": "nobody@contoso.example"})) == [
        {
            "message": "Required fields are missing: [Email, Alias, TimeZoneSidKey, LocaleSidKey, EmailEncodingKey, "
            "ProfileId, LanguageLocaleKey]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": [
                "Email",
                "Alias",
                "TimeZoneSidKey",
                "LocaleSidKey",
                "EmailEncodingKey",
                "ProfileId",
                "LanguageLocaleKey",
            ],
        }
    ]
    error = rest_error(lambda: sf.User.create(new_user("alex.wilber")))[0]
    assert error["errorCode"] == "DUPLICATE_USERNAME" and error["fields"] == ["Username"]
    error = rest_error(lambda: sf.User.create(new_user("mars", TimeZoneSidKey="Mars/Olympus")))[0]
    assert error["message"] == "Time Zone: bad value for restricted picklist field: Mars/Olympus"
    error = rest_error(lambda: sf.User.create(new_user("foo", Foo="bar")))[0]
    assert (error["errorCode"], error["message"]) == ("INVALID_FIELD", "No such column 'Foo' on sobject of type User")
    error = rest_error(lambda: sf.User.update("005000000000002AAA", {"Email": "broken"}))[0]
    assert error == {
        "message": "Email: invalid email address: broken",
        "errorCode": "INVALID_EMAIL_ADDRESS",
        "fields": ["Email"],
    }
    error = rest_error(lambda: sf.User.update("005000000000002AAA", {"LastName": "x" * 81}))[0]
    assert error["errorCode"] == "STRING_TOO_LONG"
    error = rest_error(lambda: sf.User.delete("005000000000002AAA"))[0]
    assert error["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


def test_upsert_by_username(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    body = {k: v for k, v in new_user("grace").items() if k != "Username"}
    assert sf.User.upsert("Username/grace@contoso.example", body) == 201
    assert sf.User.upsert("Username/grace@contoso.example", {"Title": "Admiral"}) == 200
    found = sf.query("SELECT Title FROM User WHERE Username = 'grace@contoso.example'")
    assert [r["Title"] for r in found["records"]] == ["Admiral"]


def test_licence_limit_and_deactivation_through_rest(sandbox: SandboxProcess) -> None:
    fixture = copy.deepcopy(sandbox.org)
    fixture["user_licenses"][0]["TotalLicenses"] = 3  # two already used
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()
    sf = login(sandbox)
    sf.User.create(new_user("third"))
    error = rest_error(lambda: sf.User.create(new_user("fourth")))[0]
    assert (error["errorCode"], error["message"]) == ("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")
    sf.User.update("005000000000002AAA", {"IsActive": False})
    assert sf.User.create(new_user("fourth"))["success"] is True
    licence = sf.query("SELECT UsedLicenses, TotalLicenses FROM UserLicense WHERE Name = 'Salesforce'")
    assert licence["records"][0]["UsedLicenses"] == 3
    state = sandbox.salesforce.get("/_sandbox/state").json()
    megan = next(u for u in state["users"] if u["Id"] == "005000000000002AAA")
    assert megan["IsActive"] is False


def test_fault_rules_answer_in_salesforce_shape(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    rules = [
        {"method": "GET", "path_regex": "/query", "status": 503, "times": 1},
        {"method": "GET", "path_regex": "/query", "status": 500, "times": 1},
        {"method": "GET", "path_regex": "/query", "status": 403, "times": 1},
    ]
    sandbox.salesforce.put("/_sandbox/faults", json=rules).raise_for_status()
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.status == 503 and caught.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.status == 500 and caught.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.query("SELECT Id FROM User")["totalSize"] == 2
    sandbox.salesforce.put("/_sandbox/faults", json=[{"path_regex": "/sobjects/", "status": 401}]).raise_for_status()
    direct = Salesforce(
        instance_url=sandbox.salesforce_url, session_id=sf.session_id, version="62.0", session=http_session(sandbox)
    )
    with pytest.raises(SalesforceExpiredSession) as expired:
        direct.User.get("005000000000002AAA")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_unknown_resources_are_not_found(sandbox: SandboxProcess) -> None:
    sf = login(sandbox)
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.restful("nothing/here")
    assert caught.value.content == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.describe()
    profile = sf.Profile.get(STANDARD)
    assert (profile["Name"], profile["UserLicenseId"]) == ("Standard User", "100000000000001AAA")
