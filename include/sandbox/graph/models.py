"""The emulated tenant: directory objects, their indexes, Graph's rules and the change log.

Records are kept as the fixture's own dicts (no copies, no per-user objects) so a
1,000,000-user tenant costs little beyond its parsed JSON; lookups go through dicts keyed by
id and paging through an insertion-ordered id list, so no request scans the whole tenant
unless its ``$filter`` demands it.

Soft-deleted users stay in ``users`` with ``deletedDateTime`` set (a real directoryObject
property), so ``GET /_sandbox/state`` round-trips them; they are hidden from every API list.
Every change made through the control API is appended to ``changes`` with a monotonic
sequence number, which is what ``users/delta`` reads.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.extensions import custom_data_problem, is_custom_data, is_directory_extension, merged_patch
from include.sandbox.graph.schema import DEFAULT_APP_ROLE_ID

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXTENSION_KEYS = {"token_lifetime_seconds", "delta_token_lifetime_seconds", "throttle", "delta_page_size"}
FIXTURE_KEYS = {"tenant_id", "service_principal", "users", "groups", "appRoleAssignments", "clients"}


class FixtureError(ValueError):
    """The tenant fixture breaks the format or Graph's rules; the message says where."""


class ControlError(Exception):
    """A control-API request that cannot be applied (unknown id, conflict, bad body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """One entry of the change log. ``props`` names changed properties (None: whole object)."""

    seq: int
    kind: str  # user | user_soft_deleted | user_deleted | membership | assignment
    object_id: str
    props: frozenset[str] | None = None


class OrderedIndex:
    """Records by id plus their insertion order, for stable positional paging.

    Removal leaves a ``None`` hole so positions held in skip tokens stay valid.
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.order: list[str | None] = []

    def add(self, object_id: str, record: dict[str, Any]) -> None:
        self.records[object_id] = record
        self.order.append(object_id)

    def remove(self, object_id: str) -> dict[str, Any]:
        record = self.records.pop(object_id)
        for index in range(len(self.order) - 1, -1, -1):
            if self.order[index] == object_id:
                self.order[index] = None
                break
        return record

    def get(self, object_id: str) -> dict[str, Any] | None:
        return self.records.get(object_id)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def iter_from(self, position: int) -> Iterator[tuple[int, dict[str, Any]]]:
        records = self.records
        order = self.order
        for index in range(max(0, position), len(order)):
            object_id = order[index]
            if object_id is not None:
                yield index, records[object_id]

    def values(self) -> list[dict[str, Any]]:
        return [self.records[i] for i in self.order if i is not None]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise FixtureError(message)


def _positive_number(value: Any, name: str) -> None:
    _require(
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
        f"{name} must be a positive number, got {value!r}",
    )


