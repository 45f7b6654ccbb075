"""Entra's quarantine of the provisioning job: the rules (mass failures, consecutive authentication
failures) and its state in the store (one notice per reason, lifted by success or a reset)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from include.provisioning import quarantine_rules
from include.provisioning.model import CycleStatus, CycleSummary, Mode
from include.provisioning.settings import SyncOptions
from include.provisioning.state import StateStore

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
SUMMARY = CycleSummary("c1", Mode.FULL, CycleStatus.SUCCEEDED, T0)
DEFAULTS = SyncOptions()


def test_entra_defaults_need_5000_failures_and_40_percent_or_40000() -> None:
    assert quarantine_rules.after_cycle(SUMMARY, 4999, 5000, DEFAULTS) is None  # below the floor
    assert quarantine_rules.after_cycle(SUMMARY, 5000, 20000, DEFAULTS) is None  # 25 %, under 40,000
    verdict = quarantine_rules.after_cycle(SUMMARY, 5000, 10000, DEFAULTS)
    assert verdict is not None and verdict.code == "EncounteredEscrowProportionThreshold"
    assert "5,000 of 10,000 writes failed (50.0%" in verdict.reason
    assert quarantine_rules.after_cycle(SUMMARY, 40001, 1_000_000, DEFAULTS) is not None  # 4 %, but > 40,000
    assert quarantine_rules.after_cycle(SUMMARY, 0, 0, DEFAULTS) is None


def test_thresholds_come_from_the_options() -> None:
    strict = dataclasses.replace(DEFAULTS, quarantine_min_failures=2, quarantine_failure_share=0.5)
    assert quarantine_rules.after_cycle(SUMMARY, 2, 3, strict) is not None
    assert quarantine_rules.after_cycle(SUMMARY, 2, 4, strict) is None  # 50 % is not above 50 %


def test_consecutive_authentication_failures() -> None:
    assert quarantine_rules.after_auth_failure(1, "AADSTS7000215", DEFAULTS) is None
    verdict = quarantine_rules.after_auth_failure(2, "AADSTS7000215: Invalid client secret", DEFAULTS)
    assert verdict is not None and verdict.code == "AuthenticationFailed" and "AADSTS7000215" in verdict.reason


def test_options_read_from_variables() -> None:
    options = SyncOptions.from_env(
        {
            "AIRFLOW_VAR_PROVISIONING_QUARANTINE_MIN_FAILURES": "3",
            "AIRFLOW_VAR_PROVISIONING_QUARANTINE_BACKOFF_HOURS": "2",
        }
    )
    assert options.quarantine_min_failures == 3 and options.quarantine_backoff_hours == 2.0


def test_the_store_holds_automatic_runs_until_the_backoff_and_notifies_once_per_reason(store: StateStore) -> None:
    assert not store.job_quarantine().active
    backoff = dt.timedelta(hours=24)
    assert store.quarantine_job("EncounteredEscrowProportionThreshold", "3 of 3", backoff=backoff, now=T0)
    store.job_quarantine_notified("EncounteredEscrowProportionThreshold")
    later = T0 + dt.timedelta(hours=1)
    assert not store.quarantine_job("EncounteredEscrowProportionThreshold", "4 of 4", backoff=backoff, now=later)
    quarantine = store.job_quarantine()
    assert quarantine.since == T0 and quarantine.next_attempt_at == later + backoff
    assert quarantine.holds(later + dt.timedelta(hours=23)) and not quarantine.holds(later + backoff)
    assert "next attempt" in quarantine.describe()
    assert store.quarantine_job("AuthenticationFailed", "secret expired", backoff=backoff, now=later)  # new reason
    lifted = store.lift_job_quarantine()
    assert lifted.reason_code == "AuthenticationFailed" and not store.job_quarantine().active


def test_authentication_failures_count_until_lifted(store: StateStore) -> None:
    assert store.record_auth_failure(T0) == 1
    assert store.record_auth_failure(T0) == 2
    store.lift_job_quarantine()
    assert store.record_auth_failure(T0) == 1
