"""The mapping table: loading (with messages that name file, row, field and reason), the
default table on the example tenant, and the evaluation rules of MappingTable.evaluate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.provisioning.mapping import MappingError, MappingTable
from include.provisioning.model import DEFAULT_ACCESS_ROLE_VALUE
from include.provisioning.settings import DEFAULT_MAPPING_PATH

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

MINIMAL = """\
fields:
  - target: Username
    source: "[userPrincipalName]"
    match_precedence: 1
  - target: LastName
    source: "[surname]"
    default: "."
"""


def load(text: str) -> MappingTable:
    return MappingTable.loads(textwrap.dedent(text), "table.yaml")


def error(text: str) -> MappingError:
    with pytest.raises(MappingError) as err:
        load(text)
    return err.value


# --- the example tenant, by hand -------------------------------------------------------------


def example_users() -> pd.DataFrame:
    """The USERS frame extract would build from tests/fixtures/example-tenant.json.

    Roles: direct assignments for users 1, 2, 5, 6; user 3 through group "Sales EMEA", user 4
    through the nested "Sales EMEA - France" (both Standard User); user 7 is unassigned and
    user 6 disabled, so both are soft-deleted.
    """
    tenant = json.loads((FIXTURES / "example-tenant.json").read_text(encoding="utf-8"))
    roles = {
        "00000000-0000-0000-0000-000000000001": (["Standard User"], "direct"),
        "00000000-0000-0000-0000-000000000002": (["System Administrator"], "direct"),
        "00000000-0000-0000-0000-000000000003": (["Standard User"], "group:Sales EMEA"),
        "00000000-0000-0000-0000-000000000004": (["Standard User"], "group:Sales EMEA"),
        "00000000-0000-0000-0000-000000000005": (["Standard User"], "direct"),
        "00000000-0000-0000-0000-000000000006": (["Chatter Free User"], "direct"),
    }
    rows = []
    for user in tenant["users"]:
        assigned, via = roles.get(user["id"], ([], ""))
        reason = None if user["id"] in roles else "unassigned"
        if not user["accountEnabled"]:
            reason = "disabled"
        rows.append(
            {
                **user,
                "appRoleAssignments": assigned,
                "assignedVia": via,
                "IsSoftDeleted": reason is not None,
                "scopeReason": reason,
            }
        )
    return pd.DataFrame(rows)


def expected(  # noqa: PLR0917 - one positional per column reads best in the table below
    upn: str,
    first: str,
    last: str | None,
    locale: str,
    language: str,
    employee: str,
    profile: str | None,
    active: bool = True,
) -> dict[str, Any]:
    return {
        "Username": upn,
        "IsActive": active,
        "Email": upn,
        "FirstName": first,
        "LastName": last,
        "Alias": upn[:8],
        "FederationIdentifier": upn,
        "LocaleSidKey": locale,
        "LanguageLocaleKey": language,
        "EmailEncodingKey": None,
        "TimeZoneSidKey": None,
        "Title": "Account Executive",
        "Department": "Sales",
        "EmployeeNumber": employee,
        "ProfileName": profile,
    }


EXAMPLE_EXPECTED = {
    "00000000-0000-0000-0000-000000000001": expected(
        "adele.vance@contoso.example", "Adele", "Vance", "en_US", "en_US", "1001", "Standard User"
    ),
    "00000000-0000-0000-0000-000000000002": expected(
        "alex.wilber@contoso.example", "Alex", "Wilber", "de_DE", "de", "1002", "System Administrator"
    ),
    "00000000-0000-0000-0000-000000000003": expected(
        "megan.bowen@contoso.example", "Megan", "Bowen", "en_US", "en_US", "1003", "Standard User"
    ),
    "00000000-0000-0000-0000-000000000004": expected(
        "zoe.muller@contoso.example", "Zoë", "Müller", "fr_FR", "fr", "1004", "Standard User"
    ),
    "00000000-0000-0000-0000-000000000005": expected(
        "no.surname@contoso.example", "Nosurname", None, "en_US", "en_US", "1005", "Standard User"
    ),
    "00000000-0000-0000-0000-000000000006": expected(
        "disabled.user@contoso.example", "Dana", "Disabled", "en_US", "en_US", "1006", "Chatter Free User", active=False
    ),
    "00000000-0000-0000-0000-000000000007": expected(
        "not.assigned@contoso.example", "Nora", "Notassigned", "en_US", "en_US", "1007", None, active=False
    ),
}


def test_default_table_on_the_example_tenant() -> None:
    table = MappingTable.default()
    result = table.evaluate(example_users())
    assert result.errors == {}
    mapped = {row.pop("id"): row for row in result.mapped.to_dict("records")}
    assert mapped == EXAMPLE_EXPECTED
    assert all(type(v) is bool for v in result.mapped["IsActive"])


def test_default_table_keys() -> None:
    table = MappingTable.default()
    assert table.name == DEFAULT_MAPPING_PATH.name
    assert [f.target for f in table.matching_fields()] == ["Username"]
    assert table.defaults() == {
        "IsActive": True,
        "LastName": ".",
        "LocaleSidKey": "en_US",
        "LanguageLocaleKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "TimeZoneSidKey": "America/Los_Angeles",
    }
    assert table.create_only() == {"EmailEncodingKey", "TimeZoneSidKey"}
    # Salesforce defaults CommunityNickname on create, unique in the org; Entra's mapping sends none.
    assert "CommunityNickname" not in {f.target for f in table.fields}
    assert table.clear_when_null() == {"Title", "Department", "EmployeeNumber"}
    assert table.source_attributes() == [
        "id",
        "userPrincipalName",
        "accountEnabled",
        "mail",
        "givenName",
        "surname",
        "preferredLanguage",
        "jobTitle",
        "department",
        "employeeId",
    ]
    assert table.scoping is None


def test_default_table_values_are_valid_salesforce_picklist_values() -> None:
    table = MappingTable.default()
    languages = ["en-US", "de-DE", "fr-CA", "es-MX", "pt-BR", "pt-PT", "zh-TW", "he-IL", "nb-NO", "sr-Latn-RS", "xx"]
    users = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(languages))],
            "userPrincipalName": [f"u{i}@contoso.example" for i in range(len(languages))],
            "mail": None,
            "givenName": None,
            "surname": "S",
            "jobTitle": None,
            "department": None,
            "employeeId": None,
            "preferredLanguage": languages,
            "appRoleAssignments": [["Standard User"]] * len(languages),
            "IsSoftDeleted": False,
        }
    )
    mapped = table.evaluate(users).mapped
    assert mapped["LocaleSidKey"].tolist() == [
        "en_US",
        "de_DE",
        "fr_CA",
        "es_MX",
        "pt_BR",
        "pt_PT",
        "zh_TW",
        "he_IL",
        "no_NO",
        None,
        None,
    ]
    assert mapped["LanguageLocaleKey"].tolist() == [
        "en_US",
        "de",
        "fr",
        "es_MX",
        "pt_BR",
        "pt_PT",
        "zh_TW",
        "iw",
        "no",
        None,
        None,
    ]


def users_frame(**columns: Any) -> pd.DataFrame:
    base: dict[str, Any] = {
        "id": ["u1", "u2", "u3"],
        "userPrincipalName": ["a@x.example", "b@x.example", "c@x.example"],
        "mail": ["a@x.example", "b@x.example", "c@x.example"],
        "givenName": ["A", "B", "C"],
        "surname": ["Aa", "Bb", "Cc"],
        "preferredLanguage": ["en-US", "en-US", "en-US"],
        "jobTitle": [None, None, None],
        "department": [None, None, None],
        "employeeId": [None, None, None],
        "appRoleAssignments": [["Standard User"], ["Standard User"], ["Standard User"]],
        "IsSoftDeleted": [False, False, False],
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_two_roles_and_default_access_are_row_errors() -> None:
    users = users_frame(appRoleAssignments=[["Standard User", "System Administrator"], [DEFAULT_ACCESS_ROLE_VALUE], []])
    result = MappingTable.default().evaluate(users)
    assert result.mapped.empty
    assert result.errors == {
        "u1": ["ProfileName: No more than one app role assignment was expected, but this many where found: 2"],
        "u2": [
            "ProfileName: only the default access role is assigned; Salesforce needs an app role that names a profile"
        ],
        "u3": [
            "ProfileName: no app role assigned and no default profile: assign the user (or a group) an app role "
            "that names a Salesforce profile"
        ],
    }


def test_every_failing_field_of_a_row_is_reported() -> None:
    table = load(
        """
        fields:
          - {target: Username, source: "[userPrincipalName]", match_precedence: 1}
          - {target: Alias, source: "Mid([userPrincipalName], [surname], 2)"}
          - {target: ProfileName, source: "SingleAppRoleAssignment([appRoleAssignments])"}
        """
    )
    users = users_frame(surname=["x", "1", "2"], appRoleAssignments=[["A", "B"], ["A"], ["A"]])
    result = table.evaluate(users)
    assert result.errors == {
        "u1": [
            "Alias: Mid: start must be a whole number, found 'x'",
            "ProfileName: No more than one app role assignment was expected, but this many where found: 2",
        ]
    }
    assert result.mapped["id"].tolist() == ["u2", "u3"]
    assert result.mapped["Alias"].tolist() == ["b@", "@x"]


def test_soft_deleted_rows_only_need_isactive_and_matching_fields() -> None:
    users = users_frame(
        IsSoftDeleted=[True, True, False],
        appRoleAssignments=[[], ["A", "B"], ["Standard User"]],
        userPrincipalName=["a@x.example", "b@x.example", "c@x.example"],
    )
    result = MappingTable.default().evaluate(users)
    assert result.errors == {}
    rows = result.mapped.set_index("id")
    assert rows.loc["u1", "IsActive"] is False and rows.loc["u1", "ProfileName"] is None
    assert rows.loc["u2", "ProfileName"] is None  # two roles: ignored for a deactivation
    assert rows.loc["u3", "IsActive"] is True


def test_soft_deleted_rows_still_fail_on_a_matching_field_error() -> None:
    table = load(
        """
        fields:
          - {target: Username, source: "SingleAppRoleAssignment([appRoleAssignments])", match_precedence: 1}
          - {target: IsActive, source: "Not([IsSoftDeleted])"}
        """
    )
    result = table.evaluate(
        users_frame(IsSoftDeleted=[True, False, False], appRoleAssignments=[["A", "B"], ["A"], ["B"]])
    )
    assert list(result.errors) == ["u1"]


def test_values_become_text_for_salesforce() -> None:
    table = load(
        """
        fields:
          - {target: Username, source: "[userPrincipalName]", match_precedence: 1}
          - {target: EmployeeNumber, source: 'InStr([userPrincipalName], "@")'}
          - {target: Title, source: 'Split([surname], ",")'}
        """
    )
    result = table.evaluate(users_frame(surname=["one", "two,three", None]))
    assert result.errors == {"u2": ["Title: the expression gives 2 values; a Salesforce field takes one"]}
    assert result.mapped.to_dict("records") == [
        {"id": "u1", "Username": "a@x.example", "EmployeeNumber": "2", "Title": "one"},
        {"id": "u3", "Username": "c@x.example", "EmployeeNumber": "2", "Title": None},
    ]


def test_evaluate_needs_the_columns_the_table_uses() -> None:
    with pytest.raises(KeyError, match="no column 'surname'"):
        load(MINIMAL).evaluate(pd.DataFrame({"id": ["u1"], "userPrincipalName": ["a@x"]}))


# --- loading errors ---------------------------------------------------------------------------


def test_bad_yaml() -> None:
    err = error("fields:\n  - target: Username\n   source: [x\n")
    assert str(err).startswith("table.yaml: not valid YAML at line 3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "table.yaml: expected a mapping with 'fields' (and optional 'scoping')"),
        ("fields: []", "table.yaml: 'fields' must be a non-empty list of rows"),
        (
            MINIMAL + "  - target: Email\n    sourse: '[mail]'\n",
            "table.yaml row 3 (Email): unknown key(s) sourse; did you mean source?; a row has target, source, "
            "default, apply, match_precedence, clear_when_null (line 8)",
        ),
        (
            MINIMAL + "  - target: Email\n    source: '[mail]'\n    apply: sometimes\n",
            "table.yaml row 3 (Email): apply must be one of always, on_create, found 'sometimes' (line 8)",
        ),
        (
            MINIMAL + "  - target: LastName\n    source: '[displayName]'\n",
            "table.yaml row 3 (LastName): duplicate target: row 2 already maps it (line 8)",
        ),
        (
            "fields:\n  - target: LastName\n    source: '[surname]'\n",
            "table.yaml: no matching attribute: give one row match_precedence: 1 (Entra's default matches Username "
            "on userPrincipalName)",
        ),
        (
            MINIMAL.replace('"[surname]"', '"Append([surname]  \\".\\")"'),
            "table.yaml row 2 (LastName): expression error at position 19: expected ',' or ')' after argument 1 of "
            'Append, found "." (line 5)',
        ),
        (
            MINIMAL.replace('"[surname]"', '"[surnme]"'),
            "table.yaml row 2 (LastName): unknown source attribute [surnme]: not a Microsoft Graph user property; "
            "did you mean surname? (line 5)",
        ),
        (
            MINIMAL.replace('"[surname]"', "[surname]"),
            "table.yaml row 2 (LastName): source must be text; YAML read [surname] as a list: quote it, e.g. "
            'source: "[surname]" (line 5)',
        ),
        (
            MINIMAL + "  - target: Title\n",
            "table.yaml row 3 (Title): a row needs a source expression or a default (line 8)",
        ),
        (
            MINIMAL + "  - target: Email\n    source: '[mail]'\n    match_precedence: 1\n",
            "table.yaml row 3 (Email): match_precedence 1 is also given to Username (line 8)",
        ),
        (
            MINIMAL + "  - target: IsActive\n    source: Not([IsSoftDeleted])\n    default: yes please\n",
            "table.yaml row 3 (IsActive): IsActive is a checkbox: default must be true or false, found 'yes please' "
            "(line 8)",
        ),
        (
            MINIMAL + "  - target: 'Last Name'\n    source: '[mail]'\n",
            "table.yaml row 3: 'target' must be a Salesforce User field name such as LastName, found 'Last Name' "
            "(line 8)",
        ),
        (
            MINIMAL + "version: 2\n",
            "table.yaml: unknown top-level key(s) version; allowed: fields, scoping",
        ),
        (
            MINIMAL + "scoping:\n  - clauses:\n      - {attribute: department, operator: EQUAL, value: Sales}\n",
            "table.yaml: scoping filter 1 clause 1 (department): unknown operator 'EQUAL'; valid operators: EQUALS, "
            "NOT EQUALS, IS TRUE, IS FALSE, IS NULL, IS NOT NULL, REGEX MATCH, NOT REGEX MATCH, Greater_Than, "
            "Greater_Than_OR_EQUALS, Includes, ENDS_WITH, &, !&",
        ),
        (
            MINIMAL + "scoping:\n  - clauses:\n      - {attribute: departmnt, operator: IS NOT NULL}\n",
            "table.yaml: scoping: unknown source attribute [departmnt]: not a Microsoft Graph user property; did you "
            "mean department?",
        ),
    ],
)
def test_loading_errors(text: str, message: str) -> None:
    assert str(error(text)) == message


def test_every_problem_is_reported_at_once() -> None:
    err = error(MINIMAL + "  - target: Email\n    apply: never\n  - target: Alias\n    source: 'Mid([a], 1)'\n")
    assert [p.row for p in err.problems] == [3, 3, 4]  # Email: bad apply, and no source or default
    assert err.row == 3 and err.field == "Email"
    assert err.file == "table.yaml"
    assert "Mid takes 3 arguments, found 2" in err.problems[2].reason


def test_load_from_a_file_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert MappingTable.load(path).targets() == ["Username", "LastName"]
    with pytest.raises(MappingError, match=r"nope\.yaml: cannot read the mapping table"):
        MappingTable.load(tmp_path / "nope.yaml")


def test_directory_extension_attributes_are_accepted() -> None:
    table = load(
        MINIMAL + "  - target: Division__c\n    source: '[extension_0123456789abcdef0123456789abcdef_division]'\n"
    )
    assert table.source_attributes()[-1] == "extension_0123456789abcdef0123456789abcdef_division"


# --- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_ignores_formatting_and_comments_but_not_meaning() -> None:
    base = load(MINIMAL).fingerprint()
    reformatted = load(
        """
        # a comment
        fields:
          - {target: LastName, source: "[surname]", default: "."}   # order does not matter
          - target: Username
            source: |
              [userPrincipalName]
            match_precedence: 1
        """
    ).fingerprint()
    assert reformatted == base
    assert load(MINIMAL.replace('"."', '"-"')).fingerprint() != base
    assert load(MINIMAL + "  - target: Title\n    source: '[jobTitle]'\n").fingerprint() != base
    with_scoping = MINIMAL + "scoping:\n  - clauses:\n      - {attribute: department, operator: EQUALS, value: Sales}\n"
    assert load(with_scoping).fingerprint() != base
    assert load(with_scoping.replace("Sales", "Marketing")).fingerprint() != load(with_scoping).fingerprint()


def test_scoping_attributes_are_selected() -> None:
    table = load(MINIMAL + "scoping:\n  - clauses:\n      - {attribute: companyName, operator: IS NOT NULL}\n")
    assert table.scoping is not None
    assert table.source_attributes() == ["id", "userPrincipalName", "accountEnabled", "surname", "companyName"]


# -- which writes a rule guards (issue 8, case 2) ----------------------------------------------------


def test_an_on_create_fields_error_stops_only_a_create() -> None:
    """An ``apply: on_create`` field is never compared or sent on update, so its error must not
    hold an existing user: the row stays (the field null) and the reason waits for the diff."""
    table = load(
        """
        fields:
          - {target: Username, source: "[userPrincipalName]", match_precedence: 1}
          - {target: LastName, source: "[surname]"}
          - {target: Alias, source: "Mid([userPrincipalName], [surname], 2)", apply: on_create}
          - {target: CommunityNickname, source: "Mid([userPrincipalName], [givenName], 2)"}
        """
    )
    users = users_frame(surname=["x", "1", "y"], givenName=["1", "1", "z"])
    result = table.evaluate(users)
    assert result.blocks_create == {"u1": ["Alias: Mid: start must be a whole number, found 'x'"]}
    # A row that also breaks an always-applied field is held at once, with every reason.
    assert result.errors == {
        "u3": [
            "CommunityNickname: Mid: start must be a whole number, found 'z'",
            "Alias: Mid: start must be a whole number, found 'y'",
        ]
    }
    rows = result.mapped.set_index("id")
    assert rows.index.tolist() == ["u1", "u2"]
    assert rows.loc["u1", "Alias"] is None and rows.loc["u1", "LastName"] == "x"
    assert rows.loc["u2", "Alias"] == "b@"


def test_the_default_tables_profile_rules_guard_both_writes() -> None:
    """A role that names no profile holds an existing user too: the role is their access, so it is
    never left as it was without a reason (an admin whose role became default access only)."""
    users = users_frame(appRoleAssignments=[[DEFAULT_ACCESS_ROLE_VALUE], ["Standard User"], ["Standard User"]])
    result = MappingTable.default().evaluate(users)
    assert list(result.errors) == ["u1"]
    assert result.blocks_create == {}
