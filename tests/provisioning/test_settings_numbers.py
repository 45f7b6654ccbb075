"""One parser for numeric settings, with each knob's range (issue 8, case 7: a share of 40 meant
4000 % and silently disabled the validation stop; a count of -5 held every deactivation)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from include.provisioning import cli
from include.provisioning.salesforce.client import SalesforceSettings
from include.provisioning.settings import (
    COUNT,
    SHARE,
    SYNC_OPTION_RANGES,
    ConnectionSettings,
    NumberRange,
    SettingsError,
    SyncOptions,
    connection_from_env,
    parse_number,
)

SHARE_RANGE = "expected a number from 0 to 1 (a share: 0.4 is 40 %)"
COUNT_RANGE = "expected a whole number ≥ 0"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("max_quarantine_share", "40", SHARE_RANGE),
        ("max_quarantine_share", "-0.1", SHARE_RANGE),
        ("deletion_threshold_count", "-5", COUNT_RANGE),
        ("deletion_threshold_count", "five", COUNT_RANGE),
        ("deletion_threshold_count", "2.5", COUNT_RANGE),
        ("deletion_threshold_share", "20", SHARE_RANGE),
        ("quarantine_min_failures", "-1", COUNT_RANGE),
        ("quarantine_failure_share", "1.5", SHARE_RANGE),
        ("quarantine_failure_share", "nan", SHARE_RANGE),
        ("quarantine_failure_count", "lots", COUNT_RANGE),
        ("quarantine_auth_failures", "0", "expected a whole number ≥ 1"),
        ("quarantine_backoff_hours", "-1", "expected a number ≥ 0"),
        ("quarantine_backoff_hours", "inf", "expected a number ≥ 0"),
        ("quarantine_backoff_hours", "", "expected a number ≥ 0"),
    ],
)
def test_each_knob_refuses_values_outside_its_range_naming_setting_value_and_range(
    name: str, raw: str, expected: str
) -> None:
    variable = f"AIRFLOW_VAR_PROVISIONING_{name.upper()}"
    with pytest.raises(SettingsError) as refused:
        SyncOptions.from_env({variable: raw})
    assert str(refused.value) == f"{variable}={raw!r}: {expected}"
    # the same through Airflow Variables (the DAG's engine), named as Airflow names them
    with pytest.raises(SettingsError) as refused:
        SyncOptions.from_lookup({f"provisioning_{name}": raw}.get)
    assert str(refused.value) == f"provisioning_{name}={raw!r}: {expected}"


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("max_quarantine_share", "0", 0.0),
        ("max_quarantine_share", "1", 1.0),
        ("deletion_threshold_share", " 0.25 ", 0.25),
        ("deletion_threshold_count", "0", 0),
        ("deletion_threshold_count", "5.0", 5),
        ("quarantine_failure_count", "1e3", 1000),
        ("quarantine_auth_failures", "1", 1),
        ("quarantine_backoff_hours", "0", 0.0),
        ("quarantine_backoff_hours", "1.5", 1.5),
    ],
)
def test_values_at_the_bounds_are_taken_with_the_fields_type(name: str, raw: str, value: float) -> None:
    read = getattr(SyncOptions.from_env({f"AIRFLOW_VAR_PROVISIONING_{name.upper()}": raw}), name)
    assert read == value
    assert type(read) is type(getattr(SyncOptions(), name))


def test_every_numeric_option_has_a_range() -> None:
    """A knob added to SyncOptions without a range would be read without bounds (or not at all)."""
    numeric = {f.name for f in dataclasses.fields(SyncOptions) if type(getattr(SyncOptions(), f.name)) in (int, float)}
    assert numeric == set(SYNC_OPTION_RANGES)
    assert SYNC_OPTION_RANGES["max_quarantine_share"] is SHARE
    assert SYNC_OPTION_RANGES["deletion_threshold_count"] is COUNT


def test_every_bad_knob_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        SyncOptions.from_env(
            {
                "AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_SHARE": "20",
                "AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_COUNT": "-5",
            }
        )
    assert str(refused.value) == (
        f"AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_COUNT='-5': {COUNT_RANGE}; "
        f"AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_SHARE='20': {SHARE_RANGE}"
    )


@pytest.mark.parametrize("value", [True, None, [1], "0x10", "1,5"])
def test_the_parser_refuses_what_is_no_number(value: object) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_number(value, "X", COUNT)
    assert str(refused.value) == f"X={value!r}: {COUNT_RANGE}"


def test_ranges_describe_themselves() -> None:
    assert NumberRange(minimum=0, above_minimum=True).describe() == "a number > 0"
    assert NumberRange(whole=True, minimum=1, maximum=32).describe() == "a whole number from 1 to 32"
    assert NumberRange(minimum=None, maximum=2.5).describe() == "a number ≤ 2.5"
    assert NumberRange(minimum=None).describe() == "a number"
    assert parse_number(7, "X", COUNT) == 7 and parse_number(0.5, "X", SHARE) == 0.5


@pytest.mark.parametrize("raw", ["0", "-3", "abc"])
def test_a_salesforce_timeout_must_be_a_positive_number(raw: str) -> None:
    conn = ConnectionSettings(conn_id="salesforce_default", login="u@x.example", password="p", extra={"timeout": raw})
    with pytest.raises(SettingsError) as refused:
        SalesforceSettings.from_connection(conn)
    assert (
        str(refused.value) == f"connection 'salesforce_default': extra.timeout={raw!r}: expected a number > 0 (seconds)"
    )
    good = dataclasses.replace(conn, extra={"timeout": "12.5"})
    assert SalesforceSettings.from_connection(good).timeout == 12.5


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (json.dumps({"host": "h", "port": 70000}), "70000"),
        (json.dumps({"host": "h", "port": "abc"}), "'abc'"),
        (json.dumps({"host": "h", "port": -1}), "-1"),
        (json.dumps({"host": "h", "port": 443.5}), "443.5"),
        ("https://h:abc/", "'abc'"),
        ("https://u:p@h:99999/", "'99999'"),
    ],
)
def test_a_connection_port_is_a_tcp_port(raw: str, shown: str) -> None:
    with pytest.raises(SettingsError) as refused:
        connection_from_env("msgraph_default", {"AIRFLOW_CONN_MSGRAPH_DEFAULT": raw})
    assert (
        str(refused.value)
        == f"AIRFLOW_CONN_MSGRAPH_DEFAULT: port={shown}: expected a whole number from 0 to 65535 (0: none)"
    )


def test_connection_ports_that_are_fine_still_read() -> None:
    env = {"AIRFLOW_CONN_A": json.dumps({"host": "h", "port": "8443"}), "AIRFLOW_CONN_B": "https://u:p@[::1]:8443/x"}
    assert connection_from_env("a", env).port == 8443
    assert connection_from_env("b", env).port == 8443
    assert connection_from_env("b", {"AIRFLOW_CONN_B": "https://[::1]/x"}).port is None
    # 0 is no port, as Airflow stores a connection without one (scripts/demo_services.sh writes it)
    assert connection_from_env("a", {"AIRFLOW_CONN_A": json.dumps({"port": 0})}).port is None
    assert connection_from_env("b", {"AIRFLOW_CONN_B": "https://h:0/x"}).port is None


def test_validate_config_exits_2_naming_the_knob(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_VAR_PROVISIONING_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGRAPH_DEFAULT", json.dumps({"login": "app", "password": "s", "extra": {"tenant_id": "t"}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps({"login": "u@x.example", "password": "p"}))
    assert cli.main(["validate-config"]) == 0  # the same settings with every knob at its default
    assert capsys.readouterr().out.endswith("configuration is valid\n")
    monkeypatch.setenv("AIRFLOW_VAR_PROVISIONING_MAX_QUARANTINE_SHARE", "40")
    assert cli.main(["validate-config"]) == 2
    out, err = capsys.readouterr()
    assert err == f"error: AIRFLOW_VAR_PROVISIONING_MAX_QUARANTINE_SHARE='40': {SHARE_RANGE}\n"
    assert "4000%" not in out and out.endswith("1 problem(s) found\n")
