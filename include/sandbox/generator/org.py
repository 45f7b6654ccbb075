"""The org fixture (Salesforce side): licences, profiles, existing users, credentials.

Licence ceilings: for each licence the generator counts every user a full sync could need
active on it at the same time (in-scope, enabled, not deleted tenant users by the licence of
each role they hold, the default access role counting as Chatter Free, plus every active org
user not already counted: the integration user, users the pipeline never managed, and
existing users whose current profile sits on another licence). ``TotalLicenses`` is that
number times ``1 + licence_headroom``, rounded up, so the default 5 % headroom never
produces ``LICENSE_LIMIT_EXCEEDED``; a negative headroom (e.g. ``-0.02``: 98 % fit) is rounded
down and makes a full sync run out, but never below what active users already hold.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from include.sandbox.generator import catalog
from include.sandbox.generator.ids import SalesforceIds, consumer_key, secret
from include.sandbox.generator.names import CULTURES, Culture, SalesforceDefaults
from include.sandbox.generator.plan import DELETED, DISABLED, Plan
from include.sandbox.generator.tenant import Person, TenantFacts
from include.sandbox.generator.text import upn_part

API_VERSION = "62.0"
UNMANAGED_SHARE = 0.002
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STALE_CHOICES = ("LastName", "FirstName", "Email", "ProfileId", "LocaleSidKey")
_OTHER_DEFAULTS = SalesforceDefaults("Europe/London", "en_GB", "en_US")


@dataclass
class OrgSummary:
    matching: int = 0
    stale: int = 0
    inactive: int = 0
    unmanaged: int = 0
    licences: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Licence name → (needed by a full sync, TotalLicenses)."""


class _OrgBuilder:
    def __init__(self, plan: Plan, facts: TenantFacts, seed: int, brand: str) -> None:
        self.plan = plan
        self.facts = facts
        self.brand = brand
        self.rng = random.Random(f"{seed}:org")
        self.ids = SalesforceIds(self.rng)
        self.nicknames: set[str] = set()
        self.summary = OrgSummary()
        self.organization_id = self.ids.new("00D")
        self.licence_ids = {name: self.ids.new("100") for name in catalog.LICENCES}
        self.profile_ids = {profile.name: self.ids.new("00e") for profile in catalog.PROFILES}
        self.licence_of_profile_id = {self.profile_ids[p.name]: p.licence for p in catalog.PROFILES}
        self.role_weights = [role.weight for role in catalog.ROLES]

    def nickname(self, wanted: str) -> str:
        """CommunityNickname: at most 40 characters and unique in the org."""
        candidate, n = wanted[:40], 1
        while candidate.lower() in self.nicknames:  # Salesforce compares them case-insensitively
            n += 1
            candidate = f"{wanted[: 40 - len(str(n))]}{n}"
        self.nicknames.add(candidate.lower())
        return candidate

    def user(
        self,
        *,
        username: str,
        email: str,
        first: str | None,
        last: str,
        alias: str,
        profile: str,
        active: bool,
        federation: str | None,
        defaults: SalesforceDefaults,
    ) -> dict[str, Any]:
        return {
            "Id": self.ids.new("005"),
            "Username": username,
            "Email": email,
            "LastName": last,
            "FirstName": first,
            "Alias": alias[:8] or "user",
            "CommunityNickname": self.nickname(username.partition("@")[0]),
            "ProfileId": self.profile_ids[profile],
            "IsActive": active,
            "FederationIdentifier": federation,
            "TimeZoneSidKey": defaults.time_zone,
            "LocaleSidKey": defaults.locale,
            "EmailEncodingKey": "UTF-8" if self.rng.random() < 0.8 else "ISO-8859-1",
            "LanguageLocaleKey": defaults.language,
        }

    def profile_for(self, index: int) -> str:
        roles = self.plan.roles_of(index)
        real = sorted(r for r in roles if r != catalog.DEFAULT_ROLE)
        if real:
            return catalog.ROLES[real[0]].name
        if roles:
            return "Chatter Free User"
        return self.rng.choices(catalog.ROLES, weights=self.role_weights)[0].name

    def matched_user(self, index: int, person: Person, state: str) -> dict[str, Any]:
        """An existing Salesforce user whose Username is the tenant user's UPN."""
        rng = self.rng
        local, _, domain = person.upn.partition("@")
        provisioned_before = rng.random() < 0.5  # Entra's own default mapping: Alias = Mid(UPN, 1, 8)
        alias = local[:8] if provisioned_before else (upn_part(person.given)[:1] + upn_part(person.surname))[:8]
        record = self.user(
            username=person.upn,
            email=person.mail,
            first=person.given,
            last=person.surname,
            alias=alias,
            profile=self.profile_for(index),
            active=state != "inactive",
            federation=person.upn if provisioned_before else None,
            defaults=person.culture.salesforce,
        )
        if state == "stale":
            for stale_field in rng.sample(_STALE_CHOICES, rng.randint(1, 2)):
                self._make_stale(record, stale_field, person.culture, domain)
            self.summary.stale += 1
        self.summary.inactive += state == "inactive"
        self.summary.matching += 1
        return record

    def _make_stale(self, record: dict[str, Any], name: str, culture: Culture, domain: str) -> None:
        rng = self.rng
        if name == "LastName":
            others = [s for s, _ in culture.surnames_f + culture.surnames_m if s != record["LastName"]]
            record["LastName"] = rng.choice(others)  # a name from before a marriage, say
        elif name == "FirstName":
            others = [g for g, _ in culture.given_f + culture.given_m if g != record["FirstName"]]
            record["FirstName"] = rng.choice(others)
        elif name == "Email":
            record["Email"] = f"{record['Username'].partition('@')[0]}@legacy.{domain}"
        elif name == "ProfileId":
            others = [pid for pid in self.profile_ids.values() if pid != record["ProfileId"]]
            record["ProfileId"] = rng.choice(others)
        else:
            record["LocaleSidKey"] = "en_GB" if record["LocaleSidKey"] != "en_GB" else "en_US"

    def unmanaged_users(self, count: int) -> list[dict[str, Any]]:
        """Salesforce users with no Entra counterpart: the pipeline must never touch them."""
        rng = self.rng
        domain = f"{self.brand.lower()}-partners.example"
        taken: dict[str, int] = {}
        out = []
        for _ in range(count):
            culture = rng.choices(CULTURES, weights=[c.weight for c in CULTURES])[0]
            given, given_part = rng.choice(culture.given_m + culture.given_f)
            surname, surname_part = rng.choice(culture.surnames_m)
            base = f"{given_part}.{surname_part}".strip(".") or "partner"
            taken[base] = taken.get(base, 0) + 1
            local = base if taken[base] == 1 else f"{base}{taken[base]}"
            username = f"{local}@{domain}"
            out.append(
                self.user(
                    username=username,
                    email=username,
                    first=given,
                    last=surname,
                    alias=(given_part[:1] + surname_part)[:8],
                    profile=rng.choice([p.name for p in catalog.PROFILES if p.licence == catalog.SALESFORCE_LICENCE]),
                    active=rng.random() < 0.8,
                    federation=None,
                    defaults=culture.salesforce,
                )
            )
        self.summary.unmanaged = count
        return out

    def licence_totals(self, users: list[dict[str, Any]], matched_index: dict[str, int], headroom: float) -> None:
        plan = self.plan
        needed = dict.fromkeys(catalog.LICENCES, 0)
        desired: dict[int, set[str]] = {}
        for i in range(plan.users):
            if plan.flags[i] & (DISABLED | DELETED):
                continue
            roles = plan.roles_of(i)
            if not roles:
                continue
            licences = {
                catalog.CHATTER_FREE_LICENCE if r == catalog.DEFAULT_ROLE else catalog.ROLES[r].licence for r in roles
            }
            for licence in licences:
                needed[licence] += 1
            if i in plan.salesforce_match:
                desired[i] = licences
        current = dict.fromkeys(catalog.LICENCES, 0)
        for record in users:
            if not record["IsActive"]:
                continue
            licence = self.licence_of_profile_id[record["ProfileId"]]
            current[licence] += 1
            index = matched_index.get(record["Username"])
            if index is None or licence not in desired.get(index, ()):
                needed[licence] += 1
        for licence, need in needed.items():
            scaled = need * (1 + headroom)
            total = math.ceil(scaled - 1e-9) if headroom >= 0 else math.floor(scaled)
            self.summary.licences[licence] = (need, max(total, current[licence]))


