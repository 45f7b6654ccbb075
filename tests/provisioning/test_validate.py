"""Validation of the USERS frame with the expectation suite in include/expectations/."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from include.provisioning.model import DEFAULT_ACCESS_ROLE_VALUE
from include.provisioning.settings import DEFAULT_MAPPING_PATH, DEFAULT_SUITE_PATH
from include.provisioning.validate import ROLE_COUNT_COLUMN, SuiteError, expectation_reason, load_suite, validate
from include.sandbox.generator.messy import MESSY_KINDS, make_messy
from tests.sandbox_process import FIXTURES

MAIL_SHAPE = "mail: not e-mail-shaped (expect_column_values_to_match_regex)"
MAIL_MISSING = "mail: missing (expect_column_values_to_not_be_null)"
UPN_SHARED = "userPrincipalName: shared with another user (expect_column_values_to_be_unique)"
NO_ROLE = "appRoleAssignments: no app role assignment resolved (expect_column_values_to_be_between)"


def longer(column: str, limit: int) -> str:
    return f"{column}: longer than {limit} characters (expect_column_value_lengths_to_be_between)"


def example_users() -> pd.DataFrame:
    """The example tenant as extract would hand it over: roles resolved through (nested) groups."""
    tenant = json.loads((FIXTURES / "example-tenant.json").read_text())
    role_values = {role["id"]: role["value"] for role in tenant["service_principal"]["appRoles"]}
    members = {group["id"]: group["members"] for group in tenant["groups"]}

    def users_in(principal: str, seen: set[str]) -> set[str]:
        if principal not in members:
            return {principal}
        if principal in seen:
            return set()
        seen.add(principal)
        return set().union(*(users_in(m, seen) for m in members[principal]))

    roles: dict[str, set[str]] = {}
    for assignment in tenant["appRoleAssignments"]:
        for user_id in users_in(assignment["principalId"], set()):
            roles.setdefault(user_id, set()).add(role_values[assignment["appRoleId"]])
    rows = []
    for user in tenant["users"]:
        assigned = user["id"] in roles
        reason = None if assigned and user["accountEnabled"] else ("disabled" if assigned else "unassigned")
        rows.append(
            {
                **user,
                "appRoleAssignments": sorted(roles.get(user["id"], [])),
                "IsSoftDeleted": reason is not None,
                "scopeReason": reason,
            }
        )
    return pd.DataFrame(rows)


def with_changes(frame: pd.DataFrame, changes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frame = frame.copy()
    for upn, values in changes.items():
        row = frame.index[frame["userPrincipalName"] == upn][0]
        for column, value in values.items():
            frame.at[row, column] = value
    return frame


def reasons_by_upn(result) -> dict[str, list[str]]:
    return {q.user_principal_name: q.reasons for q in result.quarantined}


def test_clean_example_tenant_passes_and_soft_deleted_rows_pass_through() -> None:
    users = example_users()
    result = validate(users)
    assert result.quarantined == []
    assert result.failure_share == 0.0
    assert result.checked == 5  # disabled.user and not.assigned are not validated
    assert result.expectations == len(json.loads(DEFAULT_SUITE_PATH.read_text())["expectations"])
    pd.testing.assert_frame_equal(result.valid, users)


def test_messy_users_are_quarantined_with_the_rules_they_broke() -> None:
    users = with_changes(
        example_users(),
        {
            "adele.vance@contoso.example": {"mail": "adele.vance@", "givenName": "A" * 41},
            "alex.wilber@contoso.example": {"mail": None},
            "megan.bowen@contoso.example": {"appRoleAssignments": []},
            "zoe.muller@contoso.example": {"userPrincipalName": "zoë.müller@contoso.example"},
            "no.surname@contoso.example": {"mail": "no.surname@contoso.example\n", "jobTitle": "T" * 81},
        },
    )
    result = validate(users)
    assert reasons_by_upn(result) == {
        "adele.vance@contoso.example": [MAIL_SHAPE, longer("givenName", 40)],
        "megan.bowen@contoso.example": [NO_ROLE],
        "zoë.müller@contoso.example": ["userPrincipalName: not e-mail-shaped (expect_column_values_to_match_regex)"],
        "no.surname@contoso.example": [MAIL_SHAPE, longer("jobTitle", 80)],
    }
    # mail missing guards creation only: Alex goes on, the reason travels to the diff.
    alex = users.loc[users["userPrincipalName"] == "alex.wilber@contoso.example", "id"].iloc[0]
    assert result.blocks_create == {alex: [MAIL_MISSING]}
    assert result.blocks_update == {}
    assert {q.entra_id for q in result.quarantined} == set(users.loc[users.index[:5], "id"]) - {alex}
    assert result.failure_share == 4 / 5
    assert list(result.valid["userPrincipalName"]) == [
        "alex.wilber@contoso.example",
        "disabled.user@contoso.example",
        "not.assigned@contoso.example",
    ]
    assert result.failed_expectations[MAIL_SHAPE] == 2
    assert result.failed_expectations[MAIL_MISSING] == 1


def test_duplicate_upns_quarantine_every_holder_but_ignore_leavers() -> None:
    users = example_users()
    users.loc[users["userPrincipalName"] == "alex.wilber@contoso.example", "userPrincipalName"] = (
        "adele.vance@contoso.example"
    )
    users.loc[users["userPrincipalName"] == "not.assigned@contoso.example", "userPrincipalName"] = (
        "megan.bowen@contoso.example"
    )
    result = validate(users)
    assert sorted((q.entra_id, q.reasons[0]) for q in result.quarantined) == [
        ("00000000-0000-0000-0000-000000000001", UPN_SHARED),
        ("00000000-0000-0000-0000-000000000002", UPN_SHARED),
    ]


def test_soft_deleted_rows_are_not_validated() -> None:
    users = with_changes(
        example_users(), {"disabled.user@contoso.example": {"mail": "broken", "appRoleAssignments": []}}
    )
    result = validate(users)
    assert result.quarantined == []
    assert "broken" in set(result.valid["mail"])


@pytest.mark.parametrize("kind", MESSY_KINDS)
def test_every_messy_kind_of_the_tenant_generator_gets_the_right_verdict(kind: str) -> None:
    """The sandbox generator's damaged records: those Salesforce would reject are quarantined."""
    expected = {
        "bad_mail": [MAIL_SHAPE],
        "long_given_name": [longer("givenName", 40)],
        "long_surname": [longer("surname", 80)],
        "newline": [  # single-line Salesforce fields; a CR/LF mix cannot be sent in any Bulk job
            "jobTitle: contains a line break (expect_column_values_to_not_match_regex)",
            "department: contains a line break (expect_column_values_to_not_match_regex)",
        ],
    }
    rng = random.Random(7)
    rows = []
    for number in range(12):
        record = example_users().iloc[0].to_dict() | {
            "id": f"id-{number}",
            "userPrincipalName": f"user{number}@contoso.example",
            "mail": f"user{number}@contoso.example",
            "mailNickname": f"user{number}",
        }
        make_messy(kind, record, rng, previous_nickname="user0")
        rows.append(record)
    result = validate(pd.DataFrame(rows))
    verdicts = [q.reasons for q in result.quarantined]
    if kind == "missing_mail":  # guards creation only: held by the diff if it would create them
        assert verdicts == []
        assert result.blocks_create == {f"id-{n}": [MAIL_MISSING] for n in range(12)}
        return
    if kind == "na_text":  # the generator puts "#N/A" in the surname or in the job title
        na_reasons = {
            f"{column}: is the text #N/A (expect_column_values_to_not_match_regex)"
            for column in ("surname", "jobTitle")
        }
        assert len(verdicts) == 12 and all(len(v) == 1 and v[0] in na_reasons for v in verdicts), verdicts
        return
    assert verdicts == ([expected[kind]] * 12 if kind in expected else [])


