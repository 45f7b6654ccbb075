"""Synthetic tenant + org fixture pairs (``python -m include.sandbox generate``).

``generate`` writes ``tenant.json`` (Graph side) and ``org.json`` (Salesforce side) in the
fixed format of ``docs/sandbox-fixtures.md``: the same arguments give byte-identical files, because every
random choice comes from ``random.Random`` streams seeded from the seed and a purpose, and no
clock or hash-order dependent value is used. ``plan`` decides the scenario, ``tenant`` streams
the users, ``org`` mirrors part of them into Salesforce, and the summary counts what was placed.
"""

from __future__ import annotations

import random
from pathlib import Path

from include.sandbox.generator import catalog
from include.sandbox.generator.jsonstream import Records, write_document
from include.sandbox.generator.messy import MESSY_KINDS
from include.sandbox.generator.org import OrgSummary, build_org
from include.sandbox.generator.plan import DEFAULT, DELETED, DIRECT, DISABLED, GROUP, UNASSIGNED, Plan, make_plan
from include.sandbox.generator.tenant import TenantFacts, write_tenant

__all__ = ["generate"]

DEFAULT_MESSY_SHARE = 0.03
DEFAULT_LICENCE_HEADROOM = 0.05
CONFLICT_CASES = ("conflict_two_groups", "conflict_direct_and_group", "conflict_two_direct")


def generate(
    users: int,
    seed: int,
    out_dir: Path,
    *,
    messy_share: float = DEFAULT_MESSY_SHARE,
    licence_headroom: float = DEFAULT_LICENCE_HEADROOM,
) -> dict[str, object]:
    """Write ``out_dir/tenant.json`` and ``out_dir/org.json``; return counts by category.

    ``messy_share`` is the share of users with a damaged record (see ``messy.MESSY_KINDS``).
    ``licence_headroom`` sizes every licence to what a full sync needs times ``1 + headroom``
    (see ``org``): the default fits everyone; a negative value makes licences run out.
    """
    if users < 1:
        raise ValueError("users must be at least 1")
    if not 0 <= messy_share <= 1:
        raise ValueError("messy_share must be between 0 and 1")
    if licence_headroom <= -1:
        raise ValueError("licence_headroom must be greater than -1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    brand = random.Random(f"{seed}:brand").choice(catalog.BRANDS)
    domain = f"{brand.lower()}.example"

    plan = make_plan(users, random.Random(f"{seed}:plan"), messy_share)
    facts = write_tenant(out_dir / "tenant.json", plan, seed, brand, domain)
    org, org_summary = build_org(plan, facts, seed, brand, licence_headroom)
    write_document(
        out_dir / "org.json",
        [(key, Records(value) if key == "users" else value) for key, value in org.items()],
    )
    return _summary(plan, facts, org, org_summary)


def _summary(plan: Plan, facts: TenantFacts, org: dict, org_summary: OrgSummary) -> dict[str, object]:
    scope_counts = {s: plan.scope.count(s) for s in (DIRECT, GROUP, DEFAULT, UNASSIGNED)}
    disabled = sum(1 for f in plan.flags if f & DISABLED)
    deleted = sum(1 for f in plan.flags if f & DELETED)
    messy_counts = [plan.messy.count(k + 1) for k in range(len(MESSY_KINDS))]
    return {
        "domain": facts.domain,
        "users": plan.users,
        "users_enabled": plan.users - disabled,
        "users_disabled": disabled,
        "users_soft_deleted": deleted,
        "assigned_directly": scope_counts[DIRECT],
        "assigned_through_groups": scope_counts[GROUP],
        "assigned_default_access_role": scope_counts[DEFAULT],
        "unassigned": scope_counts[UNASSIGNED],
        "conflicting_roles": sum(len(plan.special[case]) for case in CONFLICT_CASES),
        "same_role_two_groups": len(plan.special["same_role_two_groups"]),
        "same_role_direct_and_group": len(plan.special["same_role_direct_and_group"]),
        "two_paths_one_tree": len(plan.special["two_paths_one_tree"]),
        "messy": sum(messy_counts),
        "messy_kinds": ", ".join(f"{kind} {n}" for kind, n in zip(MESSY_KINDS, messy_counts, strict=True)),
        "upns_numbered": facts.numbered_upns,
        "groups": len(plan.groups),
        "groups_assigned": sum(1 for g in plan.groups if g.role is not None),
        "group_nesting_max_depth": max(h.depth for h in plan.hierarchies),
        "group_cycles": plan.cycles,
        "app_roles": len(catalog.ROLES),
        "app_role_assignments": facts.app_role_assignments,
        "salesforce_users": len(org["users"]),
        "salesforce_users_matching_tenant": org_summary.matching,
        "salesforce_users_stale": org_summary.stale,
        "salesforce_users_inactive": org_summary.inactive,
        "salesforce_users_unmanaged": org_summary.unmanaged,
        "usernames_taken_elsewhere": len(org["usernames_taken_elsewhere"]),
        "licences": ", ".join(
            f"{name} {need} needed / {total}" for name, (need, total) in org_summary.licences.items()
        ),
    }
