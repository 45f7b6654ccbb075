"""The org snapshot (Bulk 2.0 query of users, REST query of profiles) against the sandbox, and
profile name → ProfileId resolution."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from include.provisioning.errors import is_configuration_error
from include.provisioning.salesforce.client import SalesforceSession, connect
from include.provisioning.salesforce.fields import SalesforceFieldError
from include.provisioning.salesforce.jobs import BulkJobError
from include.provisioning.salesforce.org import fetch_profiles, fetch_users, linked_or_matching, user_query
from include.provisioning.salesforce.profiles import resolve_profiles
from include.provisioning.salesforce.settings import settings_from_env
from include.sandbox.salesforce.validation import make_id
from tests.sandbox_process import REPO_ROOT, SandboxProcess

FIELDS = [
    "Username",
    "Email",
    "FirstName",
    "LastName",
    "Title",
    "Street",
    "IsActive",
    "ProfileId",
    "FederationIdentifier",
]
NASTY = [
    "O'Brien, Jr.",
    'The "Boss"',
    "two\nlines",
    '=HYPERLINK("http://x")',
    "+1-555",
    "NA",
    "null",
    "  padded  ",
    "Zoë Ångström",
    "李小龙",
    "🙂 emoji",
    "#VALUE!",
    "semi;colon|pipe^caret`tick",
    "tab\there",
]


def big_org(base: dict[str, Any], n: int) -> dict[str, Any]:
    """The example org plus ``n`` users whose names, titles and streets are awkward text."""
    org = copy.deepcopy(base)
    for lic in org["user_licenses"]:
        lic["TotalLicenses"] = n + 100
    for i in range(n):
        nasty = NASTY[i % len(NASTY)]
        user: dict[str, Any] = {
            "Id": make_id("005", 1000 + i),
            "Username": f"user{i:05d}@big.example",
            "Email": f"user{i:05d}@big.example",
            "LastName": f"{nasty} {i}",
            "Alias": f"u{i:05d}",
            "CommunityNickname": f"user{i:05d}",
            "ProfileId": "00e000000000001AAA" if i % 3 else "00e000000000003AAA",
            "IsActive": i % 10 != 0,
            "TimeZoneSidKey": "Europe/Paris",
            "LocaleSidKey": "fr_FR",
            "EmailEncodingKey": "UTF-8",
            "LanguageLocaleKey": "fr",
        }
        if i % 2:
            user["FirstName"] = nasty
        if i % 5 == 0:
            user["Title"] = nasty
            user["Street"] = f"{i} Main St\nSuite {nasty}"
        if i % 7 == 0:
            user["FederationIdentifier"] = f"fed-{i}@big.example"
        org["users"].append(user)
    return org


def expected_frame(org: dict[str, Any], fields: list[str]) -> pd.DataFrame:
    def cell(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    rows = [[user["Id"], *(cell(user.get(f)) for f in fields)] for user in org["users"]]
    return pd.DataFrame(rows, columns=["Id", *fields], dtype=object)


def session_for(sandbox: SandboxProcess) -> SalesforceSession:
    return connect(settings_from_env(sandbox.settings))


def sorted_by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("Id").reset_index(drop=True)


def test_user_query_puts_id_first_once() -> None:
    assert user_query(["Username", "id", "Username", "IsActive"]) == "SELECT Id, Username, IsActive FROM User"
    assert user_query(["Email"], "IsActive = true") == "SELECT Id, Email FROM User WHERE IsActive = true"


def test_fetch_users_reads_a_2000_user_org_exactly(sandbox: SandboxProcess) -> None:
    org = big_org(sandbox.org, 2000)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org)).raise_for_status()
    session = session_for(sandbox)
    frame = fetch_users(session, FIELDS)
    assert list(frame.columns) == ["Id", *FIELDS]
    assert len(frame) == 2002
    pd.testing.assert_frame_equal(sorted_by_id(frame), sorted_by_id(expected_frame(org, FIELDS)))
    assert frame["Title"].isna().sum() == 2002 - 400  # nulls are None, not "" or NaN strings
    assert all(v is None for v in frame.loc[frame["Title"].isna(), "Title"])


def test_fetch_users_follows_result_pages(sandbox: SandboxProcess) -> None:
    org = big_org(sandbox.org, 1500)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org)).raise_for_status()
    session = session_for(sandbox)
    frame = fetch_users(session, ["Username", "LastName"], page_size=700)
    pd.testing.assert_frame_equal(sorted_by_id(frame), sorted_by_id(expected_frame(org, ["Username", "LastName"])))
    routes = sandbox.requests("salesforce")["by_route"]
    assert sum(n for route, n in routes.items() if route.endswith("/results")) == 3  # 1502 rows, 700 a page


def test_fetch_users_on_a_generated_org(sandbox: SandboxProcess, tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "include.sandbox",
            "generate",
            "--users",
            "2000",
            "--seed",
            "11",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    org = orjson.loads((tmp_path / "org.json").read_bytes())
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org)).raise_for_status()
    app = org["connected_apps"][0]  # the generated org has its own connected app
    settings = dataclasses.replace(
        settings_from_env(sandbox.settings), consumer_key=app["consumer_key"], consumer_secret=app["consumer_secret"]
    )
    frame = fetch_users(connect(settings), FIELDS)
    pd.testing.assert_frame_equal(sorted_by_id(frame), sorted_by_id(expected_frame(org, FIELDS)))


def test_fetch_users_with_no_match_gives_an_empty_frame(sandbox: SandboxProcess) -> None:
    frame = fetch_users(session_for(sandbox), ["Username"], where="Username = 'nobody@nowhere.example'")
    assert list(frame.columns) == ["Id", "Username"] and frame.empty


def test_fetch_users_names_a_bad_field_as_a_configuration_error(sandbox: SandboxProcess) -> None:
    with pytest.raises(SalesforceFieldError) as caught:
        fetch_users(session_for(sandbox), ["Username", "NoSuchField__c"])
    assert (caught.value.code, caught.value.field) == ("INVALID_FIELD", "NoSuchField__c")
    assert is_configuration_error(caught.value) and not isinstance(caught.value, BulkJobError)


def test_fetch_profiles(sandbox: SandboxProcess) -> None:
    profiles = fetch_profiles(session_for(sandbox))
    assert profiles.to_dict("records") == [
        {"Id": p["Id"], "Name": p["Name"], "UserLicenseId": p["UserLicenseId"]} for p in sandbox.org["profiles"]
    ]


# --- resolve_profiles -------------------------------------------------------------------------

PROFILES = pd.DataFrame(
    {
        "Id": ["00eA", "00eB", "00eC", "00eD"],
        "Name": ["Standard User", "System Administrator", "Sales", "SALES"],
        "UserLicenseId": ["100A", "100A", "100A", "100A"],
    }
)


def test_resolve_profiles_matches_names_ignoring_case() -> None:
    mapped = pd.DataFrame(
        {
            "id": ["e1", "e2", "e3"],
            "Username": ["a@x.example", "b@x.example", "c@x.example"],
            "ProfileName": ["standard user", "System Administrator", "Standard User"],
            "IsActive": [True, True, False],
        },
        index=[10, 11, 12],
    )
    resolved, errors = resolve_profiles(mapped, PROFILES)
    assert errors == {}
    assert list(resolved.columns) == ["id", "Username", "ProfileId", "IsActive"]
    assert list(resolved["ProfileId"]) == ["00eA", "00eB", "00eA"]
    assert list(resolved.index) == [10, 11, 12]


def test_resolve_profiles_fails_unknown_empty_and_ambiguous_names() -> None:
    mapped = pd.DataFrame(
        {
            "id": ["e1", "e2", "e3", "e4", "e5", "e6"],
            "ProfileName": ["Standard User", "Marketing", None, "Standard User ", "Sales", "sAlEs"],
        }
    )
    resolved, errors = resolve_profiles(mapped, PROFILES)
    assert list(resolved["id"]) == ["e1", "e5"]
    assert list(resolved["ProfileId"]) == ["00eA", "00eC"]  # the exact spelling wins among case twins
    assert errors["e2"] == [
        "profile 'Marketing' does not exist in Salesforce (known: SALES, Sales, Standard User, System Administrator)"
    ]
    assert errors["e3"] == ["no Salesforce profile: the user's app role gives no profile name"]
    assert errors["e4"][0].startswith("profile 'Standard User ' does not exist")  # no trimming
    assert "ambiguous" in errors["e6"][0]
    assert set(errors) == {"e2", "e3", "e4", "e6"}


def test_resolve_profiles_without_a_profile_column_changes_nothing() -> None:
    mapped = pd.DataFrame({"id": ["e1"], "Username": ["a@x.example"]})
    resolved, errors = resolve_profiles(mapped, PROFILES)
    assert errors == {} and resolved is mapped


def test_the_users_of_a_few_entra_users_are_those_linked_or_holding_their_match_keys() -> None:
    where = linked_or_matching(
        ["005000000000001AAA", "005000000000001AAA"],
        {"Username": ["o'brien@contoso.example", None, ""], "FederationIdentifier": [float("nan")], "X": []},
    )
    assert where == "Id IN ('005000000000001AAA') OR Username IN ('o\\'brien@contoso.example')"
    assert linked_or_matching([], {"Username": [None]}) == "Id = null"


def test_a_focused_query_returns_the_linked_and_matching_users_only(sandbox: SandboxProcess) -> None:
    org = big_org(sandbox.org, 300)
    sandbox.salesforce.put("/_sandbox/state", content=orjson.dumps(org)).raise_for_status()
    users = org["users"]
    where = linked_or_matching(
        [users[7]["Id"]],
        {"Username": [users[3]["Username"].upper()]},  # Username compares case-insensitively
    )
    frame = fetch_users(session_for(sandbox), ["Username", "IsActive"], where=where)
    assert sorted(frame["Id"]) == sorted([users[3]["Id"], users[7]["Id"]])
