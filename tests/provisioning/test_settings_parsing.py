"""One parser for yes/no and TLS-verify settings (issue 8, case 7), used by every connection and option."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.provisioning.graph.client import GraphSettings
from include.provisioning.salesforce.client import SalesforceSettings
from include.provisioning.settings import ConnectionSettings, SettingsError, SyncOptions, parse_bool, parse_verify


@pytest.mark.parametrize(("text", "value"), [("on", True), ("Yes", True), ("1", True), ("OFF", False), ("no", False)])
def test_yes_no_words(text: str, value: bool) -> None:
    assert parse_bool(text, "X") is value
    assert parse_verify(text, "X") is value


@pytest.mark.parametrize("typo", ["flase", "ture", "2", "enabled"])
def test_an_unknown_word_is_an_error_naming_the_setting(typo: str) -> None:
    with pytest.raises(SettingsError, match=f"^provisioning_import_roles must be true or false .*got '{typo}'"):
        SyncOptions.from_lookup({"provisioning_import_roles": typo}.get)
    with pytest.raises(SettingsError, match=f"^AIRFLOW_VAR_PROVISIONING_IMPORT_ROLES must be .*got '{typo}'"):
        SyncOptions.from_env({"AIRFLOW_VAR_PROVISIONING_IMPORT_ROLES": typo})


def test_verify_is_a_word_or_an_existing_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse_verify(str(bundle), "extra.verify") == str(bundle)
    assert parse_verify(None, "extra.verify") is None and parse_verify("  ", "extra.verify") is None
    with pytest.raises(SettingsError, match=r"extra\.verify='/nowhere/ca\.pem' is neither true/false nor"):
        parse_verify("/nowhere/ca.pem", "extra.verify")


def test_both_clients_read_verify_on_as_true() -> None:
    """``verify=on`` was a CA bundle path named "on" for Salesforce and True for Graph."""
    assert _salesforce_verify("on") is True
    assert _graph_verify("on") is True
    assert _salesforce_verify("off") is False and _graph_verify("off") is False


def _salesforce_verify(value: str) -> object:
    conn = ConnectionSettings(
        conn_id="salesforce_default", login="u@example.com", password="p", extra={"verify": value}
    )
    return SalesforceSettings.from_connection(conn).verify


def _graph_verify(value: str) -> object:
    conn = ConnectionSettings(
        conn_id="msgraph_default", login="app", password="s", extra={"tenant_id": "t", "verify": value}
    )
    return GraphSettings.from_connection(conn).verify
