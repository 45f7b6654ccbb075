"""Entra user records: one call per user, with everything precomputed that can be.

This is the generator's hot loop (a million calls for the largest tenants), so pools and
cumulative weights are built once and each call only draws from them.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

from include.sandbox.generator import catalog
from include.sandbox.generator.messy import MESSY_KINDS, make_messy
from include.sandbox.generator.names import CULTURES, Culture
from include.sandbox.generator.plan import DELETED, DISABLED, Plan

CREATED_FROM = 1451606400  # 2016-01-01T00:00:00Z
CREATED_UNTIL = 1790812800  # 2026-10-01T00:00:00Z
REFERENCE_TIME = 1793491200  # 2026-11-01T00:00:00Z, "now" for soft deletions (fixed: files must repeat)
_SOFT_DELETE_WINDOW = 20 * 86400
_MAX_LOCAL_PART = 56
"""Room for a numeric suffix within the 64-character limit of a UPN's local part."""
_DEPARTMENTS = catalog.DEPARTMENT_NAMES


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _cumulative(weights: Any) -> list[float]:
    return list(itertools.accumulate(weights))


@dataclass(frozen=True)
class _CultureTables:
    culture: Culture
    languages: tuple[str | None, ...]
    language_weights: list[float]
    company: str


class UserFactory:
    def __init__(self, rng: random.Random, plan: Plan, brand: str, domain: str) -> None:
        self.rng = rng
        self.plan = plan
        self.domain = domain
        self.alt_mail_domain = f"{brand.lower()}-group.example"
        self.cultures = tuple(
            _CultureTables(
                culture,
                tuple(lang for lang, _ in culture.languages),
                _cumulative(w for _, w in culture.languages),
                culture.company_suffix.format(brand=brand),
            )
            for culture in CULTURES
        )
        self.culture_weights = _cumulative(c.weight for c in CULTURES)
        self.employee_types = tuple(t for t, _ in catalog.EMPLOYEE_TYPES)
        self.employee_type_weights = _cumulative(w for _, w in catalog.EMPLOYEE_TYPES)
        self.upn_counts: dict[str, int] = {}
        self.numbered_upns = 0
        self.last_nickname: str | None = None
        self.last_created = 0
        """Creation time (epoch seconds) of the user ``make`` returned last."""

    def make(self, index: int, user_id: str) -> tuple[dict[str, Any], Culture]:
        """The record of user ``index`` (its messy damage applied) and its culture.

        Draws use ``random()`` scaled to a range rather than ``randrange``/``choice``, which
        are several times slower in CPython; at a million users that is most of the run.
        """
        rand = self.rng.random
        tables = self.cultures[bisect.bisect_right(self.culture_weights, rand() * self.culture_weights[-1])]
        culture = tables.culture
        givens, surnames = (
            (culture.given_f, culture.surnames_f) if rand() < 0.5 else (culture.given_m, culture.surnames_m)
        )
        given, given_part = givens[int(rand() * len(givens))]
        surname, surname_part = surnames[int(rand() * len(surnames))]
        if culture.double_surname and rand() < culture.double_surname:
            second = surnames[int(rand() * len(surnames))][0]
            if second != surname:
                surname = f"{surname} {second}"  # the UPN keeps the first surname, as admins do

        base = f"{given_part}.{surname_part}" if given_part and surname_part else given_part or surname_part or "user"
        base = base[:_MAX_LOCAL_PART].rstrip(".-")
        count = self.upn_counts.get(base, 0) + 1
        self.upn_counts[base] = count
        local = base if count == 1 else f"{base}{count}"
        self.numbered_upns += count > 1
        upn = f"{local}@{self.domain}"

        if culture.family_first:
            display = f"{surname}{culture.separator}{given}"
        else:
            display = f"{given}{culture.separator}{surname}"
        department = _DEPARTMENTS[int(rand() * len(_DEPARTMENTS))]
        titles = catalog.DEPARTMENTS[department]
        employee_type = self.employee_types[
            bisect.bisect_right(self.employee_type_weights, rand() * self.employee_type_weights[-1])
        ]
        office_draw = rand()
        if office_draw < 0.3:
            office = f"Building {1 + int(rand() * 9)}, Floor {1 + int(rand() * 12)}"
        elif office_draw < 0.9:
            office = f"{culture.usage_location}-{1 + int(rand() * 9)}.{1 + int(rand() * 60):02d}"
        else:
            office = None
        flags = self.plan.flags[index]
        self.last_created = CREATED_FROM + int(rand() * (CREATED_UNTIL - CREATED_FROM))
        record: dict[str, Any] = {
            "id": user_id,
            "userPrincipalName": upn,
            "mail": f"{given_part}.{surname_part}@{self.alt_mail_domain}" if rand() < 0.05 else upn,
            "mailNickname": local,
            "displayName": display,
            "givenName": given,
            "surname": surname,
            "accountEnabled": not flags & DISABLED,
            "createdDateTime": iso(self.last_created),
            "jobTitle": titles[int(rand() * len(titles))] if rand() < 0.97 else None,
            "department": department,
            "employeeId": str(100000 + index) if employee_type not in (None, "Vendor") else None,
            "employeeType": employee_type,
            "companyName": tables.company,
            "officeLocation": office,
            "city": culture.cities[int(rand() * len(culture.cities))],
            "country": culture.country,
            "usageLocation": culture.usage_location if rand() < 0.99 else None,
            "preferredLanguage": tables.languages[
                bisect.bisect_right(tables.language_weights, rand() * tables.language_weights[-1])
            ],
            "businessPhones": (
                [f"{culture.phone_prefix} {10 + int(rand() * 90)} {100000 + int(rand() * 9900000)}"]
                if rand() < 0.7
                else []
            ),
        }
        if flags & DELETED:
            # The Graph emulator's marker for a soft-deleted (restorable) user.
            record["deletedDateTime"] = iso(REFERENCE_TIME - int(rand() * _SOFT_DELETE_WINDOW))
        messy = self.plan.messy[index]
        if messy:
            make_messy(MESSY_KINDS[messy - 1], record, self.rng, self.last_nickname)
        else:
            self.last_nickname = local
        return record, culture
