"""Counts of API requests by method and route, for ``GET /_sandbox/requests``.

Benchmarks and tests read these to prove request budgets (e.g. Graph requests per 1,000
users), so every request to the emulated API is counted, including ones answered by a
fault rule or by throttling, exactly as the real service would have seen them.
"""

from __future__ import annotations

import threading
from collections import Counter


class RequestCounter:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, route: str) -> None:
        with self._lock:
            self._counts[f"{method.upper()} {route}"] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            by_route = dict(sorted(self._counts.items()))
        return {"total": sum(by_route.values()), "by_route": by_route}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
