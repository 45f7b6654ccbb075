"""Logging in (SOAP, client credentials, JWT bearer), sessions, API limits and versions,
driven by simple-salesforce against the running sandbox."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import httpx
import jwt
import orjson
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.jwt_keys import key_and_certificate
from tests.sandbox_process import SandboxProcess


def http_session(sandbox: SandboxProcess) -> requests.Session:
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    return session


def conn(sandbox: SandboxProcess) -> dict[str, Any]:
    return json.loads(sandbox.settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])


def soap_login(sandbox: SandboxProcess, password_suffix: str = "", version: str | None = None) -> Salesforce:
    c = conn(sandbox)
    return Salesforce(
        username=c["login"],
        password=c["password"] + password_suffix,
        security_token=c["extra"]["security_token"],
        domain=c["extra"]["domain"],
        version=version or c["extra"]["version"],
        session=http_session(sandbox),
    )


def put_org(sandbox: SandboxProcess, change: Any) -> None:
    fixture = copy.deepcopy(sandbox.org)
    change(fixture)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()


# --- SOAP login -----------------------------------------------------------------------------


def test_soap_login_gives_a_working_session(sandbox: SandboxProcess) -> None:
    sf = soap_login(sandbox)
    assert sf.sf_instance == sandbox.salesforce_url.removeprefix("https://")
    assert sf.session_id.startswith("00D000000000001!")
    me = sf.query("SELECT Id, Username FROM User WHERE Username = 'integration@contoso.example.sfdc'")
    assert me["records"][0]["Id"] == "005000000000001AAA"


def test_soap_login_response_shape(sandbox: SandboxProcess) -> None:
    c = conn(sandbox)
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
        f"<n1:username>{c['login']}</n1:username>"
        f"<n1:password>{c['password']}{c['extra']['security_token']}</n1:password>"
        "</n1:login></env:Body></env:Envelope>"
    )
    answer = sandbox.salesforce.post("/services/Soap/u/62.0", content=body, headers={"SOAPAction": "login"})
    assert answer.status_code == 200
    text = answer.text
    assert f"<serverUrl>{sandbox.salesforce_url}/services/Soap/u/62.0/00D000000000001</serverUrl>" in text
    assert "<userId>005000000000001AAA</userId>" in text
    assert "<organizationId>00D000000000001EAA</organizationId>" in text
    assert "<passwordExpired>false</passwordExpired>" in text
    assert "<userName>integration@contoso.example.sfdc</userName>" in text


def test_bad_password_is_invalid_login(sandbox: SandboxProcess) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(sandbox, password_suffix="-wrong")
    assert caught.value.code == "INVALID_LOGIN"
    assert caught.value.auth_message == "Invalid username, password, security token; or user locked out."
    raw = sandbox.salesforce.post(
        "/login.salesforce.com/services/Soap/u/62.0",
        content="<Envelope><Body><login><username>nobody@x.example</username><password>x</password></login>"
        "</Body></Envelope>",
    )
    assert raw.status_code == 500
    assert "<faultcode>sf:INVALID_LOGIN</faultcode>" in raw.text
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in raw.text


def test_soap_login_can_be_disabled_and_is_gone_from_v65(sandbox: SandboxProcess) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(sandbox, version="65.0")
    assert caught.value.code == "INVALID_OPERATION"
    assert "not available in the API version specified (65.0)" in caught.value.auth_message
    put_org(sandbox, lambda f: f.update(soap_login_enabled=False))
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(sandbox)
    assert caught.value.code == "INVALID_OPERATION"
    assert caught.value.auth_message.startswith("SOAP API login() is disabled by default in this org.")


def test_inactive_user_cannot_log_in(sandbox: SandboxProcess) -> None:
    put_org(sandbox, lambda f: f["users"][0].update(IsActive=False))
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(sandbox)
    assert caught.value.code == "INVALID_LOGIN"


# --- OAuth ----------------------------------------------------------------------------------


def test_client_credentials_flow(sandbox: SandboxProcess) -> None:
    c = conn(sandbox)
    sf = Salesforce(
        consumer_key=c["extra"]["consumer_key"],
        consumer_secret=c["extra"]["consumer_secret"],
        domain=c["extra"]["domain"],
        version="62.0",
        session=http_session(sandbox),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 2
    token = sandbox.salesforce.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(c["extra"]["consumer_key"], c["extra"]["consumer_secret"]),
    ).json()
    assert set(token) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}
    assert token["instance_url"] == sandbox.salesforce_url
    assert token["token_type"] == "Bearer"
    assert token["id"].endswith("/id/00D000000000001EAA/005000000000001AAA")


def test_client_credentials_errors(sandbox: SandboxProcess) -> None:
    c = conn(sandbox)
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            consumer_key=c["extra"]["consumer_key"],
            consumer_secret="wrong",
            domain=c["extra"]["domain"],
            session=http_session(sandbox),
        )
    assert (caught.value.code, caught.value.auth_message) == ("invalid_client", "invalid client credentials")
    answer = sandbox.salesforce.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "unknown", "client_secret": "x"},
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    answer = sandbox.salesforce.post("/services/oauth2/token", data={"grant_type": "authorization_code"})
    assert answer.json()["error"] == "unsupported_grant_type"


def test_username_password_flow(sandbox: SandboxProcess) -> None:
    c = conn(sandbox)
    sf = Salesforce(
        username=c["login"],
        password=c["password"] + c["extra"]["security_token"],
        consumer_key=c["extra"]["consumer_key"],
        consumer_secret=c["extra"]["consumer_secret"],
        domain=c["extra"]["domain"],
        version="62.0",
        session=http_session(sandbox),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 2
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            username=c["login"],
            password="wrong",
            consumer_key=c["extra"]["consumer_key"],
            consumer_secret=c["extra"]["consumer_secret"],
            domain=c["extra"]["domain"],
            session=http_session(sandbox),
        )
    assert (caught.value.code, caught.value.auth_message) == ("invalid_grant", "authentication failure")


def test_jwt_bearer_flow(sandbox: SandboxProcess) -> None:
    key, certificate = key_and_certificate()
    put_org(sandbox, lambda f: f["connected_apps"][0].update(jwt_certificate=certificate))
    c = conn(sandbox)
    sf = Salesforce(
        username=c["login"],
        consumer_key=c["extra"]["consumer_key"],
        privatekey=key,
        domain=c["extra"]["domain"],
        version="62.0",
        session=http_session(sandbox),
    )
    assert sf.query("SELECT Username FROM User WHERE Id = '005000000000001'")["records"][0]["Username"] == c["login"]
    other_key, _ = key_and_certificate()
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            username=c["login"],
            consumer_key=c["extra"]["consumer_key"],
            privatekey=other_key,
            domain=c["extra"]["domain"],
            session=http_session(sandbox),
        )
    assert (caught.value.code, caught.value.auth_message) == ("invalid_grant", "invalid assertion")
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            username="nobody@contoso.example",
            consumer_key=c["extra"]["consumer_key"],
            privatekey=key,
            domain=c["extra"]["domain"],
            session=http_session(sandbox),
        )
    assert caught.value.code == "invalid_grant"
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"iss": c["extra"]["consumer_key"], "sub": c["login"], "aud": "https://login.salesforce.com"}
    for extra, description in [
        ({"aud": "https://evil.example", "exp": now + 60}, "audience is invalid"),
        ({"exp": now - 60}, "expired authorization code"),
    ]:
        assertion = jwt.encode({**claims, **extra}, key, algorithm="RS256")
        answer = sandbox.salesforce.post(
            "/services/oauth2/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        )
        assert answer.status_code == 400
        assert answer.json() == {"error": "invalid_grant", "error_description": description}


# --- sessions and limits ---------------------------------------------------------------------


def test_expired_sessions_are_refused(sandbox: SandboxProcess) -> None:
    sf = soap_login(sandbox)
    direct = Salesforce(
        instance_url=sandbox.salesforce_url, session_id=sf.session_id, version="62.0", session=http_session(sandbox)
    )
    assert direct.query("SELECT COUNT() FROM User")["totalSize"] == 2
    assert sandbox.salesforce.post("/_sandbox/sessions/expire").json() == {"expired": 1}
    with pytest.raises(SalesforceExpiredSession) as caught:
        direct.query("SELECT COUNT() FROM User")
    assert caught.value.status == 401
    assert caught.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    # A client that logged in itself logs in again on INVALID_SESSION_ID (REST path only).
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 2
    assert sf.session_id != direct.session_id
    unknown = httpx.get(
        f"{sandbox.salesforce_url}/services/data/v62.0/limits",
        headers={"Authorization": "Bearer 00D000000000001!forged"},
        verify=sandbox.ca_bundle,
    )
    assert unknown.status_code == 401 and unknown.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_session_timeout_from_fixture(sandbox: SandboxProcess) -> None:
    put_org(sandbox, lambda f: f.update(session_seconds=0))
    sf = soap_login(sandbox)
    direct = Salesforce(
        instance_url=sandbox.salesforce_url, session_id=sf.session_id, version="62.0", session=http_session(sandbox)
    )
    with pytest.raises(SalesforceExpiredSession):
        direct.query("SELECT COUNT() FROM User")


def test_daily_api_limit(sandbox: SandboxProcess) -> None:
    put_org(sandbox, lambda f: f.update(daily_api_requests=3))
    sf = soap_login(sandbox)
    limits = sf.limits()  # request 1
    assert limits["DailyApiRequests"] == {"Max": 3, "Remaining": 2}
    assert "DailyBulkV2QueryJobs" in limits and "DailyBulkApiBatches" in limits
    sf.query("SELECT Id FROM User")  # request 2
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 3
    sf.query("SELECT Id FROM User")  # request 3
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_versions_and_resources(sandbox: SandboxProcess) -> None:
    versions = sandbox.salesforce.get("/services/data/").json()
    assert versions[0]["version"] == "31.0" and versions[-1] == {
        "label": "Winter '25",
        "url": "/services/data/v62.0",
        "version": "62.0",
    }
    sf = soap_login(sandbox)
    resources = sf.restful("", method="GET")
    assert resources["query"] == "/services/data/v62.0/query"
    assert resources["sobjects"] == "/services/data/v62.0/sobjects"
    too_new = Salesforce(
        instance_url=sandbox.salesforce_url, session_id=sf.session_id, version="70.0", session=http_session(sandbox)
    )
    with pytest.raises(SalesforceResourceNotFound) as caught:
        too_new.query("SELECT Id FROM User")
    assert caught.value.content == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
