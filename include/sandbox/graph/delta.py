"""``GET /users/delta``: rounds of change tracking over the tenant's change log.

How Graph behaves (https://learn.microsoft.com/en-us/graph/api/user-delta and
https://learn.microsoft.com/en-us/graph/delta-query-overview) and how it is modelled here:

- The first call (no token) returns every active user, page by page, each page with an
  absolute ``@odata.nextLink`` (``$skiptoken``) until the last one carries an
  ``@odata.deltaLink`` (``$deltatoken``). Query options (``$select``, the ``id`` scoping
  ``$filter``) are given once and live inside the tokens. ``$top`` is silently ignored and
  pages hold up to 200 users, as Graph does (fixture extension ``delta_page_size`` changes it).
- A token is a position in the change log (a monotonic sequence) plus the options. A
  later round returns users changed since that position: a user whose tracked (selected)
  properties changed, or who was created or restored, comes back with its tracked
  properties (all of them, Graph's default; only the changed ones with
  ``Prefer: return=minimal``); a soft-deleted user as ``@removed: {"reason": "changed"}``, a
  purged one as ``"deleted"``. Changes to untracked properties do not show a user, as in Graph.
  Properties never set on a user are left out of delta items (Graph: "If the property has
  never been set before it will not be included in the response at all"). Custom data as in
  ``GET /users`` (extensions.py): ``onPremisesExtensionAttributes`` whole, a directory extension
  only with a value.
- ``$deltatoken=latest`` returns no users and a deltaLink at the current position.
- Tokens expire after ``delta_token_lifetime_seconds`` (default 7 days, Graph's limit for
  directory objects), after ``POST /_sandbox/delta/expire``, and when the state is replaced
  through ``PUT /_sandbox/state``; an expired token answers 410 ``syncStateNotFound``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.extensions import user_renderer
from include.sandbox.graph.models import Tenant
from include.sandbox.graph.odata import PropertyResolver, decode_token, encode_token, parse_filter, parse_select
from include.sandbox.graph.schema import USER_DEFAULT_PROPERTIES

DEFAULT_PAGE_SIZE = 200
DEFAULT_TOKEN_LIFETIME = 7 * 24 * 3600
MAX_SCOPED_IDS = 50  # user: delta: "There is a limit of 50 filtered objects."


@dataclass
class Round:
    """Where a delta round stands: what is tracked and which slice is being paged."""

    select: list[str] | None
    ids: list[str] | None
    issued: float
    mode: str  # "full": the initial listing; "changes": the log between two positions
    start: int  # change-log position the round's changes start after (changes mode)
    end: int  # change-log position the round ends at (the next deltaLink's position)
    position: int = 0


class DeltaEngine:
    """Builds delta pages for one tenant; ``epoch`` bumps expire every outstanding token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.epoch = 0

    # --- tokens ---------------------------------------------------------------------------

    def _token(self, tenant: Tenant, rnd: Round, **extra: Any) -> str:
        payload = {"g": tenant.generation, "e": self.epoch, "t": rnd.issued, "s": rnd.select, "i": rnd.ids}
        payload.update(extra)
        return encode_token(payload)

    def _link(self, kind: str, token: str) -> str:
        return f"{self.base_url}/v1.0/users/delta?${kind}={token}"

    def _restart_location(self, select: list[str] | None) -> str:
        location = f"{self.base_url}/v1.0/users/delta?$deltatoken="
        if select:
            location += "&$select=" + quote(",".join(select), safe=",")
        return location

    def _open(self, tenant: Tenant, raw: str, kind: str) -> tuple[dict[str, Any], Round]:
        try:
            payload = decode_token(raw)
            if not isinstance(payload, dict) or "g" not in payload:
                raise ValueError("not a delta state token")
            select, ids, issued = payload.get("s"), payload.get("i"), float(payload["t"])
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request(f"Invalid {kind} value.", "BadRequest") from None
        lifetime = float(tenant.extensions.get("delta_token_lifetime_seconds", DEFAULT_TOKEN_LIFETIME))
        stale = payload["g"] != tenant.generation or payload.get("e") != self.epoch
        if stale or time.time() - issued > lifetime:
            raise errors.sync_state_not_found(self._restart_location(select))
        return payload, Round(select, ids, issued, "full", 0, 0)

    # --- the request ----------------------------------------------------------------------

    def page(
        self, tenant: Tenant, options: Mapping[str, str], resolver: PropertyResolver, minimal: bool
    ) -> dict[str, Any]:
        deltatoken = options.get("deltatoken")
        skiptoken = options.get("skiptoken")
        if skiptoken:
            payload, rnd = self._open(tenant, skiptoken, "skip token")
            rnd.mode = "changes" if payload.get("m") == "c" else "full"
            rnd.start, rnd.end, rnd.position = int(payload["a"]), int(payload["b"]), int(payload["p"])
        elif deltatoken and deltatoken.lower() != "latest":
            payload, rnd = self._open(tenant, deltatoken, "delta token")
            rnd.mode, rnd.start, rnd.end, rnd.issued = "changes", int(payload["a"]), tenant.seq, time.time()
        else:
            select = parse_select(options, resolver)
            scope = parse_filter(options, resolver, max_or=MAX_SCOPED_IDS)
            if scope is not None and scope.ids is None:
                raise errors.unsupported_query(
                    "The only supported $filter expression for delta is on the object id, e.g. id eq '{id}'."
                )
            ids = scope.ids if scope is not None else None
            rnd = Round(select, ids, time.time(), "full", tenant.seq, tenant.seq)
            if deltatoken:  # $deltatoken=latest: "sync from now", no objects
                return self._body([], self._link("deltatoken", self._token(tenant, rnd, a=rnd.end)), final=True)
        if rnd.mode == "full":
            return self._full_page(tenant, rnd)
        return self._changes_page(tenant, rnd, minimal)

    def _body(self, items: list[dict[str, Any]], link: str, *, final: bool) -> dict[str, Any]:
        key = "@odata.deltaLink" if final else "@odata.nextLink"
        return {"@odata.context": f"{self.base_url}/v1.0/$metadata#users", key: link, "value": items}

    def _page_size(self, tenant: Tenant) -> int:
        return int(tenant.extensions.get("delta_page_size", DEFAULT_PAGE_SIZE))

    def _tracked(self, rnd: Round) -> list[str]:
        return rnd.select or USER_DEFAULT_PROPERTIES

    def _full_page(self, tenant: Tenant, rnd: Round) -> dict[str, Any]:
        size = self._page_size(tenant)
        render = _renderer(self._tracked(rnd))
        items: list[dict[str, Any]] = []
        next_position: int | None = None
        if rnd.ids is not None:
            for index in range(rnd.position, len(rnd.ids)):
                if len(items) == size:
                    next_position = index
                    break
                user = tenant.active_user(rnd.ids[index])
                if user is not None:
                    items.append(render(user))
        else:
            for index, user in tenant.iter_active_users(rnd.position):
                if len(items) == size:
                    next_position = index
                    break
                items.append(render(user))
        if next_position is None:
            token = self._token(tenant, rnd, a=rnd.end)
            return self._body(items, self._link("deltatoken", token), final=True)
        token = self._token(tenant, rnd, m="f", a=rnd.start, b=rnd.end, p=next_position)
        return self._body(items, self._link("skiptoken", token), final=False)

    def _changes_page(self, tenant: Tenant, rnd: Round, minimal: bool) -> dict[str, Any]:
        changed = _changed_users(tenant, rnd.start, rnd.end, set(rnd.ids) if rnd.ids is not None else None)
        tracked = self._tracked(rnd)
        tracked_set = set(tracked)
        render = _renderer(tracked)
        size = self._page_size(tenant)
        items: list[dict[str, Any]] = []
        index = rnd.position
        while index < len(changed) and len(items) < size:
            user_id, whole, props = changed[index]
            index += 1
            user = tenant.users.get(user_id)
            if user is None:
                items.append({"id": user_id, "@removed": {"reason": "deleted"}})
            elif user_id in tenant.soft_deleted:
                items.append({"id": user_id, "@removed": {"reason": "changed"}})
            elif whole:
                items.append(render(user))
            elif props & tracked_set:
                items.append(_renderer([p for p in tracked if p in props])(user) if minimal else render(user))
        if index >= len(changed):
            token = self._token(tenant, rnd, a=rnd.end)
            return self._body(items, self._link("deltatoken", token), final=True)
        token = self._token(tenant, rnd, m="c", a=rnd.start, b=rnd.end, p=index)
        return self._body(items, self._link("skiptoken", token), final=False)


