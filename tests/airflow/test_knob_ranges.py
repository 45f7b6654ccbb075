"""The Airflow side's numeric settings go through the engine's one number parser (issue 8, case 7):
the lease TTL Variable and the ``shards`` param are refused out of range, naming the value and range."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "nan"])
def test_the_lease_ttl_variable_must_be_positive_minutes(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from entra_provisioning import runtime

    from include.provisioning.settings import SettingsError

    monkeypatch.setenv("AIRFLOW_VAR_PROVISIONING_LEASE_TTL_MINUTES", raw)
    with pytest.raises(SettingsError) as refused:
        runtime.lease_ttl()
    assert str(refused.value) == f"Variable provisioning_lease_ttl_minutes={raw!r}: expected a number > 0 (minutes)"
    monkeypatch.setenv("AIRFLOW_VAR_PROVISIONING_LEASE_TTL_MINUTES", "7.5")
    assert runtime.lease_ttl() == dt.timedelta(minutes=7.5)


@pytest.mark.parametrize("shards", [0, 33, "two", 1.5])
def test_the_shards_param_is_refused_out_of_range_as_a_configuration_error(shards: object) -> None:
    from entra_provisioning import tasks

    from include.provisioning.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as refused:
        tasks._params({"shards": shards})
    assert str(refused.value) == f"param shards={shards!r}: expected a whole number from 1 to 32"
    assert tasks._params({"shards": "4"})["shards"] == 4
    assert tasks._params({})["shards"] == 1