def test_failure_share_over_the_limit() -> None:
    rows = [
        {
            "id": f"id-{n}",
            "userPrincipalName": f"user{n}@contoso.example",
            "mail": f"user{n}@contoso.example" if n >= 9 else f"user{n} at contoso",
            "appRoleAssignments": ["Standard User"],
            "IsSoftDeleted": n >= 20,
        }
        for n in range(25)
    ]
    result = validate(pd.DataFrame(rows))
    assert result.checked == 20
    assert len(result.quarantined) == 9
    assert result.failure_share == pytest.approx(0.45)
    assert result.failure_share > 0.4


def test_a_resolved_role_is_required_but_which_one_is_left_to_the_mapping() -> None:
    """Two roles or only the default access role pass here: the mapping's SingleAppRoleAssignment
    quarantines them with Entra's own reason (and knows whether ProfileName has a default)."""
    rows = [
        {"id": "a", "appRoleAssignments": ["Standard User", DEFAULT_ACCESS_ROLE_VALUE]},
        {"id": "b", "appRoleAssignments": ["Standard User", "Standard User"]},
        {"id": "c", "appRoleAssignments": None},
        {"id": "d", "appRoleAssignments": []},
        {"id": "e", "appRoleAssignments": [DEFAULT_ACCESS_ROLE_VALUE]},
        {"id": "f", "appRoleAssignments": ["Standard User", "System Administrator"]},
        {"id": "g", "appRoleAssignments": [None]},
    ]
    frame = pd.DataFrame(rows).assign(userPrincipalName=lambda f: f["id"] + "@contoso.example")
    frame["mail"] = frame["userPrincipalName"]
    result = validate(frame)
    assert {q.entra_id: q.reasons for q in result.quarantined} == {"c": [NO_ROLE], "d": [NO_ROLE], "g": [NO_ROLE]}