def _renderer(properties: list[str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function giving a user's delta item: the tracked ``properties`` that were ever set, custom
    data (extensions.py) as Graph shapes it (the extension attributes always, whole; a directory
    extension only with a value), then ``id``. Built once per page, not per user."""
    render = user_renderer(properties, _set_properties)

    def item(user: Mapping[str, Any]) -> dict[str, Any]:
        body = render(user)
        body["id"] = user["id"]
        return body

    return item


def _set_properties(user: Mapping[str, Any], properties: list[str]) -> dict[str, Any]:
    """The ``properties`` ever set on ``user``: Graph leaves the others out of delta items."""
    return {name: user[name] for name in properties if name != "id" and name in user}


def _changed_users(
    tenant: Tenant, start: int, end: int, scope: set[str] | None
) -> list[tuple[str, bool, frozenset[str]]]:
    """Users changed in (start, end], in order of their last change: (id, whole object, props)."""
    changes = tenant.changes
    # The log is ordered by seq and seq == index + 1, so the window is a slice.
    window = changes[max(0, start) : max(0, end)]
    merged: dict[str, tuple[bool, frozenset[str]]] = {}
    for change in window:
        if not change.kind.startswith("user"):
            continue
        if scope is not None and change.object_id not in scope:
            continue
        whole, props = merged.pop(change.object_id, (False, frozenset()))
        if change.kind != "user" or change.props is None:
            whole = True
        else:
            props = props | change.props
        merged[change.object_id] = (whole, props)
    return [(user_id, whole, props) for user_id, (whole, props) in merged.items()]