class Tenant:
    """One tenant's directory, loaded from (and dumped to) the fixture format."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        _require(isinstance(fixture, dict), "the tenant fixture must be a JSON object")
        tenant_id = fixture.get("tenant_id")
        _require(isinstance(tenant_id, str) and tenant_id != "", "tenant_id is missing or not a string")
        self.tenant_id: str = tenant_id
        self.extensions = {k: v for k, v in fixture.items() if k not in FIXTURE_KEYS}
        self._load_extensions()
        self._load_service_principal(fixture.get("service_principal"))
        self._load_users(fixture.get("users", []))
        self._load_groups(fixture.get("groups", []))
        self._load_assignments(fixture.get("appRoleAssignments", []))
        self._load_clients(fixture.get("clients", []))
        self.generation = uuid.uuid4().hex[:12]
        self.changes: list[Change] = []
        self.seq = 0
        self.members_version = 0
        self._transitive_cache: dict[str, tuple[int, list[str]]] = {}
        self._parents: tuple[int, dict[str, list[str]]] | None = None
        self.assignments_version = 0
        self._by_principal: tuple[int, dict[str, list[tuple[int, str]]]] | None = None
        self._upn_index: dict[str, str] | None = None

    # --- loading -------------------------------------------------------------------------

    def _load_extensions(self) -> None:
        ext = self.extensions
        if "token_lifetime_seconds" in ext:
            _positive_number(ext["token_lifetime_seconds"], "token_lifetime_seconds")
        if "delta_token_lifetime_seconds" in ext:
            _positive_number(ext["delta_token_lifetime_seconds"], "delta_token_lifetime_seconds")
        if "delta_page_size" in ext:
            _positive_number(ext["delta_page_size"], "delta_page_size")
        if "throttle" in ext:
            throttle = ext["throttle"]
            _require(isinstance(throttle, dict), 'throttle must be an object like {"limit_per_10s": 100}')
            if "limit_per_10s" in throttle:
                _positive_number(throttle["limit_per_10s"], "throttle.limit_per_10s")

    def _load_service_principal(self, sp: Any) -> None:
        _require(isinstance(sp, dict), "service_principal is missing or not an object")
        for key in ("id", "appId"):
            _require(isinstance(sp.get(key), str) and sp[key], f"service_principal.{key} is missing")
        self.sp: dict[str, Any] = sp
        self.application_object_id: str | None = sp.get("application_object_id")
        roles = sp.setdefault("appRoles", [])
        _require(isinstance(roles, list), "service_principal.appRoles must be a list")
        seen: set[str] = set()
        for index, role in enumerate(roles):
            where = f"service_principal.appRoles[{index}]"
            _require(isinstance(role, dict), f"{where} must be an object")
            role_id = role.get("id")
            _require(isinstance(role_id, str) and bool(GUID.match(role_id)), f"{where}.id must be a GUID")
            _require(role_id not in seen, f"{where}.id {role_id} is used twice")
            seen.add(role_id)

    def _load_users(self, users: Any) -> None:
        _require(isinstance(users, list), "users must be a list")
        self.users = OrderedIndex()
        self.soft_deleted: set[str] = set()
        self.user_properties: set[str] = set()
        upns: set[str] = set()
        records = self.users.records
        order = self.users.order
        props = self.user_properties
        for index, user in enumerate(users):
            if not isinstance(user, dict):
                raise FixtureError(f"users[{index}] must be an object")
            user_id = user.get("id")
            if not isinstance(user_id, str) or not user_id:
                raise FixtureError(f"users[{index}] has no 'id'")
            if user_id in records:
                raise FixtureError(f"users[{index}]: duplicate user id {user_id}")
            upn = user.get("userPrincipalName")
            if isinstance(upn, str):
                folded = upn.lower()
                if folded in upns:
                    raise FixtureError(f"users[{index}]: userPrincipalName {upn} is used twice")
                upns.add(folded)
            records[user_id] = user
            order.append(user_id)
            props.update(user.keys())
            if user.get("deletedDateTime") is not None:
                self.soft_deleted.add(user_id)
        if any(map(is_custom_data, props)):  # checked only when some user has custom data
            for index, user in enumerate(users):
                problem = custom_data_problem(user)
                if problem:
                    raise FixtureError(f"users[{index}].{problem}")

    def _load_groups(self, groups: Any) -> None:
        _require(isinstance(groups, list), "groups must be a list")
        self.groups: dict[str, dict[str, Any]] = {}
        for index, group in enumerate(groups):
            _require(isinstance(group, dict), f"groups[{index}] must be an object")
            group_id = group.get("id")
            _require(isinstance(group_id, str) and bool(group_id), f"groups[{index}] has no 'id'")
            _require(group_id not in self.groups, f"groups[{index}]: duplicate group id {group_id}")
            _require(group_id not in self.users, f"groups[{index}]: id {group_id} is also a user id")
            members = group.setdefault("members", [])
            _require(isinstance(members, list), f"groups[{index}].members must be a list")
            self.groups[group_id] = group
        for group_id, group in self.groups.items():
            for member in group["members"]:
                _require(
                    member in self.users or member in self.groups,
                    f"group {group_id}: member {member!r} is neither a user nor a group of the fixture",
                )

    def _load_assignments(self, assignments: Any) -> None:
        _require(isinstance(assignments, list), "appRoleAssignments must be a list")
        self.assignments = OrderedIndex()
        self.assignment_keys: set[tuple[str, str]] = set()
        # An appRoleId that names no current role is accepted: Graph keeps assignments of a
        # role that was disabled and then removed, so a dumped state may hold such ids.
        for index, assignment in enumerate(assignments):
            where = f"appRoleAssignments[{index}]"
            _require(isinstance(assignment, dict), f"{where} must be an object")
            assignment_id = assignment.get("id")
            _require(isinstance(assignment_id, str) and bool(assignment_id), f"{where} has no 'id'")
            _require(assignment_id not in self.assignments, f"{where}: duplicate assignment id {assignment_id}")
            principal = assignment.get("principalId")
            actual = self.principal_type(principal)
            _require(actual is not None, f"{where}: assignment principal {principal!r} not found")
            declared = assignment.setdefault("principalType", actual)
            _require(declared == actual, f"{where}: principalType {declared!r} but {principal} is a {actual}")
            role = assignment.setdefault("appRoleId", DEFAULT_APP_ROLE_ID)
            _require(isinstance(role, str) and bool(GUID.match(role)), f"{where}: appRoleId {role!r} is not a GUID")
            key = (principal, role)
            _require(key not in self.assignment_keys, f"{where}: {principal} already has app role {role}")
            self.assignment_keys.add(key)
            self.assignments.add(assignment_id, assignment)

    def _load_clients(self, clients: Any) -> None:
        _require(isinstance(clients, list), "clients must be a list")
        self.clients: dict[str, str] = {}
        for index, client in enumerate(clients):
            _require(isinstance(client, dict), f"clients[{index}] must be an object")
            client_id, secret = client.get("client_id"), client.get("client_secret")
            _require(isinstance(client_id, str) and bool(client_id), f"clients[{index}] has no client_id")
            _require(isinstance(secret, str) and bool(secret), f"clients[{index}] has no client_secret")
            self.clients[client_id] = secret
        self.client_records = clients

    # --- dumping -------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "service_principal": self.sp,
            "users": self.users.values(),
            "groups": list(self.groups.values()),
            "appRoleAssignments": self.assignments.values(),
            "clients": self.client_records,
            **self.extensions,
        }

    # --- reads ---------------------------------------------------------------------------

    @property
    def app_roles(self) -> list[dict[str, Any]]:
        return self.sp["appRoles"]

    @property
    def active_user_count(self) -> int:
        return len(self.users) - len(self.soft_deleted)

    def principal_type(self, object_id: Any) -> str | None:
        if not isinstance(object_id, str):
            return None
        if object_id in self.users:
            return "User"
        if object_id in self.groups:
            return "Group"
        if object_id == self.sp["id"]:
            return "ServicePrincipal"
        return None

    def active_user(self, object_id: str) -> dict[str, Any] | None:
        if object_id in self.soft_deleted:
            return None
        return self.users.get(object_id)

    def user_by_key(self, key: str) -> dict[str, Any] | None:
        """``/users/{id | userPrincipalName}``."""
        user = self.active_user(key)
        if user is not None or "@" not in key:
            return user
        user_id = self._upns().get(key.lower())
        return self.active_user(user_id) if user_id else None

    def _upns(self) -> dict[str, str]:
        """Lower-cased userPrincipalName -> id, built on first use and then kept current.

        Soft-deleted users keep their UPN reserved, as in Entra.
        """
        if self._upn_index is None:
            self._upn_index = {
                u["userPrincipalName"].lower(): uid
                for uid, u in self.users.records.items()
                if isinstance(u.get("userPrincipalName"), str)
            }
        return self._upn_index

    def _check_upn_free(self, upn: Any, user_id: str) -> None:
        if isinstance(upn, str) and self._upns().get(upn.lower(), user_id) != user_id:
            raise ControlError(409, f"userPrincipalName {upn} is already used by another user")

    def _index_upn(self, user_id: str, old: Any, new: Any) -> None:
        upns = self._upns()
        if isinstance(old, str) and upns.get(old.lower()) == user_id:
            del upns[old.lower()]
        if isinstance(new, str):
            upns[new.lower()] = user_id

    def iter_active_users(self, position: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        deleted = self.soft_deleted
        for index, user in self.users.iter_from(position):
            if not deleted or user["id"] not in deleted:
                yield index, user

    def display_name(self, object_id: str) -> str | None:
        record = self.users.get(object_id) or self.groups.get(object_id)
        if record is None and object_id == self.sp["id"]:
            record = self.sp
        return record.get("displayName") if record else None

    def transitive_members(self, group_id: str) -> list[str]:
        """Users and nested groups under a group, flattened breadth-first; cycles are cut.

        Cached per membership version, so paging a large group does not re-walk it per page.
        """
        cached = self._transitive_cache.get(group_id)
        if cached is not None and cached[0] == self.members_version:
            return cached[1]
        seen: set[str] = {group_id}
        result: list[str] = []
        queue = [group_id]
        while queue:
            next_queue: list[str] = []
            for current in queue:
                for member in self.groups[current]["members"]:
                    if member in seen:
                        continue
                    seen.add(member)
                    if member in self.groups:
                        result.append(member)
                        next_queue.append(member)
                    elif member in self.users.records and member not in self.soft_deleted:
                        result.append(member)
            queue = next_queue
        self._transitive_cache[group_id] = (self.members_version, result)
        return result

    def _groups_containing(self) -> dict[str, list[str]]:
        """Object id -> the groups it is a direct member of (per membership version)."""
        if self._parents is None or self._parents[0] != self.members_version:
            parents: dict[str, list[str]] = {}
            for group_id, group in self.groups.items():
                for member in group["members"]:
                    parents.setdefault(member, []).append(group_id)
            self._parents = (self.members_version, parents)
        return self._parents[1]

    def direct_groups_of(self, object_id: str) -> list[str]:
        """The groups ``object_id`` is a direct member of (``memberOf``)."""
        return list(self._groups_containing().get(object_id, ()))

    def transitive_groups_of(self, object_id: str) -> list[str]:
        """The groups ``object_id`` is a member of directly or through nested groups
        (``transitiveMemberOf``), nearest first; membership cycles are cut."""
        parents = self._groups_containing()
        seen: set[str] = {object_id}
        result: list[str] = []
        queue = [object_id]
        while queue:
            next_queue: list[str] = []
            for current in queue:
                for group_id in parents.get(current, ()):
                    if group_id not in seen:
                        seen.add(group_id)
                        result.append(group_id)
                        next_queue.append(group_id)
            queue = next_queue
        return result

    def assignments_of(self, principal_ids: list[str]) -> list[dict[str, Any]]:
        """App role assignments made to these principals, in the order they were made (an index
        by principal, rebuilt when assignments change, so no request scans every assignment)."""
        if self._by_principal is None or self._by_principal[0] != self.assignments_version:
            index: dict[str, list[tuple[int, str]]] = {}
            for position, assignment in self.assignments.iter_from(0):
                index.setdefault(assignment["principalId"], []).append((position, assignment["id"]))
            self._by_principal = (self.assignments_version, index)
        by_principal = self._by_principal[1]
        found = sorted({entry for principal in principal_ids for entry in by_principal.get(principal, ())})
        return [self.assignments.records[assignment_id] for _, assignment_id in found]

    def direct_members(self, group_id: str) -> list[str]:
        return [
            m
            for m in self.groups[group_id]["members"]
            if m in self.groups or (m in self.users.records and m not in self.soft_deleted)
        ]

    def visible_assignment(self, assignment: dict[str, Any]) -> bool:
        return assignment["principalId"] not in self.soft_deleted

    # --- change log ----------------------------------------------------------------------

    def record(self, kind: str, object_id: str, props: frozenset[str] | None = None) -> Change:
        self.seq += 1
        change = Change(self.seq, kind, object_id, props)
        self.changes.append(change)
        return change

    # --- writes through the control API -----------------------------------------------------

    def add_user(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ControlError(400, "the body must be a user record (a JSON object)")
        problem = custom_data_problem(body)
        if problem:
            raise ControlError(400, problem)
        # A directory extension set to null is no value at all (Graph deletes it).
        user = {k: v for k, v in body.items() if v is not None or not is_directory_extension(k)}
        user_id = user.setdefault("id", str(uuid.uuid4()))
        if not isinstance(user_id, str) or not user_id:
            raise ControlError(400, "'id' must be a non-empty string")
        if user_id in self.users or user_id in self.groups:
            raise ControlError(409, f"an object with id {user_id} already exists")
        self._check_upn_free(user.get("userPrincipalName"), user_id)
        user.setdefault("createdDateTime", now_iso())
        user.pop("deletedDateTime", None)
        self.users.add(user_id, user)
        self.user_properties.update(user.keys())
        self._index_upn(user_id, None, user.get("userPrincipalName"))
        self.record("user", user_id)
        return user

    def patch_user(self, user_id: str, body: Any) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise ControlError(404, f"no user with id {user_id}")
        if not isinstance(body, dict):
            raise ControlError(400, "the body must be a JSON object of user properties")
        if "id" in body and body["id"] != user_id:
            raise ControlError(400, "'id' cannot be changed")
        self._check_upn_free(body.get("userPrincipalName"), user_id)
        try:
            body = merged_patch(user, body)  # only the extension attributes it names change
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        old_upn = user.get("userPrincipalName")
        # A directory extension set to null is deleted (Graph's way), not stored as null.
        deleted = {k for k, v in body.items() if v is None and is_directory_extension(k)}
        changed = frozenset(
            k
            for k, v in body.items()
            if k != "id" and ((k in user) if k in deleted else (k not in user or user[k] != v))
        )
        user.update({k: v for k, v in body.items() if k in changed and k not in deleted})
        for name in deleted & changed:
            del user[name]
        self.user_properties.update(changed)
        if "userPrincipalName" in changed:
            self._index_upn(user_id, old_upn, user.get("userPrincipalName"))
        # A deleted user's changes surface only when it is restored.
        if changed and user_id not in self.soft_deleted:
            self.record("user", user_id, changed)
        return user

    def delete_user(self, user_id: str, permanent: bool) -> None:
        if user_id not in self.users:
            raise ControlError(404, f"no user with id {user_id}")
        if not permanent:
            if user_id in self.soft_deleted:
                raise ControlError(404, f"user {user_id} is already deleted (use ?permanent=true to purge it)")
            self.users.records[user_id]["deletedDateTime"] = now_iso()
            self.soft_deleted.add(user_id)
            self.members_version += 1
            self.record("user_soft_deleted", user_id)
            return
        purged = self.users.remove(user_id)
        self.soft_deleted.discard(user_id)
        self._index_upn(user_id, purged.get("userPrincipalName"), None)
        # A purged user leaves its groups and loses its app role assignments, as in Entra.
        for group in self.groups.values():
            if user_id in group["members"]:
                group["members"] = [m for m in group["members"] if m != user_id]
        for assignment in [a for a in self.assignments.values() if a["principalId"] == user_id]:
            self._drop_assignment(assignment["id"])
        self.members_version += 1
        self.record("user_deleted", user_id)

    def restore_user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self.soft_deleted:
            raise ControlError(404, f"no deleted user with id {user_id}")
        user = self.users.records[user_id]
        user.pop("deletedDateTime", None)
        self.soft_deleted.discard(user_id)
        self.members_version += 1
        self.record("user", user_id)
        return user

    def add_assignment(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ControlError(400, "the body must be an appRoleAssignment record (a JSON object)")
        assignment = dict(body)
        principal = assignment.get("principalId")
        actual = self.principal_type(principal)
        if actual is None or principal in self.soft_deleted:
            raise ControlError(404, f"principal {principal!r} is neither a user nor a group of the tenant")
        declared = assignment.setdefault("principalType", actual)
        if declared != actual:
            raise ControlError(400, f"principalType {declared!r} does not match: {principal} is a {actual}")
        role = assignment.setdefault("appRoleId", DEFAULT_APP_ROLE_ID)
        if role != DEFAULT_APP_ROLE_ID and role not in {r["id"] for r in self.app_roles}:
            raise ControlError(400, f"appRoleId {role!r} is not an app role of the service principal")
        if (principal, role) in self.assignment_keys:
            raise ControlError(409, f"{principal} already has app role {role}")
        assignment_id = assignment.setdefault("id", uuid.uuid4().hex)
        if assignment_id in self.assignments:
            raise ControlError(409, f"an assignment with id {assignment_id} already exists")
        assignment.setdefault("createdDateTime", now_iso())
        self.assignments.add(assignment_id, assignment)
        self.assignment_keys.add((principal, role))
        self.assignments_version += 1
        self.record("assignment", assignment_id)
        return assignment

    def delete_assignment(self, assignment_id: str) -> None:
        if assignment_id not in self.assignments:
            raise ControlError(404, f"no appRoleAssignment with id {assignment_id}")
        self._drop_assignment(assignment_id)
        self.record("assignment", assignment_id)

    def _drop_assignment(self, assignment_id: str) -> None:
        assignment = self.assignments.remove(assignment_id)
        self.assignments_version += 1
        self.assignment_keys.discard((assignment["principalId"], assignment.get("appRoleId", DEFAULT_APP_ROLE_ID)))

    def add_member(self, group_id: str, body: Any) -> None:
        group = self.groups.get(group_id)
        if group is None:
            raise ControlError(404, f"no group with id {group_id}")
        member = body.get("id") if isinstance(body, dict) else None
        if not isinstance(member, str) or not (member in self.groups or member in self.users):
            raise ControlError(404, f"member {member!r} is neither a user nor a group of the tenant")
        if member == group_id:
            raise ControlError(400, "a group cannot be a member of itself")
        if member in group["members"]:
            # Graph's wording when the reference already exists.
            raise ControlError(
                400,
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
        group["members"].append(member)
        self.members_version += 1
        self.record("membership", group_id, frozenset({member}))

    def remove_member(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if group is None:
            raise ControlError(404, f"no group with id {group_id}")
        if member_id not in group["members"]:
            raise ControlError(404, f"{member_id} is not a direct member of group {group_id}")
        group["members"] = [m for m in group["members"] if m != member_id]
        self.members_version += 1
        self.record("membership", group_id, frozenset({member_id}))

    # --- writes through the Graph API ---------------------------------------------------------

    def set_app_roles(self, roles: Any) -> None:
        """``PATCH /applications/{id}`` with ``appRoles``: Graph's validation, then replace.

        The service principal's roles mirror the application's (one shared list here).
        """
        if not isinstance(roles, list):
            raise errors.bad_request("Invalid value specified for property 'appRoles' of resource 'Application'.")
        values: set[str] = set()
        ids: set[str] = set()
        for role in roles:
            if not isinstance(role, dict):
                raise errors.bad_request("Invalid value specified for property 'appRoles' of resource 'Application'.")
            role_id = role.get("id")
            if not isinstance(role_id, str) or not GUID.match(role_id):
                raise errors.GraphError(
                    400, "BadRequest", f"Cannot convert the literal '{role_id}' to the expected type 'Edm.Guid'."
                )
            if not role.get("allowedMemberTypes"):
                raise errors.bad_request(
                    f"App role with identifier '{role_id}' must have at least one value specified for "
                    "'allowedMemberTypes'."
                )
            value = role.get("value")
            if role_id in ids or (value is not None and value in values):
                raise errors.GraphError(
                    400,
                    "DuplicateValue",
                    "Request contains a property with duplicate values.",
                    details=[
                        {
                            "code": "DuplicateValue",
                            "message": "Request contains a property with duplicate values.",
                            "target": "appRoles",
                        }
                    ],
                )
            ids.add(role_id)
            if value is not None:
                values.add(value)
        new_by_id = {role["id"]: role for role in roles}
        for old in self.app_roles:
            new = new_by_id.get(old["id"])
            # An enabled role cannot be removed in one step: it must be disabled first
            # (Graph's CannotDeleteOrUpdateEnabledEntitlement).
            if old.get("isEnabled", True) and new is None:
                raise errors.GraphError(
                    400,
                    "CannotDeleteOrUpdateEnabledEntitlement",
                    "Permission (scope or role) cannot be deleted or updated unless disabled first.",
                )
        normalised = []
        for role in roles:
            full = {
                "allowedMemberTypes": role["allowedMemberTypes"],
                "description": role.get("description"),
                "displayName": role.get("displayName"),
                "id": role["id"],
                "isEnabled": role.get("isEnabled", True),
                "origin": role.get("origin", "Application"),
                "value": role.get("value"),
            }
            normalised.append(full)
        self.sp["appRoles"] = normalised
