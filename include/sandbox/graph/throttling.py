"""The identity and access service's throttling: resource-unit token buckets per app+tenant.

Modelled on https://learn.microsoft.com/en-us/graph/throttling-limits ("Identity and access
service limits"): each application+tenant pair has a bucket of resource units (RU) refilled
over 10 seconds — 3,500 for tenants under 50 users, 5,000 up to 500, 8,000 above — and a
write quota of 3,000 requests per 2 minutes 30 seconds. A request costs its base cost from
the published table (1 when unlisted), minus 1 with ``$select``, plus 1 with ``$expand``,
minus 1 with ``$top`` under 20, never less than 1. Every answered request carries
``x-ms-resource-unit``; ``x-ms-throttle-limit-percentage`` appears once more than 80 % of
the bucket is used; a throttled request gets 429 with ``Retry-After``,
``x-ms-throttle-scope`` (``<Scope>/<Limit>/<ApplicationId>/<TenantId>``) and
``x-ms-throttle-information``. Throttled requests are not charged. The fixture extension
``"throttle": {"limit_per_10s": N}`` overrides the RU bucket size (tests use a small one)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RU_WINDOW_SECONDS = 10.0
WRITE_QUOTA = 3000
WRITE_WINDOW_SECONDS = 150.0

# (method, path regex relative to /v1.0) -> base resource-unit cost; the published table.
_COSTS: list[tuple[str, re.Pattern[str], int]] = [
    (m, re.compile(p, re.IGNORECASE), c)
    for m, p, c in [
        ("GET", r"^/applications/?$", 2),
        ("GET", r"^/applications/[^/]+/extensionProperties/?$", 2),
        ("GET", r"^/contracts/?$", 3),
        ("POST", r"^/directoryObjects/getByIds/?$", 3),
        ("GET", r"^/domains/[^/]+/domainNameReferences/?$", 4),
        ("POST", r"^/getObjectsById/?$", 3),
        ("GET", r"^/groups/[^/]+/members(/.*)?$", 3),
        ("GET", r"^/groups/[^/]+/transitiveMembers(/.*)?$", 5),
        ("GET", r"^/oauth2PermissionGrants(/[^/]+)?/?$", 2),
        ("GET", r"^/servicePrincipals/[^/]+/appRoleAssignments/?$", 2),
        ("GET", r"^/subscribedSkus/?$", 3),
        ("GET", r"^/users/?$", 2),
    ]
]


def tenant_size_limit(user_count: int) -> int:
    """S: under 50 users, M: 50 to 500, L: above 500."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


def request_cost(method: str, path: str, options: Mapping[str, str]) -> int:
    """Resource units of one request; ``path`` is relative to ``/v1.0``."""
    method = method.upper()
    cost = 1
    for cost_method, pattern, base in _COSTS:
        if cost_method == method and pattern.search(path):
            cost = base
            break
    if options.get("select"):
        cost -= 1
    if options.get("expand"):
        cost += 1
    top = options.get("top")
    if top and top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def is_write(method: str) -> bool:
    return method.upper() in ("POST", "PATCH", "PUT", "DELETE")


def write_cost(method: str, path: str) -> int:
    # getByIds is a read sent as POST: its write cost is 0 in the published table.
    if path.lower().rstrip("/") in ("/directoryobjects/getbyids", "/getobjectsbyid"):
        return 0
    return 1 if is_write(method) else 0


class TokenBucket:
    """Continuously refilled bucket; ``take`` answers how long to wait when it is short."""

    def __init__(self, capacity: float, window_seconds: float, clock: Callable[[], float]) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / window_seconds
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def shortfall_seconds(self, cost: float) -> float:
        """0 when ``cost`` fits now, otherwise the seconds until it would."""
        self._refill()
        if self.tokens >= cost:
            return 0.0
        return (cost - self.tokens) / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= cost

    def used_fraction(self) -> float:
        return (self.capacity - self.tokens) / self.capacity


@dataclass
class Charge:
    """The outcome of charging one request: headers to add, and a retry delay when throttled."""

    cost: int
    headers: dict[str, str]
    retry_after: int | None = None


class Throttle:
    """All buckets of one tenant, keyed by application (client) id."""

    def __init__(self, tenant_id: str, limit_per_10s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenant_id = tenant_id
        self.limit = limit_per_10s
        self.clock = clock
        self._ru: dict[str, TokenBucket] = {}
        self._writes: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def charge(self, app_id: str, method: str, path: str, options: Mapping[str, str]) -> Charge:
        cost = request_cost(method, path, options)
        writes = write_cost(method, path)
        with self._lock:
            ru = self._ru.setdefault(app_id, TokenBucket(self.limit, RU_WINDOW_SECONDS, self.clock))
            # A request dearer than the whole bucket still goes through once the bucket is full.
            need = min(cost, ru.capacity)
            wait = ru.shortfall_seconds(need)
            scope_limit = "ReadWrite"
            if not wait and writes:
                wq = self._writes.setdefault(app_id, TokenBucket(WRITE_QUOTA, WRITE_WINDOW_SECONDS, self.clock))
                wait = wq.shortfall_seconds(writes)
                if wait:
                    scope_limit = "Write"
                else:
                    wq.take(writes)
            if wait:
                return Charge(
                    cost,
                    {
                        "x-ms-throttle-scope": f"Tenant_Application/{scope_limit}/{app_id}/{self.tenant_id}",
                        "x-ms-throttle-information": (
                            "WriteLimitExceeded" if scope_limit == "Write" else "ResourceUnitLimitExceeded"
                        ),
                    },
                    retry_after=max(1, math.ceil(wait)),
                )
            ru.take(need)
            headers = {"x-ms-resource-unit": str(cost)}
            used = ru.used_fraction()
            if used > 0.8:
                headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
        return Charge(cost, headers)
