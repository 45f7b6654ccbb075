"""The mutable heart of one Graph emulator: the tenant plus what lives beside it.

``load`` builds a complete new ``Tenant`` (and its throttle buckets) before swapping it in,
so ``PUT /_sandbox/state`` (run in a worker thread) never exposes a half-loaded tenant to
requests served meanwhile. Tokens survive a reload (a test's credential keeps working when
the fixture is reset); delta tokens do not (the change log they point into is gone).
"""

from __future__ import annotations

from typing import Any

from include.sandbox.graph.delta import DeltaEngine
from include.sandbox.graph.models import Tenant
from include.sandbox.graph.odata import PropertyResolver
from include.sandbox.graph.schema import USER_PROPERTIES
from include.sandbox.graph.throttling import Throttle, tenant_size_limit
from include.sandbox.graph.tokens import TokenStore


class GraphState:
    def __init__(self, fixture: dict[str, Any], base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = TokenStore()
        self.delta = DeltaEngine(self.base_url)
        self.tenant: Tenant
        self.throttle: Throttle
        self.load(fixture)

    def load(self, fixture: dict[str, Any]) -> None:
        tenant = Tenant(fixture)
        limit = tenant.extensions.get("throttle", {}).get("limit_per_10s") or tenant_size_limit(
            tenant.active_user_count
        )
        throttle = Throttle(tenant.tenant_id, int(limit))
        self.tenant, self.throttle = tenant, throttle

    def dump(self) -> dict[str, Any]:
        return self.tenant.dump()

    def user_resolver(self) -> PropertyResolver:
        resolver = PropertyResolver("microsoft.graph.user", USER_PROPERTIES)
        resolver.add(self.tenant.user_properties)
        return resolver