def test_validation_opens_no_network_connection_and_prints_no_progress_bars(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"validate tried to open a connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    result = validate(example_users())
    assert result.checked == 5
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out


def write_suite(tmp_path: Path, expectations: Any, name: str = "suite.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"name": "test", "expectations": expectations}))
    return path


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"nope\.json does not exist"):
        validate(example_users(), tmp_path / "nope.json")


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", "expectations": [')
    with pytest.raises(SuiteError, match=r"broken\.json is not valid JSON"):
        load_suite(path)


def test_suite_without_an_expectations_list(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text('["expect_column_values_to_not_be_null"]')
    with pytest.raises(SuiteError, match="'expectations' list"):
        load_suite(path)


def test_unknown_expectation_is_named(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
            {"type": "expect_column_values_to_be_email", "kwargs": {"column": "mail"}},
        ],
    )
    with pytest.raises(
        SuiteError, match=r"expectation #2 .*unknown expectation type 'expect_column_values_to_be_email'"
    ):
        load_suite(path)


def test_expectation_with_bad_arguments_is_named(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"type": "expect_column_values_to_not_be_null", "kwargs": {}}])
    with pytest.raises(SuiteError, match=r"expectation #1 \(expect_column_values_to_not_be_null\): .*column"):
        load_suite(path)


def test_invalid_regex_is_named(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path, [{"type": "expect_column_values_to_match_regex", "kwargs": {"column": "mail", "regex": "(a"}}]
    )
    with pytest.raises(SuiteError, match=r"expectation #1 .*invalid regex '\(a'"):
        load_suite(path)


def test_table_level_expectations_are_refused(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}])
    with pytest.raises(SuiteError, match="judges the whole table"):
        load_suite(path)


def test_required_attribute_absent_from_the_frame_is_a_configuration_error(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "employeeId"}}])
    with pytest.raises(SuiteError, match="requires attribute 'employeeId'"):
        validate(example_users().drop(columns=["employeeId"]), path)


def test_length_rule_on_an_attribute_the_mapping_does_not_fetch_passes(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [
            {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "costCenter", "max_value": 5}},
            {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "surname", "max_value": 4}},
        ],
    )
    result = validate(example_users(), path)
    assert reasons_by_upn(result) == {
        "adele.vance@contoso.example": [longer("surname", 4)],
        "alex.wilber@contoso.example": [longer("surname", 4)],
        "megan.bowen@contoso.example": [longer("surname", 4)],
        "zoe.muller@contoso.example": [longer("surname", 4)],
    }


def test_role_rule_needs_the_role_column(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [{"type": "expect_column_values_to_be_between", "kwargs": {"column": ROLE_COUNT_COLUMN, "min_value": 1}}],
    )
    with pytest.raises(SuiteError, match="no appRoleAssignments column"):
        validate(example_users().drop(columns=["appRoleAssignments"]), path)


