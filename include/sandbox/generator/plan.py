"""Who is what: the scenario of a tenant, decided before any record is written.

Deciding scope, roles, group trees and the special cases first (as compact per-user arrays)
lets the writer stream a million users without keeping them in memory, and lets the org side
and the summary count licences and categories from the same facts the tenant was built from.

Every category the engine must handle is placed deliberately, with a minimum count, so a
2,000-user tenant contains each one at least once:

- scope: direct assignment, group assignment (nested trees 2-4 deep, one 3-cycle and one
  2-cycle ``A ∋ B ∋ A``), the default access role, unassigned users;
- role resolution: two groups with different roles, a direct and a group assignment with
  different roles, two direct assignments with different roles (all must be quarantined),
  two groups with the same role, direct plus group with the same role, and two paths into the
  same group tree (all must resolve to one role);
- state: disabled and soft-deleted users; messy records (``messy.MESSY_KINDS``).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from include.sandbox.generator import catalog
from include.sandbox.generator.messy import MESSY_KINDS

UNASSIGNED, DIRECT, GROUP, DEFAULT = 0, 1, 2, 3
DISABLED, DELETED = 1, 2

DISABLED_SHARE = 0.02
DELETED_SHARE = 0.005
SALESFORCE_MATCH_SHARE = 0.08

# The first hierarchies are fixed so every category exists however small the tenant:
# (role, depth, branching, cycle) where cycle is "3" (root ∋ child ∋ leaf ∋ root) or "2" (A ∋ B ∋ A).
_FIXED_HIERARCHIES: tuple[tuple[str, int, int, str | None], ...] = (
    ("Standard User", 3, 3, None),
    ("Sales Manager", 3, 1, "3"),
    ("Chatter Free User", 2, 1, "2"),
    ("Standard User", 4, 2, None),
    ("Marketing User", 2, 2, None),
    ("Read Only", 3, 2, None),
    ("System Administrator", 2, 1, None),
    ("Solution Manager", 2, 2, None),
    ("Standard Platform User", 3, 2, None),
)
_BIGGEST_TREE_SHARE = 0.3
"""Share of group-assigned users in the first tree, so one group has many transitive members."""


@dataclass
class Group:
    name: str
    hierarchy: int
    """Index of the assigned tree this group belongs to, -1 for groups outside any."""
    users: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    role: int | None = None
    """Role of the app role assignment made to this group (tree roots only)."""


@dataclass
class Hierarchy:
    role: int
    depth: int
    groups: list[int]
    """Group indices, root first."""


@dataclass
class Plan:
    users: int
    scope: bytearray
    role: bytearray
    """Role index for DIRECT and GROUP users (for GROUP, the role of their tree)."""
    flags: bytearray
    messy: bytearray
    """0, or 1 + index into ``MESSY_KINDS``."""
    groups: list[Group]
    hierarchies: list[Hierarchy]
    extra_direct: dict[int, list[int]]
    """Further direct assignments (role indices) of some users."""
    extra_roles: dict[int, set[int]]
    """Roles a user reaches beyond ``role`` (extra assignments and extra group trees)."""
    special: dict[str, list[int]]
    salesforce_match: dict[int, str]
    """User index → "current" | "stale" | "inactive": a Salesforce user with that Username."""
    taken_elsewhere: list[int]
    cycles: int

    def roles_of(self, index: int) -> set[int]:
        """Every role the user holds, directly or through any group (DEFAULT_ROLE included)."""
        scope = self.scope[index]
        roles = {self.role[index]} if scope in (DIRECT, GROUP) else set()
        if scope == DEFAULT:
            roles.add(catalog.DEFAULT_ROLE)
        extra = self.extra_roles.get(index)
        return roles | extra if extra else roles


def _weighted_index(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def _pick(rng: random.Random, candidates: Sequence[int], count: int) -> list[int]:
    return rng.sample(candidates, min(count, len(candidates)))


def _build_hierarchies(rng: random.Random, users: int, groups: list[Group]) -> tuple[list[Hierarchy], int]:
    """Assigned group trees; returns them and the number of cycles placed."""
    count = max(len(_FIXED_HIERARCHIES), min(300, users // 4000))
    role_weights = list(itertools.accumulate(role.weight for role in catalog.ROLES))
    hierarchies: list[Hierarchy] = []
    cycles = 0
    for h in range(count):
        if h < len(_FIXED_HIERARCHIES):
            role_name, depth, branching, cycle = _FIXED_HIERARCHIES[h]
            role = catalog.ROLE_INDEX[role_name]
        else:
            role = _weighted_index(rng, role_weights)
            depth, branching, cycle = rng.randint(2, 4), rng.randint(1, 3), None
        region = catalog.REGIONS[h % len(catalog.REGIONS)]
        suffix = "" if h < len(catalog.REGIONS) else f" {h // len(catalog.REGIONS) + 1}"
        root = len(groups)
        groups.append(Group(f"Salesforce - {catalog.ROLES[role].name} - {region}{suffix}", h, role=role))
        members = [root]
        level = [root]
        for _ in range(depth - 1):
            next_level = []
            for parent in level:
                for _ in range(branching):
                    child = len(groups)
                    team = catalog.TEAMS[rng.randrange(len(catalog.TEAMS))]
                    groups.append(Group(f"{groups[parent].name} / {team} {child}", h))
                    groups[parent].groups.append(child)
                    next_level.append(child)
            members.extend(next_level)
            level = next_level
        if cycle == "2":
            groups[members[1]].groups.append(root)  # root ∋ child ∋ root
            cycles += 1
        elif cycle == "3":
            groups[members[-1]].groups.append(root)  # root ∋ child ∋ leaf ∋ root
            cycles += 1
        hierarchies.append(Hierarchy(role, depth, members))
    return hierarchies, cycles


def make_plan(users: int, rng: random.Random, messy_share: float) -> Plan:
    groups: list[Group] = []
    hierarchies, cycles = _build_hierarchies(rng, users, groups)
    # An assigned group with no members: nothing to expand, nobody in scope through it.
    groups.append(Group("Salesforce - Pilot Wave 3 (empty)", -1, role=catalog.STANDARD))

    tree_weights = list(
        itertools.accumulate(
            [_BIGGEST_TREE_SHARE] + [(1 - _BIGGEST_TREE_SHARE) / (len(hierarchies) - 1)] * (len(hierarchies) - 1)
        )
    )
    role_weights = list(itertools.accumulate(role.weight for role in catalog.ROLES))
    scope = bytearray(users)
    role = bytearray(users)
    for i in range(users):
        draw = rng.random()
        if draw < 0.56:
            scope[i] = DIRECT
            role[i] = _weighted_index(rng, role_weights)
        elif draw < 0.89:
            scope[i] = GROUP
            tree = hierarchies[_weighted_index(rng, tree_weights)]
            role[i] = tree.role
            groups[tree.groups[rng.randrange(len(tree.groups))]].users.append(i)
        elif draw < 0.90:
            scope[i] = DEFAULT
            role[i] = catalog.DEFAULT_ROLE
        else:
            role[i] = catalog.DEFAULT_ROLE  # unassigned: no role

    _add_unassigned_groups(rng, users, scope, groups)
    plan = Plan(
        users=users,
        scope=scope,
        role=role,
        flags=bytearray(users),
        messy=bytearray(users),
        groups=groups,
        hierarchies=hierarchies,
        extra_direct={},
        extra_roles={},
        special={},
        salesforce_match={},
        taken_elsewhere=[],
        cycles=cycles,
    )
    reserved = bytearray(users)
    _place_role_cases(plan, rng, reserved)
    _place_states(plan, rng, reserved, messy_share)
    _place_salesforce(plan, rng, reserved)
    return plan


def _add_unassigned_groups(rng: random.Random, users: int, scope: bytearray, groups: list[Group]) -> None:
    """Groups no assignment reaches: membership alone must not put anyone in scope."""
    names = catalog.UNASSIGNED_GROUP_NAMES[: max(3, min(len(catalog.UNASSIGNED_GROUP_NAMES), users // 1000))]
    first = len(groups)
    groups.extend(Group(name, -1) for name in names)
    for i in range(users):
        if scope[i] == UNASSIGNED and rng.random() < 0.5:
            groups[first + rng.randrange(len(names))].users.append(i)
    for i in _pick(rng, range(users), max(3, users // 100)):
        groups[first + rng.randrange(len(names))].users.append(i)
    groups[first].groups.append(first + 1)  # nesting outside scope is still out of scope
    for group in groups[first:]:
        group.users = sorted(set(group.users))


def _candidates(plan: Plan, reserved: bytearray, scopes: tuple[int, ...], roles: set[int] | None = None) -> list[int]:
    scope, role = plan.scope, plan.role
    return [
        i for i in range(plan.users) if scope[i] in scopes and not reserved[i] and (roles is None or role[i] in roles)
    ]


def _place_role_cases(plan: Plan, rng: random.Random, reserved: bytearray) -> None:
    """The role-resolution cases: conflicts to quarantine and overlaps that must collapse."""
    count = max(2, plan.users // 1000)
    trees = plan.hierarchies
    groups = plan.groups

    def tree_group(tree: Hierarchy) -> Group:
        return groups[tree.groups[rng.randrange(len(tree.groups))]]

    def other_role_tree(own_role: int) -> Hierarchy:
        choices = [t for t in trees if t.role != own_role]
        return choices[rng.randrange(len(choices))]

    def take(name: str, pool: list[int]) -> list[int]:
        chosen = _pick(rng, pool, count)
        for i in chosen:
            reserved[i] = 1
        plan.special[name] = sorted(chosen)
        return chosen

    def add_role(i: int, role: int) -> None:
        plan.extra_roles.setdefault(i, set()).add(role)

    for i in take("conflict_two_groups", _candidates(plan, reserved, (GROUP,))):
        tree = other_role_tree(plan.role[i])
        tree_group(tree).users.append(i)
        add_role(i, tree.role)
    for i in take("conflict_direct_and_group", _candidates(plan, reserved, (DIRECT,))):
        tree = other_role_tree(plan.role[i])
        tree_group(tree).users.append(i)
        add_role(i, tree.role)
    for i in take("conflict_two_direct", _candidates(plan, reserved, (DIRECT,))):
        other = (plan.role[i] + 1 + rng.randrange(len(catalog.ROLES) - 1)) % len(catalog.ROLES)
        plan.extra_direct[i] = [other]
        add_role(i, other)

    # Same role twice: members of the first tree also join the other tree with its role.
    first, twin = trees[0], next(t for t in trees[1:] if t.role == trees[0].role)
    first_members = {i for g in first.groups for i in groups[g].users}
    pool = [i for i in _candidates(plan, reserved, (GROUP,)) if i in first_members]
    for i in take("same_role_two_groups", pool):
        tree_group(twin).users.append(i)
    tree_roles = {t.role for t in trees}
    for i in take("same_role_direct_and_group", _candidates(plan, reserved, (DIRECT,), tree_roles)):
        tree_group(next(t for t in trees if t.role == plan.role[i])).users.append(i)
    # Two paths into one tree: listed in a subgroup and in the tree's root.
    deep = next(t for t in trees if t.depth >= 3)
    below_root = {i for g in deep.groups[1:] for i in groups[g].users}
    pool = [i for i in _candidates(plan, reserved, (GROUP,)) if i in below_root]
    for i in take("two_paths_one_tree", pool):
        groups[deep.groups[0]].users.append(i)
    plan.special["default_access"] = [i for i in range(plan.users) if plan.scope[i] == DEFAULT]


def _place_states(plan: Plan, rng: random.Random, reserved: bytearray, messy_share: float) -> None:
    """Messy records (in scope, so validation sees them), then disabled and soft-deleted users.

    The sets are disjoint from each other and from the role cases, so each user carries one
    reason to be treated specially and tests can tell the reasons apart.
    """
    messy_count = round(plan.users * messy_share)
    messy = _pick(rng, _candidates(plan, reserved, (DIRECT, GROUP)), messy_count)
    for n, i in enumerate(messy):
        plan.messy[i] = 1 + n % len(MESSY_KINDS)
        reserved[i] = 1
    everyone = (UNASSIGNED, DIRECT, GROUP, DEFAULT)
    for i in _pick(rng, _candidates(plan, reserved, everyone), max(1, round(plan.users * DISABLED_SHARE))):
        plan.flags[i] |= DISABLED
        reserved[i] = 1
    for i in _pick(rng, _candidates(plan, reserved, everyone), max(1, round(plan.users * DELETED_SHARE))):
        plan.flags[i] |= DELETED
        reserved[i] = 1


def _place_salesforce(plan: Plan, rng: random.Random, reserved: bytearray) -> None:
    """Existing Salesforce users matched by Username, and usernames taken in other orgs.

    Matches are drawn from users with clean records (a messy name would not have been
    accepted by Salesforce in the first place); disabled and unassigned users are included on
    purpose, since an active Salesforce user for them is what deactivation is about.
    """
    clean = [i for i in range(plan.users) if not plan.messy[i]]
    matched = sorted(_pick(rng, clean, max(3, round(plan.users * SALESFORCE_MATCH_SHARE))))
    for i in matched:
        draw = rng.random()
        plan.salesforce_match[i] = "current" if draw < 0.6 else "stale" if draw < 0.9 else "inactive"
    # However few users there are: one stale and one inactive user the sync must fix, and
    # active Salesforce users for a disabled, an unassigned and a soft-deleted Entra user.
    fixable = [i for i in matched if plan.scope[i] in (DIRECT, GROUP) and not plan.flags[i]]
    for i, state in zip(fixable, ("stale", "inactive"), strict=False):
        plan.salesforce_match[i] = state
    for what in ("disabled", "unassigned", "deleted"):
        extra = next((i for i in clean if _is(plan, i, what) and i not in plan.salesforce_match), None)
        if extra is not None:
            plan.salesforce_match[extra] = "current"
    pool = [
        i
        for i in range(plan.users)
        if plan.scope[i] == DIRECT
        and not reserved[i]
        and not plan.flags[i]
        and i not in plan.salesforce_match
        and plan.role[i] != catalog.DEFAULT_ROLE
    ]
    plan.taken_elsewhere = sorted(_pick(rng, pool, max(3, min(100, plan.users // 1000))))


def _is(plan: Plan, i: int, what: str) -> bool:
    if what == "disabled":
        return bool(plan.flags[i] & DISABLED)
    if what == "deleted":
        return bool(plan.flags[i] & DELETED)
    return plan.scope[i] == UNASSIGNED
