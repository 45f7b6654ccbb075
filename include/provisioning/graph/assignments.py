"""Who is assigned to the app, with which role values, and how (pure logic, no I/O).

Graph answers the two questions separately: ``appRoleAssignedTo`` lists assignments to users
and groups, and each assigned group's ``transitiveMembers`` flattens its nested groups
(Graph cuts membership cycles, so nothing here walks a group tree). This module joins the
two into one role set per user.

Decisions (docs/decisions.md):

- A user's ``appRoleAssignments`` are the distinct role *values* over all paths (direct and
  every group); two paths to the same role are one role.
- The default access role (``msiam_access``) only says "assigned, no particular role", so it
  is dropped when the user also holds a real role; alone it stays, and the mapping decides
  (Entra's Salesforce tutorial: Default Access does not provision).
- Two *different* real roles are not judged here: ``SingleAppRoleAssignment`` in the mapping
  reports them, as Entra does ("isn't supported in scenarios where users have multiple app
  role assignments").
- An assignment to a role id the application no longer defines (a removed role) or to a role
  without a value cannot be resolved: the user is quarantined with the assignment named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from include.provisioning.model import DEFAULT_ACCESS_ROLE_ID, DEFAULT_ACCESS_ROLE_VALUE


@dataclass(frozen=True)
class RoleCatalog:
    """App role id → value, from the service principal's ``appRoles``."""

    values: Mapping[str, str]

    @classmethod
    def from_service_principal(cls, sp: Mapping[str, Any]) -> RoleCatalog:
        values = {DEFAULT_ACCESS_ROLE_ID: DEFAULT_ACCESS_ROLE_VALUE}
        for role in sp.get("appRoles") or []:
            if isinstance(role, Mapping) and role.get("id") and role.get("value"):
                values[str(role["id"]).lower()] = str(role["value"])
        return cls(values)

    def value(self, role_id: str | None) -> str | None:
        return self.values.get(str(role_id or DEFAULT_ACCESS_ROLE_ID).lower())


class Grant(NamedTuple):
    """One assignment as it reaches a user: the assignment id, its role id, the path, and when
    the assignment was created. (A tuple: a 100,000-user tenant creates one per direct assignment.)"""

    assignment_id: str
    role_id: str
    via: str  # "direct" or "group:<display name>"
    created: str = ""
    """Graph's ``createdDateTime`` (UTC, ISO 8601), "" when Graph gave none."""


@dataclass
class UserRoles:
    roles: list[str]
    """Distinct role values, sorted (see the module's decisions)."""
    via: str
    """"direct", "group:Sales EMEA", ... joined with "; " (direct first, then groups by name)."""
    problems: list[str] = field(default_factory=list)
    """Why the roles cannot be resolved; non-empty means the user is quarantined."""