def test_reason_without_a_description_is_derived_from_the_expectation(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [
            {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "surname", "max_value": 5}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "department", "value_set": ["HR"]}},
        ],
    )
    result = validate(example_users().iloc[:1], path)
    assert result.quarantined[0].reasons == [
        "department: failed (expect_column_values_to_be_in_set)",
    ]
    result = validate(
        with_changes(example_users().iloc[:1], {"adele.vance@contoso.example": {"surname": "Vances"}}), path
    )
    assert result.quarantined[0].reasons == [
        longer("surname", 5),
        "department: failed (expect_column_values_to_be_in_set)",
    ]


def test_nothing_in_scope() -> None:
    users = example_users()
    users["IsSoftDeleted"] = True
    result = validate(users)
    assert (result.checked, result.failure_share, result.quarantined) == (0, 0.0, [])
    assert len(result.valid) == len(users)


SALESFORCE_LENGTHS = {
    "Username": 80,
    "Email": 128,
    "FirstName": 40,
    "LastName": 80,
    "Alias": 8,
    "CommunityNickname": 40,
    "Title": 80,
    "Department": 80,
    "EmployeeNumber": 20,
    "FederationIdentifier": 512,
}
"""Salesforce User field lengths (``docs/external-apis.md`` and the describe of User)."""


def test_suite_lengths_follow_the_default_mapping_table() -> None:
    """Each field the default table copies from one attribute has a length rule on that attribute
    no looser than Salesforce's limit, and no length rule checks an attribute the table does not
    send to a length-limited field as is."""
    table = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())
    direct: dict[str, list[str]] = {}
    for row in table["fields"]:
        source = str(row.get("source") or "").strip()
        if source.startswith("[") and source.endswith("]") and row["target"] in SALESFORCE_LENGTHS:
            direct.setdefault(source[1:-1], []).append(row["target"])
    rules = {
        e["kwargs"]["column"]: e["kwargs"]["max_value"]
        for e in json.loads(DEFAULT_SUITE_PATH.read_text())["expectations"]
        if e["type"] == "expect_column_value_lengths_to_be_between"
    }
    assert direct, "the default table maps no attribute directly?"
    for attribute, targets in direct.items():
        limit = min(SALESFORCE_LENGTHS[t] for t in targets)
        assert attribute in rules, f"{attribute} goes to {targets} as is but has no length rule"
        assert rules[attribute] <= limit, f"{attribute}: rule allows {rules[attribute]}, {targets} hold {limit}"
    assert set(rules) <= set(direct), f"rules on attributes the table does not copy: {set(rules) - set(direct)}"


def test_mostly_tolerates_a_share_of_failing_rows(tmp_path: Path) -> None:
    """An expectation with ``mostly`` quarantines its failing rows only when it fails as a whole."""
    path = write_suite(
        tmp_path,
        [
            {
                "type": "expect_column_value_lengths_to_be_between",
                "kwargs": {"column": "surname", "max_value": 5, "mostly": 0.5},
            }
        ],
    )
    users = example_users()  # in scope: Vance, Wilber, Bowen, Müller, None → only Wilber and Müller are long
    assert validate(users, path).quarantined == []
    users = with_changes(users, {"adele.vance@contoso.example": {"surname": "Vance-Long"}})
    assert sorted(reasons_by_upn(validate(users, path))) == [
        "adele.vance@contoso.example",
        "alex.wilber@contoso.example",
        "zoe.muller@contoso.example",
    ]


def test_gx_result_is_gx_own_json_and_agrees_with_the_quarantine() -> None:
    """The outcome carries GX's ``to_json_dict()`` from the run that decided the quarantine."""
    users = with_changes(
        example_users(),
        {
            "adele.vance@contoso.example": {"mail": "adele.vance@"},
            "alex.wilber@contoso.example": {"mail": "alex.wilber at contoso"},
            "megan.bowen@contoso.example": {"appRoleAssignments": []},
        },
    )
    result = validate(users)
    gx_result = result.gx_result
    assert gx_result is not None
    assert json.loads(json.dumps(gx_result)) == gx_result
    assert (gx_result["suite_name"], gx_result["success"]) == ("entra_users", False)
    assert gx_result["meta"]["great_expectations_version"] == "1.24.1"
    assert gx_result["statistics"]["evaluated_expectations"] == result.expectations
    assert gx_result["statistics"]["unsuccessful_expectations"] == 2
    failed = {
        expectation_reason(entry["expectation_config"]): entry["result"]["unexpected_count"]
        for entry in gx_result["results"]
        if not entry["success"]
    }
    assert failed == result.failed_expectations == {MAIL_SHAPE: 2, NO_ROLE: 1}
    assert all(entry["result"]["element_count"] == result.checked for entry in gx_result["results"])
    # Positions of the failing rows, never their values: no personal data in the kept record.
    assert "adele.vance@" not in json.dumps(gx_result)
    assert "validate_rule" not in repr(result)


