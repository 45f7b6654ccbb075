"""Counts of API requests by method and route, for ``GET /_sandbox/requests``.

Benchmarks and tests read these to prove request budgets (e.g. Graph requests per 1,000
users), so every request to the emulated API is counted, including ones answered by a
fault rule or by throttling, exactly as the real service would have seen them.

``total`` and ``by_route`` count HTTP requests (a ``$batch`` envelope is one); the requests
inside envelopes are counted apart, by their own route, in ``batched_by_route``, so a test can
tell which resources were read even when every read travelled in a batch.
"""

from __future__ import annotations

import threading
from collections import Counter


class RequestCounter:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._batched: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, route: str) -> None:
        with self._lock:
            self._counts[f"{method.upper()} {route}"] += 1

    def record_batched(self, method: str, route: str) -> None:
        """One request inside a ``$batch`` envelope (the envelope itself is ``record``ed)."""
        with self._lock:
            self._batched[f"{method.upper()} {route}"] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            by_route = dict(sorted(self._counts.items()))
            batched = dict(sorted(self._batched.items()))
        return {"total": sum(by_route.values()), "by_route": by_route, "batched_by_route": batched}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._batched.clear()
