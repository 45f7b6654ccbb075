"""Fault rules: the fixed contract of PUT /_sandbox/faults (docs/sandbox-fixtures.md)."""

from __future__ import annotations

import pytest

from include.sandbox.core.faults import FaultInjector, FaultRuleError

EXAMPLE_RULES = [
    {"method": "GET", "path_regex": "^/v1.0/users", "status": 429, "retry_after": 1, "probability": 0.2, "times": 50},
    {"method": "*", "path_regex": "jobs/ingest", "status": 503, "probability": 1.0, "times": 2},
    {"method": "*", "path_regex": ".*", "latency_ms": 200},
]


def test_first_matching_rule_wins_and_times_bounds_it() -> None:
    faults = FaultInjector(seed=7)
    faults.replace(EXAMPLE_RULES)
    first = faults.pick("POST", "/services/data/v62.0/jobs/ingest")
    second = faults.pick("PUT", "/services/data/v62.0/jobs/ingest/750x/batches")
    assert first is not None and first.status == 503
    assert second is not None and second.status == 503
    third = faults.pick("POST", "/services/data/v62.0/jobs/ingest")
    assert third is not None and third.status is None and third.latency_ms == 200


def test_method_must_match() -> None:
    faults = FaultInjector()
    faults.replace([{"method": "GET", "path_regex": "users", "status": 429}])
    assert faults.pick("POST", "/v1.0/users") is None
    rule = faults.pick("get", "/v1.0/users")
    assert rule is not None and rule.status == 429


def test_probability_is_seeded_and_repeats_after_replace() -> None:
    faults = FaultInjector(seed=3)
    rules = [{"path_regex": "users", "status": 429, "probability": 0.3}]
    faults.replace(rules)
    first_run = [faults.pick("GET", "/v1.0/users") is not None for _ in range(200)]
    faults.replace(rules)
    second_run = [faults.pick("GET", "/v1.0/users") is not None for _ in range(200)]
    assert first_run == second_run
    assert 30 < sum(first_run) < 90  # about 60 of 200


def test_rule_that_does_not_fire_falls_through_to_later_rules() -> None:
    faults = FaultInjector(seed=1)
    faults.replace([{"path_regex": "users", "status": 429, "probability": 0.0}, {"latency_ms": 5}])
    rule = faults.pick("GET", "/v1.0/users")
    assert rule is not None and rule.status is None and rule.latency_ms == 5


def test_clear_removes_all_rules() -> None:
    faults = FaultInjector()
    faults.replace([{"status": 500}])
    faults.clear()
    assert faults.pick("GET", "/anything") is None
    assert faults.rules() == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"status": 500}, "must be a JSON list"),
        (["nope"], "fault rule #0: expected an object"),
        ([{"status": 500, "colour": "red"}], "unknown field(s) ['colour']"),
        ([{"path_regex": "(", "status": 500}], "path_regex does not compile"),
        ([{"status": 999}], "status must be an HTTP status code"),
        ([{"status": 500, "probability": 1.5}], "probability must be within 0..1"),
        ([{"status": 500, "times": -1}], "times must be a non-negative integer"),
        ([{"method": "GET"}], "needs a status or a latency_ms"),
    ],
)
def test_malformed_rules_are_rejected_with_the_reason(rules: object, message: str) -> None:
    with pytest.raises(FaultRuleError) as excinfo:
        FaultInjector().replace(rules)
    assert message in str(excinfo.value)
