"""Fault rules of the control API (``PUT /_sandbox/faults``).

The rule format is fixed by ``docs/sandbox-fixtures.md``: first matching rule wins,
``probability`` (default 1.0) and ``times`` (default unlimited) bound a rule, ``latency_ms``
delays, ``status`` answers with the service's own error body. Randomness comes from a
seeded generator that is re-seeded whenever the rules are replaced, so a test that sets
the same rules sees the same sequence of faults.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

ALLOWED_KEYS = {"method", "path_regex", "status", "retry_after", "latency_ms", "probability", "times"}


class FaultRuleError(ValueError):
    """A posted fault rule is malformed; the message names the rule and the field."""


@dataclass
class FaultRule:
    """One rule; ``remaining`` counts down from ``times`` each time the rule fires."""

    method: str = "*"
    path_regex: str = ".*"
    status: int | None = None
    retry_after: int | None = None
    latency_ms: int = 0
    probability: float = 1.0
    times: int | None = None
    remaining: int | None = None
    pattern: re.Pattern[str] = field(default_factory=lambda: re.compile(".*"))

    @classmethod
    def from_dict(cls, index: int, raw: Any) -> FaultRule:
        if not isinstance(raw, dict):
            raise FaultRuleError(f"fault rule #{index}: expected an object, got {type(raw).__name__}")
        unknown = set(raw) - ALLOWED_KEYS
        if unknown:
            raise FaultRuleError(f"fault rule #{index}: unknown field(s) {sorted(unknown)}")
        try:
            pattern = re.compile(str(raw.get("path_regex", ".*")))
        except re.error as exc:
            raise FaultRuleError(f"fault rule #{index}: path_regex does not compile: {exc}") from exc
        status = raw.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise FaultRuleError(f"fault rule #{index}: status must be an HTTP status code, got {status!r}")
        probability = raw.get("probability", 1.0)
        if not isinstance(probability, int | float) or not 0.0 <= probability <= 1.0:
            raise FaultRuleError(f"fault rule #{index}: probability must be within 0..1, got {probability!r}")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or times < 0):
            raise FaultRuleError(f"fault rule #{index}: times must be a non-negative integer, got {times!r}")
        latency = raw.get("latency_ms", 0)
        if not isinstance(latency, int | float) or latency < 0:
            raise FaultRuleError(f"fault rule #{index}: latency_ms must be >= 0, got {latency!r}")
        retry_after = raw.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise FaultRuleError(f"fault rule #{index}: retry_after must be a non-negative integer")
        if status is None and not latency:
            raise FaultRuleError(f"fault rule #{index}: needs a status or a latency_ms")
        return cls(
            method=str(raw.get("method", "*")).upper(),
            path_regex=pattern.pattern,
            status=status,
            retry_after=retry_after,
            latency_ms=int(latency),
            probability=float(probability),
            times=times,
            remaining=times,
            pattern=pattern,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path_regex": self.path_regex}
        for key in ("status", "retry_after", "times", "remaining"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.latency_ms:
            out["latency_ms"] = self.latency_ms
        out["probability"] = self.probability
        return out


class FaultInjector:
    """Holds the current rules and decides, per request, which rule (if any) fires."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def replace(self, raw_rules: Any) -> list[FaultRule]:
        if not isinstance(raw_rules, list):
            raise FaultRuleError("fault rules must be a JSON list")
        rules = [FaultRule.from_dict(i, raw) for i, raw in enumerate(raw_rules)]
        with self._lock:
            self._rules = rules
            self._random = random.Random(self._seed)
        return rules

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching ``method`` and ``path`` that fires now, or None.

        A rule that matches but does not fire (lost its probability draw, or used up its
        ``times``) falls through to later rules, so a catch-all latency rule after a
        sometimes-429 rule still delays the requests that were not throttled.
        """
        with self._lock:
            for rule in self._rules:
                if rule.method not in ("*", method.upper()):
                    continue
                if not rule.pattern.search(path):
                    continue
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule
        return None