class AssignmentCollector:
    """Collects assignment pages and group member pages, then resolves users' roles."""

    def __init__(self) -> None:
        self.direct: dict[str, list[Grant]] = defaultdict(list)
        self.group_grants: dict[str, list[Grant]] = defaultdict(list)
        self.members: dict[str, list[str]] = defaultdict(list)
        self.assignment_count = 0
        self.ignored_principals = 0
        """Assignments to service principals: app permissions, not people to provision."""

    def add_assignments(self, items: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
        """Record one page of ``appRoleAssignedTo``; returns groups seen for the first time as
        (group id, display name), which the caller must expand."""
        new_groups: list[tuple[str, str]] = []
        direct, group_grants = self.direct, self.group_grants
        count = ignored = 0
        for item in items:
            principal = item.get("principalId")
            if not principal:
                continue
            count += 1
            kind = item.get("principalType")
            role_id = item.get("appRoleId") or DEFAULT_ACCESS_ROLE_ID
            if kind == "User":
                direct[principal].append(
                    Grant(item.get("id") or "?", role_id, "direct", item.get("createdDateTime") or "")
                )
            elif kind == "Group":
                name = item.get("principalDisplayName") or principal
                if principal not in group_grants:
                    new_groups.append((principal, name))
                group_grants[principal].append(
                    Grant(item.get("id") or "?", role_id, f"group:{name}", item.get("createdDateTime") or "")
                )
            else:
                ignored += 1
        self.assignment_count += count
        self.ignored_principals += ignored
        return new_groups

    def add_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        self.members[group_id].extend(user_ids)

    @property
    def groups(self) -> list[str]:
        return list(self.group_grants)

    def grants_of(self, direct: list[Grant], groups: Iterable[str]) -> list[Grant]:
        grants = list(direct)
        for group_id in groups:
            grants.extend(self.group_grants.get(group_id, ()))
        return grants

    def resolve(self, catalog: RoleCatalog) -> dict[str, UserRoles]:
        """Every assigned user's roles; users with unresolvable grants carry ``problems``.

        Users share a handful of (direct role ids, groups) combinations: each is resolved once
        and the result shared between its users (it must not be mutated). At 1,000,000 users the
        per-user step is what costs, so it is one dictionary probe for the many users with one
        direct grant and no group, and the users of groups are walked without the direct ones."""
        member_of = self._member_of()
        cache: dict[tuple[tuple[str, ...], tuple[str, ...]], UserRoles] = {}
        resolved: dict[str, UserRoles] = {}
        for user_id, direct in self.direct.items():
            groups = member_of.pop(user_id, ())
            role_ids = (direct[0].role_id,) if len(direct) == 1 else tuple(grant.role_id for grant in direct)
            resolved[user_id] = self._resolved(cache, catalog, direct, role_ids, tuple(groups))
        for user_id, groups in member_of.items():
            resolved[user_id] = self._resolved(cache, catalog, [], (), tuple(groups))
        return resolved

    def _member_of(self) -> dict[str, list[str]]:
        """User id → the assigned groups they are a member of (a group once), in group order."""
        member_of: dict[str, list[str]] = {}
        for group_id, members in self.members.items():
            for user_id in dict.fromkeys(members):
                groups = member_of.get(user_id)
                if groups is None:
                    member_of[user_id] = [group_id]
                else:
                    groups.append(group_id)
        return member_of

    def _resolved(
        self,
        cache: dict[tuple[tuple[str, ...], tuple[str, ...]], UserRoles],
        catalog: RoleCatalog,
        direct: list[Grant],
        role_ids: tuple[str, ...],
        groups: tuple[str, ...],
    ) -> UserRoles:
        """The roles of a user with these ``direct`` grants (their ``role_ids``) and ``groups``."""
        key = (role_ids, groups)
        roles = cache.get(key)
        if roles is None:
            roles = cache[key] = resolve_grants(self.grants_of(direct, groups), catalog)
        if roles.problems:  # the messages name this user's own assignments
            roles = resolve_grants(self.grants_of(direct, groups), catalog)
        return roles

    def assigned_since(self) -> dict[str, str]:
        """User id → ``createdDateTime`` of the user's earliest assignment, direct or through any
        of the user's assigned groups ("" when Graph gave no date for any of them)."""
        group_since = {
            group_id: min((grant.created for grant in grants), default="")
            for group_id, grants in self.group_grants.items()
        }
        since: dict[str, str] = {}
        for group_id, members in self.members.items():
            created = group_since.get(group_id, "")
            for user_id in members:
                known = since.get(user_id)
                if known is None or created < known:
                    since[user_id] = created
        for user_id, grants in self.direct.items():
            created = min(grant.created for grant in grants)
            known = since.get(user_id)
            if known is None or created < known:
                since[user_id] = created
        return since


def resolve_grants(grants: Iterable[Grant], catalog: RoleCatalog) -> UserRoles:
    values: set[str] = set()
    paths: set[str] = set()
    problems: list[str] = []
    for grant in grants:
        paths.add(grant.via)
        value = catalog.value(grant.role_id)
        if value is None:
            problems.append(
                f"app role assignment {grant.assignment_id} ({grant.via}) grants app role {grant.role_id}, "
                "which the application does not define (removed, or without a value)"
            )
        else:
            values.add(value)
    if len(values) > 1:
        values.discard(DEFAULT_ACCESS_ROLE_VALUE)
    via = sorted(paths, key=lambda p: (p != "direct", p.lower()))
    return UserRoles(sorted(values), "; ".join(via), problems)
