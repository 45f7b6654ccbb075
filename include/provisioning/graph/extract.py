"""Extract: the users assigned to the app (directly or through nested groups), their roles
and the attributes the mapping needs, as the USERS frame (model.py).

Full mode reads everything; incremental mode follows the saved ``users/delta`` link and
emits only what changed. Both re-read the assignment list, because membership and
assignment changes never appear in ``users/delta``.

How the request count stays low (target: 2.5 Graph requests per 1,000 users for an initial
sync): the independent sequences of pages — assignments, each assigned group's transitive
members, the user listing or the delta round — advance together, their calls packed into
``$batch`` envelopes (batch.py), so the envelope count is about the longest sequence.

Full mode first takes ``users/delta?$deltatoken=latest`` so that changes made while it reads
are seen by the next incremental cycle (replaying them is harmless). It starts listing
``/users`` at 999 a page alongside the assignments; once the assignments are known it keeps
listing only if that is cheaper than fetching the remaining assigned users by id
(``/users?$filter=id in (15 ids)``, 20 to an envelope) — a tenant where few users are
assigned is read by id, a tenant where most are is listed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.provisioning.errors import UnknownUserError
from include.provisioning.gc_pause import collector_paused
from include.provisioning.graph.assignments import AssignmentCollector, RoleCatalog, UserRoles
from include.provisioning.graph.batch import Call, Runner
from include.provisioning.graph.client import GraphClient, GraphReply
from include.provisioning.graph.frame import frame_of_columns, graph_attributes, scope_reason_of, select_clause
from include.provisioning.graph.user_attributes import select_properties
from include.provisioning.graph.user_pages import UserPages
from include.provisioning.model import Mode, QuarantinedUser
from include.provisioning.slices import AssignmentWindow

PAGE_SIZE = 999
IDS_PER_FILTER = 15
"""Graph's default limit of values in ``id in (...)``."""
USERS_PER_BATCH = IDS_PER_FILTER * GraphClient.BATCH_LIMIT
BY_ID_WITHOUT_COUNT = 5000
EXPIRED_DELTA_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})
PROGRESS_INTERVAL = 1.0
SEND_TURNS = 8
"""Event loop turns a round gets before the last round's pages are taken: its envelopes are written
after 4 or 5 (measured at 250,000 users: httpx, anyio and TLS each yield once or twice)."""
ASSIGNMENT_SELECT = "id,appRoleId,principalId,principalType,principalDisplayName,createdDateTime"
"""What an appRoleAssignment is read with, wherever it is read from."""


class DeltaTokenExpired(Exception):  # noqa: N818 (the name the cycle code uses)
    """The saved delta link is no longer valid; only a full read can start over."""


@dataclass
class Extraction:
    users: pd.DataFrame
    """USERS frame: assigned users (in scope or not) plus known users that left scope."""
    mode: Mode
    """FULL or INCREMENTAL, as actually done (AUTO resolved, fallbacks applied)."""
    delta_link: str | None
    """Save this once the cycle's results are stored; the next incremental cycle starts there."""
    quarantined: list[QuarantinedUser] = field(default_factory=list)
    """Users whose app roles cannot be resolved; they are not in ``users``."""
    fell_back: str | None = None
    """Why an incremental request became a full read."""
    requests: dict[str, int] = field(default_factory=dict)
    """Graph requests of this extraction by kind (client.GraphClient.requests)."""


def _query(path: str, params: Mapping[str, str]) -> str:
    """Graph's query options keep their ``$`` and readable commas; everything else is encoded."""
    return path + "?" + urlencode(params, quote_via=quote, safe="$,()")


def _id_filter(ids: Sequence[str]) -> str:
    return "id in (" + ",".join("'" + i.replace("'", "''") + "'" for i in ids) + ")"


def _same_roles(before: Sequence[str], now: list[str]) -> bool:
    """Role sets are equal (the snapshot may hold them in another order or container)."""
    if type(before) is list and before == now:
        return True
    return set(before) == set(now)


def wanted_ids(assigned: Collection[str], known: Collection[str], also_fetch: Collection[str]) -> set[str]:
    """The users a read reports: everyone assigned to the app, plus the users this product
    manages (``known``: they may be leaving scope) and the escrow retries that are due, assigned
    or not. One rule for the whole tenant and for one user (provision on demand)."""
    return {*assigned, *known, *also_fetch}