def build_org(
    plan: Plan, facts: TenantFacts, seed: int, brand: str, licence_headroom: float
) -> tuple[dict[str, Any], OrgSummary]:
    builder = _OrgBuilder(plan, facts, seed, brand)
    rng = builder.rng
    integration_username = f"integration@{facts.domain}.sfdc"
    users = [
        builder.user(
            username=integration_username,
            email=f"salesforce-admins@{facts.domain}",
            first="Entra",
            last="Provisioning",
            alias="entraint",
            profile="System Administrator",
            active=True,
            federation=None,
            defaults=_OTHER_DEFAULTS,
        )
    ]
    matched_index: dict[str, int] = {}
    for index in sorted(plan.salesforce_match):
        person = facts.people[index]
        users.append(builder.matched_user(index, person, plan.salesforce_match[index]))
        matched_index[person.upn] = index
    users.extend(builder.unmanaged_users(max(3, round(plan.users * UNMANAGED_SHARE))))
    builder.licence_totals(users, matched_index, licence_headroom)

    org = {
        "organization_id": builder.organization_id,
        "api_version": API_VERSION,
        "user_licenses": [
            {"Id": builder.licence_ids[name], "Name": name, "TotalLicenses": builder.summary.licences[name][1]}
            for name in catalog.LICENCES
        ],
        "profiles": [
            {"Id": builder.profile_ids[p.name], "Name": p.name, "UserLicenseId": builder.licence_ids[p.licence]}
            for p in catalog.PROFILES
        ],
        "users": users,
        "usernames_taken_elsewhere": [facts.people[i].upn for i in plan.taken_elsewhere]
        + [f"admin@{brand.lower()}-partners.example"],
        "logins": [
            {
                "username": integration_username,
                "password": secret(rng, 20, _TOKEN_ALPHABET + "!#%+"),
                "security_token": secret(rng, 24, _TOKEN_ALPHABET),
            }
        ],
        "connected_apps": [
            {
                "consumer_key": consumer_key(rng),
                "consumer_secret": f"{rng.getrandbits(256):064X}",
                "run_as": integration_username,
            }
        ],
    }
    return org, builder.summary
