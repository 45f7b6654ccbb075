"""The tenant fixture (Graph side): service principal, users, groups, app role assignments.

Users are produced and written in one pass; only what later parts need is kept: user ids
(groups and assignments name them), creation times (an assignment is never older than its
user) and the few people the org side mirrors as existing Salesforce users.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.sandbox.generator import catalog
from include.sandbox.generator.ids import app_role_assignment_id, entra_client_secret, guid
from include.sandbox.generator.jsonstream import Records, write_document
from include.sandbox.generator.names import Culture
from include.sandbox.generator.plan import DEFAULT, DIRECT, Plan
from include.sandbox.generator.users import CREATED_UNTIL, UserFactory, iso

_ASSIGNED_FROM = 1514764800  # 2018-01-01T00:00:00Z, when the company bought Salesforce


@dataclass(frozen=True)
class Person:
    """A tenant user as the org side needs them (to mirror as an existing Salesforce user)."""

    upn: str
    given: str
    surname: str
    mail: str
    culture: Culture


@dataclass
class TenantFacts:
    tenant_id: str
    domain: str
    people: dict[int, Person] = field(default_factory=dict)
    numbered_upns: int = 0
    app_role_assignments: int = 0


def _service_principal(rng: random.Random, role_ids: list[str]) -> dict[str, Any]:
    return {
        "id": guid(rng),
        "appId": guid(rng),
        "displayName": "Salesforce",
        "application_object_id": guid(rng),
        "appRoles": [
            {
                "id": role_id,
                "value": role.name,
                "displayName": role.name,
                "description": f"Salesforce profile {role.name}" + (" (custom)" if role.custom else ""),
                "allowedMemberTypes": ["User"],
                "isEnabled": True,
                "origin": "Application",
            }
            for role, role_id in zip(catalog.ROLES, role_ids, strict=True)
        ],
    }


def write_tenant(path: Path, plan: Plan, seed: int, brand: str, domain: str) -> TenantFacts:
    id_rng = random.Random(f"{seed}:entra-ids")
    tenant_id = guid(id_rng)
    role_ids = [guid(id_rng) for _ in catalog.ROLES]
    service_principal = _service_principal(id_rng, role_ids)
    user_ids = [guid(id_rng) for _ in range(plan.users)]
    group_ids = [guid(id_rng) for _ in plan.groups]
    clients = [{"client_id": service_principal["appId"], "client_secret": entra_client_secret(id_rng)}]

    facts = TenantFacts(tenant_id=tenant_id, domain=domain)
    created = array("q", bytes(8 * plan.users))
    mirrored = set(plan.salesforce_match) | set(plan.taken_elsewhere)
    factory = UserFactory(random.Random(f"{seed}:users"), plan, brand, domain)

    def users() -> Iterator[dict[str, Any]]:
        for i, user_id in enumerate(user_ids):
            record, culture = factory.make(i, user_id)
            created[i] = factory.last_created
            if i in mirrored:
                facts.people[i] = Person(
                    record["userPrincipalName"], record["givenName"], record["surname"], record["mail"], culture
                )
            yield record
        facts.numbered_upns = factory.numbered_upns

    def groups() -> Iterator[dict[str, Any]]:
        for group, group_id in zip(plan.groups, group_ids, strict=True):
            yield {
                "id": group_id,
                "displayName": group.name,
                "members": [user_ids[i] for i in group.users] + [group_ids[g] for g in group.groups],
            }

    def assignments() -> Iterator[dict[str, Any]]:
        rng = random.Random(f"{seed}:assignments")

        def assignment(principal_id: str, principal_type: str, role_id: str, not_before: int) -> dict[str, Any]:
            facts.app_role_assignments += 1
            start = max(not_before, _ASSIGNED_FROM)
            return {
                "id": app_role_assignment_id(rng, principal_id),
                "principalId": principal_id,
                "principalType": principal_type,
                "appRoleId": role_id,
                "createdDateTime": iso(start + int(rng.random() * max(1, CREATED_UNTIL - start))),
            }

        for i in range(plan.users):
            scope = plan.scope[i]
            if scope == DIRECT:
                yield assignment(user_ids[i], "User", role_ids[plan.role[i]], created[i])
            elif scope == DEFAULT:
                yield assignment(user_ids[i], "User", catalog.DEFAULT_ACCESS_ROLE_ID, created[i])
            for extra in plan.extra_direct.get(i, ()):
                yield assignment(user_ids[i], "User", role_ids[extra], created[i])
        for group, group_id in zip(plan.groups, group_ids, strict=True):
            if group.role is not None:
                yield assignment(group_id, "Group", role_ids[group.role], _ASSIGNED_FROM)

    write_document(
        path,
        [
            ("tenant_id", tenant_id),
            ("service_principal", service_principal),
            ("users", Records(users())),
            ("groups", Records(groups())),
            ("appRoleAssignments", Records(assignments())),
            ("clients", clients),
        ],
    )
    return facts