class _Pager:
    """One sequence of pages: where it stands and what to do with each page."""

    def __init__(
        self,
        kind: str,
        url: str,
        on_page: Callable[[dict[str, Any]], None],
        *,
        on_error: Callable[[GraphReply], bool] | None = None,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
        deferred: bool = False,
        first: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kind = kind
        self.follow = follow
        self.deferred = deferred
        """Its pages may be taken (``on_page``) while the next round is served (``_Reader.read``):
        taking one adds no call and changes nothing the next round is made of."""
        self.first = first
        """What must be done with a deferred page before the next round is made (e.g. starting
        the sequences it reveals), as soon as it is parsed; ``on_page`` does the rest later."""
        self.next_url: str | None = url
        self.on_page = on_page
        self.on_error = on_error
        self.headers = headers
        self.in_flight = False
        self.pages = 0
        self.last: dict[str, Any] = {}

    @property
    def done(self) -> bool:
        return self.next_url is None and not self.in_flight

    def call(self) -> Call | None:
        if self.in_flight or self.next_url is None:
            return None
        self.in_flight = True
        return Call(self.next_url, self.kind, headers=self.headers, tag=self)

    def stop(self) -> None:
        """Read no further pages (the page in flight, if any, is still taken)."""
        self.next_url = None


def _to_group(item: Mapping[str, Any]) -> bool:
    """An appRoleAssignment to a group (``AssignmentCollector.add_assignments``' test)."""
    return item.get("principalType") == "Group"


def _take(backlog: Sequence[tuple[_Pager, dict[str, Any]]]) -> None:
    """Hand each page of ``backlog`` to its pager, in order."""
    for pager, body in backlog:
        pager.on_page(body)


async def _while_taking(
    sending: Coroutine[Any, Any, list[tuple[Call, GraphReply]]], backlog: Sequence[tuple[_Pager, dict[str, Any]]]
) -> list[tuple[Call, GraphReply]]:
    """Await the round ``sending``, taking ``backlog`` (``_take``) once its envelopes are sent.

    The round runs as a task; it is given :data:`SEND_TURNS` turns of the event loop, which
    get its envelopes written to their connections, then the backlog is taken here while Graph
    serves them (a reply that arrives meanwhile waits in the socket). The pages are taken in this
    thread: a worker thread (tried) competes with the event loop for the interpreter lock while
    the reply is read, and cost more CPU. A round that needs more turns is only overlapped less:
    the results are the same. If taking fails, the round is cancelled and the failure raised; if
    the round fails, that is raised once the backlog is taken."""
    if not backlog:
        return await sending
    round_task = asyncio.ensure_future(sending)
    for _ in range(SEND_TURNS):
        await asyncio.sleep(0)
    try:
        _take(backlog)
    except BaseException:
        round_task.cancel()
        await asyncio.gather(round_task, return_exceptions=True)
        raise
    return await round_task


class _Reader:
    """What full and incremental reads share: the loop, the assignments and the results."""

    def __init__(
        self,
        client: GraphClient,
        *,
        service_principal_id: str,
        select: Sequence[str],
        known: Mapping[str, Sequence[str]],
        also_fetch: Collection[str],
        progress: Callable[[str], None] | None,
        window: AssignmentWindow | None = None,
        evaluated: Collection[str] = (),
    ) -> None:
        self.client = client
        self.sp_id = service_principal_id
        self.attributes = graph_attributes(select)
        self.properties = select_properties(self.attributes)
        """The Graph properties that hold ``attributes`` (what ``$select`` names, but ``id``)."""
        self.select = select_clause(self.attributes)
        self.known = known
        self.also_fetch = set(also_fetch)
        self.progress = progress
        self.window = window
        self.evaluated = evaluated
        self.pagers: list[_Pager] = []
        self.assignments = AssignmentCollector()
        self.catalog: RoleCatalog | None = None
        self.records = UserPages(self.attributes)
        """The users read so far (their ``attributes``), page by page in Arrow (user_pages.py)."""
        self.delta_link: str | None = None
        self._phase_one_over = False
        self._last_progress = 0.0
        self._last_line: str | None = None

    # --- the loop ---------------------------------------------------------------------------

    async def read(self) -> None:
        """Page through every sequence until none has a page left.

        Graph (or the sandbox) serving a round and this process taking the pages of the last one
        would otherwise take turns, one of them idle. So a page is only parsed before the next
        round is sent (its next link is needed); the pages of deferred pagers (user records,
        group members, users' assignments: the heavy part) are then taken while that round is
        served (``_while_taking``). They are taken in the order they came, each before anything
        that reads them: the next backlog, the end of phase one, the end of the read. The rounds
        are the same as when every page was taken at once, so are the request counts.
        """
        runner = Runner(self.client)
        backlog: list[tuple[_Pager, dict[str, Any]]] = []
        while True:
            calls = self._next_calls(backlog)
            if not calls and runner.idle:
                break
            finished = await _while_taking(runner.round(calls), backlog)
            backlog = []
            for call, reply in finished:
                pager: _Pager = call.tag
                pager.in_flight = False
                if reply.ok and isinstance(reply.body, dict):
                    pager.pages += 1
                    pager.last = reply.body
                    following = pager.follow and pager.next_url is not None
                    pager.next_url = reply.body.get("@odata.nextLink") if following else None
                    if pager.deferred:
                        if pager.first is not None:
                            pager.first(reply.body)
                        backlog.append((pager, reply.body))
                    else:
                        pager.on_page(reply.body)
                elif pager.on_error is not None and pager.on_error(reply):
                    pager.next_url = None
                else:
                    raise self.client.request_error(pager.kind, self.client.absolute(call.url), reply)
            self._report()
        _take(backlog)
        self._report(final=True)

    def _next_calls(self, backlog: list[tuple[_Pager, dict[str, Any]]]) -> list[Call]:
        """The next round's calls; phase one ends here, once its pages are all taken."""
        if not self._phase_one_over and self._phase_one_done():
            _take(backlog)
            backlog.clear()
            self._phase_one_over = True
            self.after_phase_one()
        return [call for pager in self.pagers if (call := pager.call()) is not None]

    def add(self, pager: _Pager) -> _Pager:
        self.pagers.append(pager)
        return pager

    def _phase_one_done(self) -> bool:
        return all(p.done for p in self.pagers if p.kind != "users_list")

    def after_phase_one(self) -> None:
        """Assignments (and delta) are complete: decide which users to read."""

    def _report(self, final: bool = False) -> None:
        """Say where the read is, at most every :data:`PROGRESS_INTERVAL` seconds and once more at
        the end; never the same line twice in a row (the end of a read that just reported, or a
        read that had nothing new to say, would repeat it)."""
        if self.progress is None:
            return
        now = time.monotonic()
        if not final and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        line = self.status_line()
        if line != self._last_line:
            self._last_line = line
            self.progress(line)

    def status_line(self) -> str:
        members = sum(len(m) for m in self.assignments.members.values())
        return (
            f"assignments: {self.assignments.assignment_count:,}; "
            f"group members: {members:,} in {len(self.assignments.groups):,} groups"
        )

    # --- assignments ------------------------------------------------------------------------

    def start_service_principal(self) -> None:
        """The app's roles (id → value), which every way of reading assignments resolves with."""
        sp_url = _query(f"/servicePrincipals/{self.sp_id}", {"$select": "id,appId,appRoles,displayName"})
        self.add(_Pager("service_principal", sp_url, self._on_service_principal, follow=False))

    def start_assignments(self) -> None:
        self.start_service_principal()
        url = _query(
            f"/servicePrincipals/{self.sp_id}/appRoleAssignedTo",
            {"$select": ASSIGNMENT_SELECT, "$top": str(PAGE_SIZE)},
        )
        self.add(
            _Pager("assignments", url, self._on_other_assignments, deferred=True, first=self._on_group_assignments)
        )

    def _on_service_principal(self, body: dict[str, Any]) -> None:
        self.catalog = RoleCatalog.from_service_principal(body)

    def _on_other_assignments(self, body: dict[str, Any]) -> None:
        """A page's assignments but those to groups (``_on_group_assignments`` took them): users'
        and service principals' (the collector counts and ignores these)."""
        self.assignments.add_assignments(item for item in body.get("value") or [] if not _to_group(item))

    def _on_group_assignments(self, body: dict[str, Any]) -> None:
        """A page's assignments to groups, at once: each group seen for the first time starts the
        sequence of its members' pages."""
        groups = [item for item in body.get("value") or [] if _to_group(item)]
        for group_id, _name in self.assignments.add_assignments(groups):
            url = _query(
                f"/groups/{group_id}/transitiveMembers/microsoft.graph.user",
                {"$select": "id", "$top": str(PAGE_SIZE)},
            )
            self.add(
                _Pager(
                    "group_members",
                    url,
                    lambda page, gid=group_id: self.assignments.add_members(
                        gid, [str(m["id"]) for m in page.get("value") or [] if m.get("id")]
                    ),
                    # A group deleted after the assignment list was read assigns nobody.
                    on_error=lambda reply: reply.status == 404,
                    deferred=True,
                )
            )

    def resolved_roles(self) -> dict[str, UserRoles]:
        if self.catalog is None:
            raise RuntimeError("the service principal was not read")
        return self.assignments.resolve(self.catalog)

    # --- users ------------------------------------------------------------------------------

    def fetch_by_id(self, ids: Collection[str]) -> None:
        ordered = sorted(ids)
        for start in range(0, len(ordered), IDS_PER_FILTER):
            chunk = ordered[start : start + IDS_PER_FILTER]
            url = _query("/users", {"$filter": _id_filter(chunk), "$select": self.select})
            self.add(_Pager("users_by_id", url, self._on_users, deferred=True))

    def _on_users(self, body: dict[str, Any]) -> None:
        self.records.add(body.get("value") or [])

    def build(
        self, ids: Collection[str], roles: Mapping[str, UserRoles], removed: Mapping[str, str]
    ) -> tuple[pd.DataFrame, list[QuarantinedUser]]:
        """The USERS frame of ``ids`` in id order, and the users whose roles cannot be resolved.

        One pass over the ids decides each user's roles and reason; the attributes are then taken
        from the pages read (``UserPages.take``, column by column in Arrow), so no per-user object
        is made for them (frame.frame_of_columns). The pages are let go once taken: a reader
        builds once."""
        kept: list[str] = []
        role_lists: list[Sequence[str]] = []
        vias: list[str | None] = []
        assigned_flags: list[bool] = []
        gone: list[str | None] = []
        problems: list[tuple[str, list[str]]] = []
        with collector_paused():
            for user_id in sorted(ids):
                assigned = roles.get(user_id)
                if assigned is not None and assigned.problems:
                    problems.append((user_id, list(assigned.problems)))
                    continue
                kept.append(user_id)
                gone.append(removed.get(user_id))
                assigned_flags.append(assigned is not None)
                if assigned is None:
                    role_lists.append(())
                    vias.append(None)
                else:
                    role_lists.append(assigned.roles)
                    vias.append(assigned.via)
            positions = self.records.positions(kept)
            read = positions.is_valid().to_pylist()
            # A user Graph reports removed (delta) has no record, whatever was read of them.
            removed_mask = pa.array([reason is not None for reason in gone], type=pa.bool_())
            positions = pc.if_else(removed_mask, pa.scalar(None, pa.int64()), positions)
            quarantined = self._quarantined(problems)
            values = self.records.take(positions)
            self.records = UserPages(self.attributes)  # taken: the pages go before the frame is made
            enabled = values["accountEnabled"]
            enabled_list = enabled if isinstance(enabled, list) else enabled.to_pylist()
            reasons = [
                scope_reason_of(assigned=a, read=r, enabled=e, removed=g)
                for a, r, e, g in zip(assigned_flags, read, enabled_list, gone, strict=True)
            ]
            frame = frame_of_columns(kept, values, role_lists, vias, reasons)
            return frame, quarantined

    def _quarantined(self, problems: list[tuple[str, list[str]]]) -> list[QuarantinedUser]:
        """``QuarantinedUser`` of each (id, reasons), with the UPN and display name Graph returned
        (None if none)."""
        if not problems:
            return []
        taken = self.records.take(self.records.positions([user_id for user_id, _ in problems]))
        upns, names = (
            column if isinstance(column, list) else column.to_pylist()
            for column in (taken["userPrincipalName"], taken["displayName"])
        )
        return [
            QuarantinedUser(user_id, upn, reasons, name)
            for (user_id, reasons), upn, name in zip(problems, upns, names, strict=True)
        ]


class _FullRead(_Reader):
    def start(self) -> None:
        self.start_assignments()
        delta = _query("/users/delta", {"$select": self.select, "$deltatoken": "latest"})
        self._delta = self.add(_Pager("delta", delta, lambda body: None))
        count = _query("/users", {"$select": "id", "$top": "1", "$count": "true"})
        self.total: int | None = None
        self.add(_Pager("users_count", count, self._on_count, headers={"ConsistencyLevel": "eventual"}, follow=False))
        listing = _query("/users", {"$select": self.select, "$top": str(PAGE_SIZE)})
        self._listing = self.add(_Pager("users_list", listing, self._on_listing, deferred=True))
        self.listed = 0
        self.strategy = "list"
        self.wanted: set[str] = set()

    def _on_count(self, body: dict[str, Any]) -> None:
        count = body.get("@odata.count")
        self.total = int(count) if isinstance(count, int | float) else None

    def _on_listing(self, body: dict[str, Any]) -> None:
        page = body.get("value") or []
        self.listed += len(page)
        if not self._phase_one_over:
            self._on_users(body)  # who is wanted is not known yet: keep every user for now
            return
        self.records.add(page, wanted=self.wanted)

    def after_phase_one(self) -> None:
        self.delta_link = self._delta.last.get("@odata.deltaLink")
        self.roles = self.resolved_roles()
        if self.window is not None:
            # A slice (slices.py): its users only; nobody outside it is read, let alone left.
            chosen = self.window.select(self.assignments.assigned_since(), self.evaluated)
            self.roles = {uid: roles for uid, roles in self.roles.items() if uid in chosen}
            self.wanted = set(self.roles) | (self.also_fetch & chosen)
        else:
            self.wanted = wanted_ids(self.roles, self.known, self.also_fetch)
        # Users listed before the assignments were known but not wanted: drop them now.
        self.records.keep_only(self.wanted)
        if self._listing.done:
            return
        unseen = self.records.missing(self.wanted)
        by_id_requests = math.ceil(len(unseen) / USERS_PER_BATCH)
        if self.total is not None:
            pages_left = math.ceil(max(0, self.total - self.listed) / PAGE_SIZE)
        else:  # Graph gave no count: read a few users by id, keep listing for many
            pages_left = by_id_requests if len(unseen) <= BY_ID_WITHOUT_COUNT else 0
        if by_id_requests <= pages_left:
            self.strategy = "by id"
            self._listing.stop()
            self.fetch_by_id(unseen)

    def status_line(self) -> str:
        total = f"/{self.total:,}" if self.total is not None else ""
        fetched = len(self.records) if self.strategy == "by id" else self.listed
        return f"{super().status_line()}; users: {fetched:,}{total} ({self.strategy})"

    async def run(self) -> tuple[pd.DataFrame, list[QuarantinedUser]]:
        self.start()
        await self.read()
        return self.build(self.wanted, self.roles, {})


class _OneUserRead(_Reader):
    """Provision on demand: one user and their assignments, never the tenant.

    Round one (one ``$batch``): the service principal (its roles), ``GET /users/{key}`` (404: the
    user does not exist), the user's own ``appRoleAssignments`` to this app (``$filter=resourceId eq
    {id}``; Graph also returns those of groups the user is a *direct* member of, which the group
    reads below cover with nested groups too, so only ``principalType`` User is kept) and the
    user's ``transitiveMemberOf/microsoft.graph.group``. Round two: each of those groups' own
    ``appRoleAssignments`` to this app, so the user's groups are intersected with the groups
    assigned to the app without reading the app's assignment list (one entry per assigned user).
    The grants then go through the same ``AssignmentCollector`` as a full read, so the roles, the
    path ("direct", "group:<name>") and the unresolvable-role reasons are the cycle's own.
    """

    def start(self, key: str) -> None:
        self.start_service_principal()
        self.user_id: str | None = None
        self.group_ids: list[str] = []
        base = f"/users/{quote(key, safe='@')}"
        resource = {"$filter": f"resourceId eq {self.sp_id}", "$select": ASSIGNMENT_SELECT}
        missing = self._not_found
        self.add(_Pager("user", _query(base, {"$select": self.select}), self._on_user, on_error=missing, follow=False))
        own = _query(f"{base}/appRoleAssignments", resource)
        self.add(_Pager("user_assignments", own, self._on_own_assignments, on_error=missing))
        groups = _query(
            f"{base}/transitiveMemberOf/microsoft.graph.group",
            {"$select": "id,displayName", "$top": str(PAGE_SIZE), "$count": "true"},
        )
        # Graph asks for ConsistencyLevel and $count with an OData cast on transitiveMemberOf.
        headers = {"ConsistencyLevel": "eventual"}
        self.add(_Pager("member_of", groups, self._on_groups, on_error=missing, headers=headers))

    @staticmethod
    def _not_found(reply: GraphReply) -> bool:
        """A 404 ends that read: no such user (``run`` says so), or a group deleted since the
        membership was read (it assigns nobody, as in a full read). Anything else is raised."""
        return reply.status == 404

    def _on_user(self, body: dict[str, Any]) -> None:
        user_id = body.get("id")
        if user_id:
            self.user_id = str(user_id)
            self.records.add([body])

    def _on_own_assignments(self, body: dict[str, Any]) -> None:
        own = [item for item in body.get("value") or [] if item.get("principalType") == "User"]
        self.assignments.add_assignments(own)

    def _on_groups(self, body: dict[str, Any]) -> None:
        self.group_ids += [str(group["id"]) for group in body.get("value") or [] if group.get("id")]

    def after_phase_one(self) -> None:
        resource = {"$filter": f"resourceId eq {self.sp_id}", "$select": ASSIGNMENT_SELECT}
        for group_id in dict.fromkeys(self.group_ids):
            url = _query(f"/groups/{group_id}/appRoleAssignments", resource)
            self.add(_Pager("group_assignments", url, self._group_page(group_id), on_error=self._not_found))

    def _group_page(self, group_id: str) -> Callable[[dict[str, Any]], None]:
        def on_page(body: dict[str, Any]) -> None:
            grants = [i for i in body.get("value") or [] if i.get("principalType") == "Group"]
            if grants and self.user_id is not None:
                self.assignments.add_assignments(grants)
                self.assignments.add_members(group_id, [self.user_id])

        return on_page

    def status_line(self) -> str:
        return f"user {'found' if self.user_id else 'not read yet'}; groups: {len(self.group_ids):,}"

    async def run(
        self, key: str, known_of: Callable[[str], Mapping[str, Sequence[str]]]
    ) -> tuple[pd.DataFrame, list[QuarantinedUser]]:
        """The USERS frame of the one user (empty when ``wanted_ids`` would not report them:
        unassigned and unknown to this product), and the user if their roles cannot be resolved.
        ``known_of(id)`` gives what the state store knows of that id (id → roles last applied).
        Raises ``UnknownUserError`` when Entra ID has no such user."""
        self.start(key)
        await self.read()
        if self.user_id is None:
            raise UnknownUserError(key)
        roles = self.resolved_roles()
        wanted = wanted_ids(roles, known_of(self.user_id), self.also_fetch) & {self.user_id}
        return self.build(wanted, roles, {})


class _IncrementalRead(_Reader):
    def start(self, delta_link: str) -> None:
        self.changed: dict[str, dict[str, Any]] = {}
        self.removed: dict[str, str] = {}
        self.start_assignments()
        self._delta = self.add(_Pager("delta", delta_link, self._on_delta, on_error=self._delta_error))

    def _on_delta(self, body: dict[str, Any]) -> None:
        for item in body.get("value") or []:
            user_id = item.get("id")
            if not user_id:
                continue
            user_id = str(user_id)
            removed = item.get("@removed")
            if removed is not None:
                self.removed[user_id] = "deleted" if (removed or {}).get("reason") == "deleted" else "changed"
                self.changed.pop(user_id, None)
            else:
                self.changed[user_id] = item
                self.removed.pop(user_id, None)

    @staticmethod
    def _delta_error(reply: GraphReply) -> bool:
        if reply.status == 410 or reply.error_code in EXPIRED_DELTA_CODES:
            raise DeltaTokenExpired(f"{reply.status} {reply.error_code or 'Gone'}")
        return False

    def _complete(self, item: Mapping[str, Any]) -> bool:
        """Graph may return only the changed properties of an updated user; such an item
        cannot stand for the whole user and is re-read by id. The check is on the selected Graph
        properties (``onPremisesExtensionAttributes``, not ``extensionAttribute1``). A directory
        extension the user has no value for is absent too, so such a user is re-read by id."""
        return all(name in item for name in self.properties)

    def after_phase_one(self) -> None:
        self.delta_link = self._delta.last.get("@odata.deltaLink")
        self.roles = self.resolved_roles()
        roles, known = self.roles, self.known
        emit: set[str] = {uid for uid in self.changed if uid in roles or uid in known}
        emit |= {uid for uid in self.removed if uid in roles or uid in known}
        for uid, now in roles.items():  # newly assigned, or another role set than applied
            before = known.get(uid)
            if before is None or not _same_roles(before, now.roles):
                emit.add(uid)
        emit |= {uid for uid, before in known.items() if uid not in roles and len(before)}  # unassigned
        emit |= self.also_fetch
        self.emit = emit
        fetch = set()
        complete: list[dict[str, Any]] = []
        for uid in emit:
            if uid in self.removed:
                continue
            item = self.changed.get(uid)
            if item is not None and self._complete(item):
                complete.append(item)
            else:
                fetch.add(uid)
        self.records.add(complete)
        self.fetch_by_id(fetch)

    def status_line(self) -> str:
        return (
            f"{super().status_line()}; delta: {len(self.changed):,} changed, {len(self.removed):,} removed "
            f"in {self._delta.pages:,} pages"
        )

    async def run(self, delta_link: str) -> tuple[pd.DataFrame, list[QuarantinedUser]]:
        self.start(delta_link)
        await self.read()
        return self.build(self.emit, self.roles, self.removed)


async def extract(
    client: GraphClient,
    *,
    service_principal_id: str,
    select: list[str],
    mode: Mode,
    delta_link: str | None,
    known: Mapping[str, Sequence[str]],
    also_fetch: Collection[str] = (),
    progress: Callable[[str], None] | None = None,
    window: AssignmentWindow | None = None,
    evaluated: Collection[str] = (),
    user: str | None = None,
    known_of: Callable[[str], Mapping[str, Sequence[str]]] | None = None,
) -> Extraction:
    """Read the assigned users of ``service_principal_id`` into the USERS frame.

    ``known``: Entra id → role values last applied, for every user this product manages
    (``[]`` for users last seen out of scope); incremental mode compares against it to find
    assignment and role changes, and both modes report known users that left scope.
    ``also_fetch``: ids to include whatever changed (escrow retries).
    ``window``: read only the users of this slice (slices.py; full mode only), ``evaluated`` being
    the ids earlier cycles evaluated. Known users outside it are not reported as leaving scope.
    ``user``: read that one user only (userPrincipalName or id; provision on demand, a full read
    of one user: see ``_OneUserRead``), ``known_of(id)`` then standing for ``known``. Raises
    ``UnknownUserError`` when Entra ID has no such user.
    """
    before = dict(client.requests)
    common = {
        "service_principal_id": service_principal_id,
        "select": select,
        "known": known,
        "also_fetch": also_fetch,
        "progress": progress,
    }
    fell_back: str | None = None
    if user is not None:
        one = _OneUserRead(client, **common)
        users, quarantined = await one.run(user, known_of or (lambda user_id: {}))
        return Extraction(users, Mode.FULL, None, quarantined, None, _requests_since(client, before))
    if window is not None:  # a slice is always a full read of its users
        mode, delta_link = Mode.FULL, None
    if mode == Mode.AUTO:
        mode = Mode.INCREMENTAL if delta_link else Mode.FULL
    if mode == Mode.INCREMENTAL and not delta_link:
        fell_back = "no saved delta link"
        mode = Mode.FULL
    elif mode == Mode.INCREMENTAL and delta_link and client.relative(delta_link) is None:
        # e.g. a sandbox restarted on another port, or a connection moved to another cloud
        fell_back = f"the saved delta link is not on {client.settings.base_url}"
        mode = Mode.FULL
    result: tuple[pd.DataFrame, list[QuarantinedUser]] | None = None
    link: str | None = None
    if mode == Mode.INCREMENTAL and delta_link:
        reader = _IncrementalRead(client, **common)
        try:
            result = await reader.run(delta_link)
            link = reader.delta_link
        except DeltaTokenExpired as exc:
            fell_back = f"delta token expired ({exc})"
            mode = Mode.FULL
    if result is None:
        full = _FullRead(client, **common, window=window, evaluated=evaluated)
        result = await full.run()
        link = full.delta_link
    users, quarantined = result
    return Extraction(users, mode, link, quarantined, fell_back, _requests_since(client, before))


def _requests_since(client: GraphClient, before: Mapping[str, int]) -> dict[str, int]:
    """The client's requests by kind since ``before`` (a copy of ``client.requests``)."""
    return {k: v - before.get(k, 0) for k, v in client.requests.items() if v - before.get(k, 0)}
