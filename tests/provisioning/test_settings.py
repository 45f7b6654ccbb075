"""Connection settings are read the way Airflow reads them (JSON or URI AIRFLOW_CONN_*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.provisioning.settings import (
    DEFAULT_STATE_URL,
    SettingsError,
    SyncOptions,
    connection_from_env,
    read_env_file,
    state_url_from_env,
)
from include.sandbox.core.envfile import write_env_file


def test_json_connection_with_extra_as_object_or_string() -> None:
    conn = {"conn_type": "msgraph", "login": "cid", "password": "s", "port": "9443", "extra": {"tenant_id": "t"}}
    env = {"AIRFLOW_CONN_MSGRAPH_DEFAULT": json.dumps(conn)}
    parsed = connection_from_env("msgraph_default", env)
    assert (parsed.login, parsed.password, parsed.port, parsed.extra) == ("cid", "s", 9443, {"tenant_id": "t"})
    conn["extra"] = json.dumps({"tenant_id": "u"})
    assert connection_from_env("msgraph_default", {"AIRFLOW_CONN_MSGRAPH_DEFAULT": json.dumps(conn)}).extra == {
        "tenant_id": "u"
    }


def test_uri_connection_decodes_credentials_and_query_extras() -> None:
    env = {
        "AIRFLOW_CONN_SALESFORCE_DEFAULT": "salesforce://user%40x.com:p%40ss@host:1234/?security_token=T&version=62.0"
    }
    parsed = connection_from_env("salesforce_default", env)
    assert (parsed.conn_type, parsed.login, parsed.password) == ("salesforce", "user@x.com", "p@ss")
    assert (parsed.host, parsed.port, parsed.extra) == ("host", 1234, {"security_token": "T", "version": "62.0"})


def test_missing_and_malformed_connections_say_what_to_set() -> None:
    with pytest.raises(SettingsError, match="set AIRFLOW_CONN_MSGRAPH_DEFAULT"):
        connection_from_env("msgraph_default", {})
    with pytest.raises(SettingsError, match="not valid JSON"):
        connection_from_env("msgraph_default", {"AIRFLOW_CONN_MSGRAPH_DEFAULT": "{oops"})
    conn = connection_from_env("msgraph_default", {"AIRFLOW_CONN_MSGRAPH_DEFAULT": '{"login": "x"}'})
    with pytest.raises(SettingsError, match=r"lacks password, extra\.tenant_id"):
        conn.require("login", "password", "extra.tenant_id")


def test_state_url_defaults_to_sqlite_and_accepts_postgres() -> None:
    assert state_url_from_env({}) == DEFAULT_STATE_URL
    pg = {"AIRFLOW_CONN_PROVISIONING_STATE": "postgresql://postgres@127.0.0.1:5432/test"}
    assert state_url_from_env(pg) == "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    as_json = json.dumps({"conn_type": "postgres", "host": "db", "login": "u", "password": "p", "schema": "s"})
    assert state_url_from_env({"AIRFLOW_CONN_PROVISIONING_STATE": as_json}) == "postgresql+psycopg2://u:p@db/s"


def test_sync_options_from_airflow_variables() -> None:
    options = SyncOptions.from_env(
        {"AIRFLOW_VAR_PROVISIONING_MAX_QUARANTINE_SHARE": "0.25", "AIRFLOW_VAR_PROVISIONING_IMPORT_ROLES": "true"}
    )
    assert (options.max_quarantine_share, options.import_roles) == (0.25, True)
    assert options.escrow_schedule_hours[:4] == (6, 12, 24, 24)
    assert sum(options.escrow_schedule_hours) == 6 + 12 + 24 * 28
    with pytest.raises(SettingsError, match="DELETION_THRESHOLD_COUNT"):
        SyncOptions.from_env({"AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_COUNT": "many"})


def test_env_file_written_by_the_sandbox_reads_back(tmp_path: Path) -> None:

    values = {"AIRFLOW_CONN_X": json.dumps({"login": "it's", "extra": {"a": "b c"}}), "PLAIN": "v"}
    write_env_file(tmp_path / "s.env", values)
    assert read_env_file(tmp_path / "s.env") == values
    (tmp_path / "bad.env").write_text("JUSTAWORD\n")
    with pytest.raises(SettingsError, match=r"bad.env:1: expected KEY=VALUE"):
        read_env_file(tmp_path / "bad.env")
