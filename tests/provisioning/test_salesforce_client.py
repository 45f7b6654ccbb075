"""Logging in to Salesforce (client credentials, JWT bearer, SOAP) through simple-salesforce
against the sandbox, settings read like the Airflow provider, errors, re-login, retries."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import certifi
import orjson
import pytest

from include.provisioning.salesforce.client import (
    CLIENT_CREDENTIALS,
    JWT_BEARER,
    SOAP_LOGIN,
    SalesforceLoginError,
    SalesforceSettings,
    connect,
    request_kind,
)
from include.provisioning.salesforce.org import fetch_users
from include.provisioning.salesforce.settings import settings_from_env
from include.provisioning.settings import ConnectionSettings, SettingsError
from tests.jwt_keys import key_and_certificate
from tests.sandbox_process import SandboxProcess


def sandbox_conn(sandbox: SandboxProcess, **changes: Any) -> ConnectionSettings:
    """The sandbox's Salesforce connection; ``changes`` replace fields, ``extra`` entries set to
    None are removed."""
    raw = json.loads(sandbox.settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    extra = dict(raw["extra"])
    for key, value in changes.pop("extra", {}).items():
        if value is None:
            extra.pop(key, None)
        else:
            extra[key] = value
    fields = {"login": raw.get("login"), "password": raw.get("password"), **changes}
    return ConnectionSettings(conn_id="salesforce_default", conn_type="salesforce", extra=extra, **fields)


def without_connected_app(sandbox: SandboxProcess, **changes: Any) -> SalesforceSettings:
    extra = {"consumer_key": None, "consumer_secret": None, **changes.pop("extra", {})}
    return SalesforceSettings.from_connection(sandbox_conn(sandbox, extra=extra, **changes))


def put_org(sandbox: SandboxProcess, change: Any) -> None:
    fixture = copy.deepcopy(sandbox.org)
    change(fixture)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()


# --- settings ---------------------------------------------------------------------------------


def test_settings_read_the_airflow_provider_fields(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conn = ConnectionSettings(
        conn_id="sf",
        login="api@acme.example",
        password="pw",
        extra={
            "extra__salesforce__security_token": "TOKEN",
            "instance_url": "https://acme.my.salesforce.com",
            "version": "v61.0",
            "verify": str(bundle),
            "timeout": "30",
        },
    )
    settings = SalesforceSettings.from_connection(conn)
    assert (settings.username, settings.password, settings.security_token) == ("api@acme.example", "pw", "TOKEN")
    assert (settings.domain, settings.version, settings.verify, settings.timeout) == (
        "acme.my",
        "61.0",
        str(bundle),
        30.0,
    )
    assert settings.auth_method() == SOAP_LOGIN
    assert "pw" not in repr(settings) and "TOKEN" not in repr(settings)


def test_login_method_order_prefers_client_credentials_then_jwt() -> None:
    base = {"conn_id": "sf", "username": "u@x.example", "password": "p", "domain": "x.my"}
    assert SalesforceSettings(**base, consumer_key="k", consumer_secret="s", private_key="K").auth_method() == (
        CLIENT_CREDENTIALS
    )
    assert SalesforceSettings(**base, consumer_key="k", private_key_file_path="/k.pem").auth_method() == JWT_BEARER
    assert SalesforceSettings(**base).auth_method() == SOAP_LOGIN


def test_incomplete_connection_names_what_each_method_needs() -> None:
    with pytest.raises(SettingsError) as caught:
        SalesforceSettings.from_connection(ConnectionSettings(conn_id="sf_prod", extra={"consumer_key": "k"}))
    message = str(caught.value)
    assert "'sf_prod'" in message
    assert "consumer_secret" in message and "private_key" in message and "security_token" in message


def test_client_credentials_need_a_my_domain() -> None:
    settings = SalesforceSettings(conn_id="sf", consumer_key="key-1", consumer_secret="secret-1", domain="login")
    with pytest.raises(SalesforceLoginError) as caught:
        connect(settings)
    assert "My Domain" in str(caught.value) and "key-1" in str(caught.value)
    assert "secret-1" not in str(caught.value)


def test_requests_are_counted_by_kind() -> None:
    base = "https://x.my.salesforce.com/services"
    assert request_kind(f"{base}/oauth2/token") == "login"
    assert request_kind(f"{base}/Soap/u/62.0") == "login"
    assert request_kind(f"{base}/data/v62.0/jobs/ingest/750x/batches") == "bulk_ingest"
    assert request_kind(f"{base}/data/v62.0/jobs/query/750x/results") == "bulk_query"
    assert request_kind(f"{base}/data/v62.0/query/?q=SELECT") == "rest_query"
    assert request_kind(f"{base}/data/v62.0/sobjects/User/005x") == "rest"


# --- the three ways in ------------------------------------------------------------------------


def test_client_credentials_login_from_the_sandbox_env_file(sandbox: SandboxProcess) -> None:
    session = connect(settings_from_env(sandbox.settings))
    assert session.method == CLIENT_CREDENTIALS
    assert session.instance_url == sandbox.salesforce_url
    assert session.http.trust_env is False
    assert session.http.verify == sandbox.ca_bundle
    me = session.query_all("SELECT Username FROM User WHERE Id = '005000000000001AAA'")
    assert me == [{"Username": "integration@contoso.example.sfdc"}]
    assert session.requests_by_kind() == {"login": 1, "rest_query": 1}


def test_ca_bundle_wins_over_requests_ca_bundle(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # certifi's bundle does not hold the sandbox CA: if requests read the variable, TLS would fail.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    session = connect(settings_from_env(sandbox.settings))
    assert session.query_all("SELECT Id FROM Profile WHERE Name = 'Standard User'") == [{"Id": "00e000000000001AAA"}]


def test_jwt_bearer_login_with_a_key_or_a_key_file(sandbox: SandboxProcess, tmp_path: Path) -> None:
    key, certificate = key_and_certificate()
    put_org(sandbox, lambda f: f["connected_apps"][0].update(jwt_certificate=certificate))
    settings = SalesforceSettings.from_connection(
        sandbox_conn(
            sandbox, password=None, extra={"consumer_secret": None, "security_token": None, "private_key": key}
        )
    )
    assert settings.auth_method() == JWT_BEARER
    session = connect(settings)
    assert session.query_all("SELECT Username FROM User WHERE Id = '005000000000001AAA'")[0]["Username"] == (
        settings.username
    )
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(key)
    from_file = SalesforceSettings.from_connection(
        sandbox_conn(sandbox, extra={"consumer_secret": None, "private_key_file_path": str(key_file)})
    )
    assert connect(from_file).method == JWT_BEARER
    other_key, _ = key_and_certificate()
    wrong = SalesforceSettings.from_connection(
        sandbox_conn(sandbox, extra={"consumer_secret": None, "private_key": other_key})
    )
    with pytest.raises(SalesforceLoginError) as caught:
        connect(wrong)
    message = str(caught.value)
    assert "OAuth JWT bearer" in message and "invalid_grant" in message and settings.username in message
    assert "PRIVATE KEY" not in message
    for extra in (
        {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"},
        {"private_key_file_path": str(tmp_path / "missing.pem")},
    ):
        broken = SalesforceSettings.from_connection(sandbox_conn(sandbox, extra={"consumer_secret": None, **extra}))
        with pytest.raises(SalesforceLoginError, match=r"private key .* cannot be used to sign"):
            connect(broken)


def test_soap_login_works_and_warns_that_it_is_retired(
    sandbox: SandboxProcess, caplog: pytest.LogCaptureFixture
) -> None:
    settings = without_connected_app(sandbox)
    with caplog.at_level(logging.WARNING):
        session = connect(settings)
    assert session.method == SOAP_LOGIN
    assert session.query_all("SELECT Id FROM User WHERE Username = 'megan.bowen@contoso.example'") == [
        {"Id": "005000000000002AAA"}
    ]
    assert any("retires" in record.getMessage() for record in caplog.records)


def test_wrong_password_fails_with_method_user_and_code_but_no_secret(sandbox: SandboxProcess) -> None:
    settings = without_connected_app(sandbox, password="not-the-password")
    with pytest.raises(SalesforceLoginError) as caught:
        connect(settings)
    message = str(caught.value)
    assert "SOAP login()" in message and "integration@contoso.example.sfdc" in message
    assert "INVALID_LOGIN" in message
    assert "not-the-password" not in message and "SANDBOXTOKEN" not in message


def test_wrong_consumer_secret_fails_with_oauth_code(sandbox: SandboxProcess) -> None:
    settings = SalesforceSettings.from_connection(sandbox_conn(sandbox, extra={"consumer_secret": "wrong-secret"}))
    with pytest.raises(SalesforceLoginError) as caught:
        connect(settings)
    message = str(caught.value)
    assert "OAuth client credentials" in message and "sandbox-consumer-key" in message
    assert "invalid_client" in message and "wrong-secret" not in message
    assert message.endswith(f"(check extra.consumer_key and extra.consumer_secret of connection {settings.conn_id!r})")


def test_soap_login_on_api_v65_explains_the_retirement(sandbox: SandboxProcess) -> None:
    settings = without_connected_app(sandbox, extra={"version": "65.0"})
    with pytest.raises(SalesforceLoginError) as caught:
        connect(settings)
    assert "INVALID_OPERATION" in str(caught.value) and "connected app" in str(caught.value)


# --- sessions and transient errors ------------------------------------------------------------


def test_expired_session_on_the_bulk_path_logs_in_again(sandbox: SandboxProcess) -> None:
    session = connect(settings_from_env(sandbox.settings))
    sandbox.salesforce.post("/_sandbox/sessions/expire").raise_for_status()
    frame = fetch_users(session, ["Username"])
    assert sorted(frame["Username"]) == ["integration@contoso.example.sfdc", "megan.bowen@contoso.example"]
    assert session.relogins == 1
    assert session.requests_by_kind()["login"] == 2


def test_503_answers_are_retried(sandbox: SandboxProcess) -> None:
    session = connect(settings_from_env(sandbox.settings))
    rule = {"path_regex": "/services/data/v[0-9.]+/query", "status": 503, "times": 2}
    sandbox.salesforce.put("/_sandbox/faults", json=[rule]).raise_for_status()
    assert session.query_all("SELECT Id FROM Profile WHERE Name = 'Chatter Free User'") == [
        {"Id": "00e000000000003AAA"}
    ]
    assert session.requests_by_kind()["retries"] == 2
    by_route = sandbox.requests("salesforce")["by_route"]
    assert sum(n for route, n in by_route.items() if "query" in route) == 3