def test_gx_result_is_none_when_gx_does_not_run() -> None:
    users = example_users()
    users["IsSoftDeleted"] = True
    assert validate(users).gx_result is None


def test_expectation_reason_reads_suite_entries_and_gx_configs_alike() -> None:
    entry = next(e for e in json.loads(DEFAULT_SUITE_PATH.read_text())["expectations"] if e["type"].endswith("between"))
    assert expectation_reason(entry) == longer(entry["kwargs"]["column"], entry["kwargs"]["max_value"])
    gx_config = {**entry, "kwargs": {**entry["kwargs"], "batch_id": "entra-users"}, "meta": {"validate_rule": 4}}
    assert expectation_reason(gx_config) == expectation_reason(entry)


# -- which writes a rule guards (issue 8, case 2) ----------------------------------------------------


def test_every_expectation_of_the_suite_says_which_writes_it_guards() -> None:
    raw = json.loads(DEFAULT_SUITE_PATH.read_text())["expectations"]
    guards = {(e["type"], e["kwargs"].get("column")): e["meta"]["guards"] for e in raw}
    assert set(guards.values()) <= {"create", "update", "both"}
    # Only Email's presence is a create-only need (Salesforce requires it to create a user); a
    # malformed address, the identity and the lengths are wrong whatever the write.
    assert {k for k, v in guards.items() if v != "both"} == {("expect_column_values_to_not_be_null", "mail")}


def test_rules_guarding_one_write_hold_no_row_here_and_report_their_reasons_per_write(tmp_path: Path) -> None:
    missing = {"type": "expect_column_values_to_not_be_null", "description": "missing"}
    path = write_suite(
        tmp_path,
        [
            {**missing, "kwargs": {"column": "mail"}, "meta": {"guards": "create"}},
            {**missing, "kwargs": {"column": "jobTitle"}, "meta": {"guards": "update"}},
            {**missing, "kwargs": {"column": "department"}},  # no guards: both
        ],
    )
    users = with_changes(
        example_users(),
        {
            "adele.vance@contoso.example": {"mail": None},
            "alex.wilber@contoso.example": {"jobTitle": None, "mail": None},
            "megan.bowen@contoso.example": {"mail": None, "department": None},
        },
    )
    result = validate(users, path)
    ids = dict(zip(users["userPrincipalName"], users["id"], strict=True))
    # A both rule quarantines with every reason the row has, its create-only one included.
    assert reasons_by_upn(result) == {
        "megan.bowen@contoso.example": [
            "mail: missing (expect_column_values_to_not_be_null)",
            "department: missing (expect_column_values_to_not_be_null)",
        ],
    }
    assert result.blocks_create == {
        ids["adele.vance@contoso.example"]: ["mail: missing (expect_column_values_to_not_be_null)"],
        ids["alex.wilber@contoso.example"]: ["mail: missing (expect_column_values_to_not_be_null)"],
    }
    assert result.blocks_update == {
        ids["alex.wilber@contoso.example"]: ["jobTitle: missing (expect_column_values_to_not_be_null)"],
    }
    assert ids["alex.wilber@contoso.example"] in set(result.valid["id"])
    assert ids["megan.bowen@contoso.example"] not in set(result.valid["id"])
    assert result.failure_share == 1 / 5  # only the quarantined row counts towards the stop


def test_an_unknown_guard_is_a_suite_error_naming_the_entry(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "mail"}, "meta": {"guards": "insert"}}],
    )
    with pytest.raises(
        SuiteError, match=r"expectation #1 .*meta.guards must be one of create, update, both, found 'insert'"
    ):
        validate(example_users(), path)
