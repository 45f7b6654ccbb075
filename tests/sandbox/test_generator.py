"""The synthetic tenant generator: determinism, the fixture format, consistency, categories.

Categories are recomputed here from the written files alone (assignments, a cycle-safe walk
of the group graph, the records' own values), not read back from the generator's plan, so a
category the summary claims but the files do not hold fails the test.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from include.sandbox.generator import generate
from include.sandbox.generator.ids import salesforce_checksum
from include.sandbox.generator.text import upn_part
from tests.sandbox_process import REPO_ROOT

USERS = 2000
SEED = 7
DEFAULT_ROLE = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
VALID_MAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SF_PICKLISTS = {
    "TimeZoneSidKey": {
        "America/Los_Angeles",
        "America/New_York",
        "Europe/London",
        "Europe/Berlin",
        "Europe/Paris",
        "Asia/Tokyo",
    },
    "LocaleSidKey": {"en_US", "en_GB", "de_DE", "fr_FR", "ja_JP", "es_ES"},
    "LanguageLocaleKey": {"en_US", "de", "fr", "ja", "es"},
    "EmailEncodingKey": {"UTF-8", "ISO-8859-1"},
}


def _load(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return orjson.loads((out / "tenant.json").read_bytes()), orjson.loads((out / "org.json").read_bytes())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], dict[str, Any], dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("tenant-2000")
    summary = generate(users=USERS, seed=SEED, out_dir=out)
    tenant, org = _load(out)
    return summary, tenant, org, out


# --- an independent reading of the files ------------------------------------------------------


def _closure(tenant: dict[str, Any], root: str) -> tuple[set[str], list[str]]:
    """Groups reachable from ``root`` (itself included) and every user listed in them, per listing."""
    groups = {g["id"]: g for g in tenant["groups"]}
    seen, stack, listings = {root}, [root], []
    while stack:
        for member in groups[stack.pop()]["members"]:
            if member in groups:
                if member not in seen:
                    seen.add(member)
                    stack.append(member)
            else:
                listings.append(member)
    return seen, listings


def _roles(tenant: dict[str, Any]) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """Per user: roles assigned directly, roles through groups, and the assigned roots reaching them."""
    direct: dict[str, set[str]] = defaultdict(set)
    via_groups: dict[str, set[str]] = defaultdict(set)
    roots: dict[str, set[str]] = defaultdict(set)
    for assignment in tenant["appRoleAssignments"]:
        if assignment["principalType"] == "User":
            direct[assignment["principalId"]].add(assignment["appRoleId"])
        else:
            _, users = _closure(tenant, assignment["principalId"])
            for user in users:
                via_groups[user].add(assignment["appRoleId"])
                roots[user].add(assignment["principalId"])
    return direct, via_groups, roots


def _depth(tenant: dict[str, Any], root: str) -> int:
    """Longest chain of nested groups from ``root`` that does not revisit a group."""
    groups = {g["id"]: g for g in tenant["groups"]}

    def walk(group: str, path: frozenset[str]) -> int:
        nested = [m for m in groups[group]["members"] if m in groups and m not in path]
        return 1 + max((walk(m, path | {m}) for m in nested), default=0)

    return walk(root, frozenset({root}))


def _sf_id_ok(value: str, prefix: str) -> bool:
    if len(value) != 18 or not value.startswith(prefix):
        return False
    suffix = ""
    for chunk in (value[0:5], value[5:10], value[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isascii() and ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return value[15:] == suffix


def assert_consistent(tenant: dict[str, Any], org: dict[str, Any]) -> None:
    """Every reference resolves, ids are unique and well-formed, values fit Salesforce."""
    assert list(tenant) == ["tenant_id", "service_principal", "users", "groups", "appRoleAssignments", "clients"]
    assert list(org) == [
        "organization_id",
        "api_version",
        "user_licenses",
        "profiles",
        "users",
        "usernames_taken_elsewhere",
        "logins",
        "connected_apps",
    ]
    users = {u["id"]: u for u in tenant["users"]}
    groups = {g["id"]: g for g in tenant["groups"]}
    sp = tenant["service_principal"]
    role_ids = {r["id"] for r in sp["appRoles"]}
    guids = [tenant["tenant_id"], sp["id"], sp["appId"], sp["application_object_id"], *role_ids, *users, *groups]
    assert len(set(guids)) == len(guids)
    assert all(GUID.match(g) for g in guids)
    assert len(users) == len(tenant["users"]) and len(groups) == len(tenant["groups"])
    upns = [u["userPrincipalName"].lower() for u in tenant["users"]]
    assert len(set(upns)) == len(upns)
    assert all(upn.isascii() and upn.count("@") == 1 for upn in upns)
    for group in tenant["groups"]:
        assert all(m in users or m in groups for m in group["members"])
        assert len(set(group["members"])) == len(group["members"])
    assignment_ids = [a["id"] for a in tenant["appRoleAssignments"]]
    assert len(set(assignment_ids)) == len(assignment_ids)
    keys = [(a["principalId"], a["appRoleId"]) for a in tenant["appRoleAssignments"]]
    assert len(set(keys)) == len(keys), "Graph refuses the same role twice for one principal"
    for a in tenant["appRoleAssignments"]:
        expected_type = "User" if a["principalId"] in users else "Group" if a["principalId"] in groups else None
        assert a["principalType"] == expected_type
        assert a["appRoleId"] in role_ids or a["appRoleId"] == DEFAULT_ROLE
        if expected_type == "User":
            assert a["createdDateTime"] >= users[a["principalId"]]["createdDateTime"]
    assert tenant["clients"][0]["client_id"] == sp["appId"] and tenant["clients"][0]["client_secret"]

    assert _sf_id_ok(org["organization_id"], "00D")
    licences = {lic["Id"]: lic for lic in org["user_licenses"]}
    profiles = {p["Id"]: p for p in org["profiles"]}
    assert all(_sf_id_ok(i, "100") for i in licences) and all(_sf_id_ok(i, "00e") for i in profiles)
    assert all(p["UserLicenseId"] in licences for p in profiles.values())
    profile_names = {p["Name"] for p in profiles.values()}
    assert {r["value"] for r in sp["appRoles"]} <= profile_names, "every app role is a profile by Name"
    sf_ids = [u["Id"] for u in org["users"]]
    assert len(set(sf_ids)) == len(sf_ids) and all(_sf_id_ok(i, "005") for i in sf_ids)
    for field in ("Username", "CommunityNickname", "FederationIdentifier"):
        values = [str(u[field]).lower() for u in org["users"] if u[field] is not None]
        assert len(set(values)) == len(values), f"{field} must be unique"
    taken = {name.lower() for name in org["usernames_taken_elsewhere"]}
    used = Counter()
    for u in org["users"]:
        assert u["ProfileId"] in profiles
        assert u["Username"].lower() not in taken
        assert 0 < len(u["Alias"]) <= 8 and len(u["CommunityNickname"]) <= 40
        assert 0 < len(u["LastName"]) <= 80 and len(u["FirstName"] or "") <= 40
        assert VALID_MAIL.match(u["Email"]) and VALID_MAIL.match(u["Username"])
        for field, allowed in SF_PICKLISTS.items():
            assert u[field] in allowed, (field, u[field])
        if u["IsActive"]:
            used[profiles[u["ProfileId"]]["UserLicenseId"]] += 1
    assert all(used[i] <= lic["TotalLicenses"] for i, lic in licences.items())
    by_username = {u["Username"]: u for u in org["users"]}
    for login in org["logins"]:
        assert by_username[login["username"]]["IsActive"] and login["password"] and login["security_token"]
    for app in org["connected_apps"]:
        assert by_username[app["run_as"]]["IsActive"]
        assert app["consumer_key"].startswith("3MVG9") and len(app["consumer_key"]) == 85


# --- determinism and the CLI ------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(pair: Any, tmp_path: Path) -> None:
    _, _, _, out = pair
    generate(users=USERS, seed=SEED, out_dir=tmp_path / "again")
    generate(users=USERS, seed=SEED + 1, out_dir=tmp_path / "other")
    for name in ("tenant.json", "org.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes()


def test_cli_writes_the_pair_and_prints_the_summary_in_any_process(tmp_path: Path) -> None:
    """Two CLI runs with different string-hash seeds: no output may depend on set order."""
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        result = subprocess.run(
            [sys.executable, "-m", "include.sandbox", "generate", "--users", "300", "--seed", "3", "--out", str(out)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "users: 300" in result.stdout and "conflicting_roles:" in result.stdout
        outputs.append(((out / "tenant.json").read_bytes(), (out / "org.json").read_bytes()))
    assert outputs[0] == outputs[1]
    tenant, org = _load(tmp_path / "1")
    assert len(tenant["users"]) == 300
    assert_consistent(tenant, org)


@pytest.mark.parametrize("users", [1, 2, 5, 60])
def test_tiny_tenants_are_consistent(users: int, tmp_path: Path) -> None:
    summary = generate(users=users, seed=users, out_dir=tmp_path)
    tenant, org = _load(tmp_path)
    assert summary["users"] == len(tenant["users"]) == users
    assert_consistent(tenant, org)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users"):
        generate(users=0, seed=1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="messy_share"):
        generate(users=10, seed=1, out_dir=tmp_path, messy_share=1.5)
    with pytest.raises(ValueError, match="licence_headroom"):
        generate(users=10, seed=1, out_dir=tmp_path, licence_headroom=-1)


# --- the 2,000-user tenant --------------------------------------------------------------------


def test_files_are_consistent(pair: Any) -> None:
    _, tenant, org, _ = pair
    assert_consistent(tenant, org)


def test_scope_and_role_categories_match_the_summary(pair: Any) -> None:
    summary, tenant, _, _ = pair
    direct, via_groups, roots = _roles(tenant)
    ids = [u["id"] for u in tenant["users"]]
    real = {u: {r for r in direct[u] if r != DEFAULT_ROLE} for u in ids}
    roles = {u: direct[u] | via_groups[u] for u in ids}

    assert sum(1 for u in ids if real[u]) == summary["assigned_directly"]
    assert sum(1 for u in ids if not direct[u] and via_groups[u]) == summary["assigned_through_groups"]
    assert sum(1 for u in ids if roles[u] == {DEFAULT_ROLE}) == summary["assigned_default_access_role"]
    assert sum(1 for u in ids if not roles[u]) == summary["unassigned"]
    conflicts = [u for u in ids if len(roles[u]) > 1]
    assert len(conflicts) == summary["conflicting_roles"]
    # All three ways to hold two roles are present.
    assert any(len(via_groups[u]) > 1 and not direct[u] for u in conflicts)
    assert any(direct[u] and via_groups[u] and direct[u] != via_groups[u] for u in conflicts)
    assert any(len(direct[u]) > 1 for u in conflicts)
    single = [u for u in ids if len(roles[u]) == 1]
    assert sum(1 for u in single if not direct[u] and len(roots[u]) > 1) == summary["same_role_two_groups"]
    assert sum(1 for u in single if direct[u] and via_groups[u]) == summary["same_role_direct_and_group"]
    for key in ("conflicting_roles", "same_role_two_groups", "same_role_direct_and_group", "two_paths_one_tree"):
        assert summary[key] >= 1, key

    group_roots = [a["principalId"] for a in tenant["appRoleAssignments"] if a["principalType"] == "Group"]
    two_paths = 0
    for root in group_roots:
        _, listings = _closure(tenant, root)
        two_paths += sum(1 for n in Counter(listings).values() if n > 1)
    assert two_paths == summary["two_paths_one_tree"]
    assert summary["groups_assigned"] == len(group_roots)
    assert any(not _closure(tenant, root)[1] for root in group_roots), "an assigned group with no members"


def test_nesting_depth_and_cycles(pair: Any) -> None:
    summary, tenant, _, _ = pair
    members = {g["id"]: set(g["members"]) for g in tenant["groups"]}
    roots = [a["principalId"] for a in tenant["appRoleAssignments"] if a["principalType"] == "Group"]
    depths = {_depth(tenant, root) for root in roots}
    assert {2, 3, 4} <= depths
    assert max(depths) == summary["group_nesting_max_depth"] == 4
    two_cycles = [(a, b) for a in members for b in members[a] if b in members and a in members[b]]
    assert two_cycles, "A ∋ B ∋ A"
    assert summary["group_cycles"] >= 2
    unassigned_groups = set(members) - {g for root in roots for g in _closure(tenant, root)[0]}
    assert any(members[g] & unassigned_groups for g in unassigned_groups), "nesting outside scope"


def test_user_states_and_messy_records(pair: Any) -> None:
    summary, tenant, _, _ = pair
    users = tenant["users"]
    assert sum(1 for u in users if u["accountEnabled"] is False) == summary["users_disabled"] >= 1
    assert sum(1 for u in users if u.get("deletedDateTime")) == summary["users_soft_deleted"] >= 1
    nicknames = Counter(u["mailNickname"] for u in users)

    def has_emoji(u: dict[str, Any]) -> bool:
        return any(ord(ch) > 0xFFFF for ch in f"{u['givenName']}{u['surname']}")

    found = {
        "missing_surname": [u for u in users if u["surname"] is None],
        "missing_mail": [u for u in users if u["mail"] is None],
        "bad_mail": [u for u in users if u["mail"] is not None and not VALID_MAIL.match(u["mail"])],
        "long_given_name": [u for u in users if len(u["givenName"]) > 40],
        "long_surname": [u for u in users if u["surname"] and len(u["surname"]) > 80],
        "duplicate_nickname": [u for u in users if nicknames[u["mailNickname"]] > 1],
        "comma": [u for u in users if "," in u["displayName"]],
        "double_quote": [u for u in users if '"' in u["givenName"]],
        "newline": [u for u in users if "\n" in (u["department"] or "")],
        "surrounding_spaces": [u for u in users if u["givenName"] != u["givenName"].strip()],
        "na_text": [u for u in users if "#N/A" in (u["surname"], u["jobTitle"])],
        "formula": [u for u in users if (u["jobTitle"] or " ")[0] in "=+-@"],
        "emoji": [u for u in users if has_emoji(u)],
    }
    for kind, hits in found.items():
        assert hits, f"no {kind} record"
    assert summary["messy"] == round(USERS * 0.03)
    # UPNs are never damaged: ASCII, folded, numbered when a name repeats.
    assert all(re.match(r"^[a-z-]+(\.[a-z-]+)?\d*@", u["userPrincipalName"]) for u in users)
    assert sum(1 for u in users if re.search(r"\d@", u["userPrincipalName"])) == summary["upns_numbered"] > 0
    assert any(u["mail"] and u["mail"] != u["userPrincipalName"] and VALID_MAIL.match(u["mail"]) for u in users)


def test_names_span_scripts_and_languages(pair: Any) -> None:
    _, tenant, _, _ = pair
    names = " ".join(u["displayName"] for u in tenant["users"])
    scripts = {
        "Cyrillic": "[\u0400-\u04ff]",
        "Greek": "[\u0370-\u03ff]",
        "Han": "[\u4e00-\u9fff]",
        "Kana": "[\u3040-\u30ff]",
        "Hangul": "[\uac00-\ud7af]",
        "Arabic": "[\u0600-\u06ff]",
        "Hebrew": "[\u0590-\u05ff]",
        "Devanagari": "[\u0900-\u097f]",
        "German": "[äöüß]",
        "French": "[éèçêëï]",
        "Spanish": "[ñáíóú]",
        "Polish": "[łśżźąęń]",
        "Nordic": "[øåæ]",
        "Vietnamese": "[đĐễạầươ]",
    }
    for script, pattern in scripts.items():
        assert re.search(pattern, names), f"no {script} name"
    languages = {u["preferredLanguage"] for u in tenant["users"]}
    assert languages == {"en-US", "de-DE", "fr-FR", "ja-JP", "es-ES", "it-IT", "nl-NL", "pt-BR", "zh-CN", None}
    for field in ("officeLocation", "city", "country", "companyName", "employeeType", "usageLocation", "employeeId"):
        assert any(u[field] for u in tenant["users"]), field


def test_org_mirrors_part_of_the_tenant(pair: Any) -> None:
    summary, tenant, org, _ = pair
    direct, via_groups, _ = _roles(tenant)
    by_upn = {u["userPrincipalName"]: u for u in tenant["users"]}
    profiles = {p["Id"]: p["Name"] for p in org["profiles"]}
    matched = [(u, by_upn[u["Username"]]) for u in org["users"] if u["Username"] in by_upn]
    assert len(matched) == summary["salesforce_users_matching_tenant"]

    def in_scope(t: dict[str, Any]) -> bool:
        return bool(direct[t["id"]] | via_groups[t["id"]]) and t["accountEnabled"] and not t.get("deletedDateTime")

    def stale(sf: dict[str, Any], t: dict[str, Any]) -> bool:
        return (sf["LastName"], sf["FirstName"], sf["Email"]) != (t["surname"], t["givenName"], t["mail"])

    assert any(stale(sf, t) and in_scope(t) for sf, t in matched)
    assert any(not sf["IsActive"] and in_scope(t) for sf, t in matched), "an inactive user to reactivate"
    assert any(sf["IsActive"] and t["accountEnabled"] is False for sf, t in matched), "a user to deactivate"
    assert any(sf["IsActive"] and not (direct[t["id"]] | via_groups[t["id"]]) for sf, t in matched)
    unmanaged = [u for u in org["users"] if u["Username"] not in by_upn]
    assert len(unmanaged) == summary["salesforce_users_unmanaged"] + 1  # plus the integration user
    integration = org["logins"][0]["username"]
    assert profiles[next(u["ProfileId"] for u in org["users"] if u["Username"] == integration)]
    taken = [by_upn[name] for name in org["usernames_taken_elsewhere"] if name in by_upn]
    assert taken and all(in_scope(t) for t in taken)


def _licence_need(tenant: dict[str, Any], org: dict[str, Any]) -> dict[str, int]:
    """Seats a full sync can need at once: desired in-scope users plus active users not among them."""
    direct, via_groups, _ = _roles(tenant)
    role_names = {r["id"]: r["value"] for r in tenant["service_principal"]["appRoles"]}
    licence_names = {lic["Id"]: lic["Name"] for lic in org["user_licenses"]}
    licence_of_profile = {p["Name"]: licence_names[p["UserLicenseId"]] for p in org["profiles"]}
    licence_of_profile_id = {p["Id"]: licence_names[p["UserLicenseId"]] for p in org["profiles"]}
    need: Counter[str] = Counter()
    desired: dict[str, set[str]] = {}
    for u in tenant["users"]:
        roles = direct[u["id"]] | via_groups[u["id"]]
        if not roles or not u["accountEnabled"] or u.get("deletedDateTime"):
            continue
        wanted = {licence_of_profile[role_names.get(r, "Chatter Free User")] for r in roles}
        need.update(wanted)
        desired[u["userPrincipalName"]] = wanted
    for sf in org["users"]:
        licence = licence_of_profile_id[sf["ProfileId"]]
        if sf["IsActive"] and licence not in desired.get(sf["Username"], set()):
            need[licence] += 1
    return dict(need)


def test_licences_fit_a_full_sync_with_five_percent_headroom(pair: Any) -> None:
    _, tenant, org, _ = pair
    need = _licence_need(tenant, org)
    totals = {lic["Name"]: lic["TotalLicenses"] for lic in org["user_licenses"]}
    assert set(totals) == {"Salesforce", "Salesforce Platform", "Chatter Free"}
    for name, total in totals.items():
        assert total == math.ceil(need[name] * 1.05 - 1e-9), name


def test_negative_headroom_makes_licences_run_out(tmp_path: Path) -> None:
    generate(users=500, seed=2, out_dir=tmp_path, licence_headroom=-0.02)
    tenant, org = _load(tmp_path)
    assert_consistent(tenant, org)  # still loadable: never below the seats already in use
    need = _licence_need(tenant, org)
    totals = {lic["Name"]: lic["TotalLicenses"] for lic in org["user_licenses"]}
    assert totals["Salesforce"] < need["Salesforce"]


# --- building blocks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("Müller", "muller"),
        ("Łukasz", "lukasz"),
        ("Sørensen", "sorensen"),
        ("Straßburger", "strassburger"),
        ("Þórsson", "thorsson"),
        ("Guðmundsdóttir", "gudmundsdottir"),
        ("Đặng", "dang"),
        ("Cœur", "coeur"),
        ("van 't Hof", "vanthof"),
        ("O'Brien", "obrien"),
        ("Jean-François", "jean-francois"),
        ("佐藤", ""),
    ],
)
def test_upn_part_folds_like_normalize_diacritics(name: str, part: str) -> None:
    assert upn_part(name) == part


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [("00e000000000001", "AAA"), ("ABCDEFGHIJKLMNO", "555"), ("A0000B0000C0000", "BBB"), ("0000A0000000000", "QAA")],
)
def test_salesforce_checksum(id15: str, suffix: str) -> None:
    assert salesforce_checksum(id15) == suffix
