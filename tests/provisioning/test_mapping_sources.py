"""Entra's extension attributes and directory extensions as mapping sources: which names the table
accepts (and the message for those it refuses), what the extract selects for them, the USERS
columns built from Graph's shapes, and expressions over them (Entra's FormatDateTime example)."""

from __future__ import annotations

from typing import Any

import pytest

from include.provisioning.config_check import check_config
from include.provisioning.graph.frame import UserRow, graph_attributes, select_clause, users_frame
from include.provisioning.graph.user_attributes import EXTENSION_ATTRIBUTES, select_properties
from include.provisioning.mapping import MappingError, MappingTable
from include.provisioning.settings import DEFAULT_SUITE_PATH
from include.provisioning.workspace import Workspace

DIVISION = "extension_0123456789abcdef0123456789abcdef_division"
SKILLS = "extension_0123456789abcdef0123456789abcdef_skills"
GRADE = "extension_0123456789abcdef0123456789abcdef_grade"
MANAGER = "extension_0123456789abcdef0123456789abcdef_isManager"
START = "extension_0123456789abcdef0123456789abcdef_startDate"
BADGE = "extension_0123456789abcdef0123456789abcdef_badge"

HEAD = """\
fields:
  - target: Username
    source: "[userPrincipalName]"
    match_precedence: 1
"""
HIRE_DATE = 'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")'
"""Entra's example ("Output date as a string in a certain format": input "20150123105347.1Z",
output "2015-01-23"), functions-for-customizing-application-data."""


def table(*rows: tuple[str, str], scoping: str = "") -> MappingTable:
    text = HEAD + "".join(f"  - target: {target}\n    source: '{source}'\n" for target, source in rows) + scoping
    return MappingTable.loads(text, "table.yaml")


def refused(source: str) -> str:
    with pytest.raises(MappingError) as err:
        MappingTable.loads(HEAD + f"  - target: Division\n    source: '{source}'\n", "table.yaml")
    return str(err.value)


# --- names ---------------------------------------------------------------------------------------


def test_all_fifteen_extension_attributes_and_directory_extensions_are_accepted() -> None:
    rows = [(f"Field{n}__c", f"[{name}]") for n, name in enumerate(EXTENSION_ATTRIBUTES, start=1)]
    loaded = table(*rows, ("Division", f"[{DIVISION}]"))
    assert loaded.source_attributes() == [
        "id",
        "userPrincipalName",
        "accountEnabled",
        *EXTENSION_ATTRIBUTES,
        DIVISION,
    ]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "[extensionAttribute16]",
            "unknown source attribute [extensionAttribute16]: the extension attributes are extensionAttribute1 to "
            "extensionAttribute15 (Graph's onPremisesExtensionAttributes)",
        ),
        (
            "[extensionAttribute0]",
            "unknown source attribute [extensionAttribute0]: the extension attributes are extensionAttribute1 to "
            "extensionAttribute15 (Graph's onPremisesExtensionAttributes)",
        ),
        (
            "[ExtensionAttribute3]",
            "unknown source attribute [ExtensionAttribute3]: the extension attributes are extensionAttribute1 to "
            "extensionAttribute15 (Graph's onPremisesExtensionAttributes); did you mean extensionAttribute3? "
            "(names are case-sensitive)",
        ),
        (
            "[extension_abc_division]",
            "unknown source attribute [extension_abc_division]: a directory extension is named "
            "extension_<appId: 32 hex digits, no dashes>_<name>",
        ),
        (
            "[extension_0123456789abcdef-0123-456789abcdef_division]",
            "unknown source attribute [extension_0123456789abcdef-0123-456789abcdef_division]: a directory "
            "extension is named extension_<appId: 32 hex digits, no dashes>_<name>",
        ),
        (
            "[extension_0123456789abcdef0123456789abcdef_]",
            "unknown source attribute [extension_0123456789abcdef0123456789abcdef_]: a directory extension is "
            "named extension_<appId: 32 hex digits, no dashes>_<name>",
        ),
    ],
)
def test_names_that_are_not_sources_are_refused_naming_row_field_and_allowed_names(source: str, reason: str) -> None:
    assert refused(source) == f"table.yaml row 2 (Division): {reason} (line 5)"


def test_a_refused_name_inside_an_expression_and_in_scoping_is_reported_too() -> None:
    assert "row 2 (Division): unknown source attribute [extensionAttribute99]" in refused(
        'Coalesce([extensionAttribute99], "none")'
    )
    with pytest.raises(MappingError) as err:
        table(
            ("Division", "[extensionAttribute2]"),
            scoping="scoping:\n  - clauses:\n      - {attribute: extensionAttribute20, operator: IS NOT NULL}\n",
        )
    assert str(err.value) == (
        "table.yaml: scoping: unknown source attribute [extensionAttribute20]: the extension attributes are "
        "extensionAttribute1 to extensionAttribute15 (Graph's onPremisesExtensionAttributes)"
    )


# --- what the extract selects ----------------------------------------------------------------------


def test_select_names_the_extension_attributes_object_once_and_only_the_directory_extensions_used() -> None:
    loaded = table(
        ("EmployeeNumber", HIRE_DATE),
        ("Division", f"[{DIVISION}]"),
        ("Title", "Coalesce([extensionAttribute7], [jobTitle], [extensionAttribute1])"),
        scoping="scoping:\n  - clauses:\n      - {attribute: extensionAttribute3, operator: IS NOT NULL}\n",
    )
    attributes = graph_attributes(loaded.source_attributes())
    assert attributes == [
        "userPrincipalName",
        "accountEnabled",
        "extensionAttribute1",
        DIVISION,
        "extensionAttribute7",
        "jobTitle",
        "extensionAttribute3",
        "displayName",  # always read: the provisioning log names users by it
    ]
    assert select_properties(attributes) == [
        "userPrincipalName",
        "accountEnabled",
        "onPremisesExtensionAttributes",
        DIVISION,
        "jobTitle",
        "displayName",
    ]
    assert select_clause(attributes) == (
        f"id,userPrincipalName,accountEnabled,onPremisesExtensionAttributes,{DIVISION},jobTitle,displayName"
    )
    # A table that reads none of them selects neither (a tenant may hold many directory extensions).
    plain = graph_attributes(table(("Title", "[jobTitle]")).source_attributes())
    assert select_clause(plain) == "id,userPrincipalName,accountEnabled,jobTitle,displayName"


# --- USERS columns from Graph's shapes ---------------------------------------------------------------


def graph_user(user_id: str, **properties: Any) -> UserRow:
    return UserRow(user_id, {"id": user_id, "userPrincipalName": f"{user_id}@x.example", **properties}, [], None, None)


ALL_NULL = dict.fromkeys(EXTENSION_ATTRIBUTES)


def test_frame_columns_come_from_the_extension_attributes_object_and_extension_properties() -> None:
    rows = [
        graph_user(
            "u1",
            onPremisesExtensionAttributes={**ALL_NULL, "extensionAttribute1": "20150123105347.1Z"},
            **{DIVISION: "EMEA", SKILLS: ["sql", "go"], GRADE: 7, MANAGER: True, START: "2024-05-01T00:00:00Z"},
            **{BADGE: "AAEC"},
        ),
        # Graph leaves out a directory extension without a value; every extension attribute null.
        graph_user("u2", onPremisesExtensionAttributes=dict(ALL_NULL)),
        # A record without the object (e.g. a delta item that omitted it): null, like any attribute.
        graph_user("u3"),
        UserRow("u4", None, [], None, "deleted"),
    ]
    attributes = ["extensionAttribute1", "extensionAttribute15", DIVISION, SKILLS, GRADE, MANAGER, START, BADGE]
    frame = users_frame(rows, attributes)
    assert list(frame.columns) == [
        "id",
        *attributes,
        "appRoleAssignments",
        "assignedVia",
        "IsSoftDeleted",
        "scopeReason",
    ]
    values = frame[attributes].astype(object).where(frame[attributes].notna(), None).to_dict("records")
    assert values == [
        {
            "extensionAttribute1": "20150123105347.1Z",
            "extensionAttribute15": None,
            DIVISION: "EMEA",
            SKILLS: ["sql", "go"],
            GRADE: 7,
            MANAGER: True,
            START: "2024-05-01T00:00:00Z",
            BADGE: "AAEC",
        },
        dict.fromkeys(attributes),
        dict.fromkeys(attributes),
        dict.fromkeys(attributes),
    ]


def test_a_single_extension_attribute_column_and_the_object_itself_side_by_side() -> None:
    container = {**ALL_NULL, "extensionAttribute2": "x"}
    frame = users_frame([graph_user("u1", onPremisesExtensionAttributes=container)], ["extensionAttribute2"])
    assert frame.at[0, "extensionAttribute2"] == "x"
    both = users_frame(
        [graph_user("u1", onPremisesExtensionAttributes=container)],
        ["onPremisesExtensionAttributes", "extensionAttribute2"],
    )
    assert both.at[0, "onPremisesExtensionAttributes"] == container and both.at[0, "extensionAttribute2"] == "x"


# --- expressions over them, through the USERS Parquet file ----------------------------------------------


def test_entra_formatdatetime_example_and_directory_extension_values_map_exactly(tmp_path: Any) -> None:
    loaded = table(
        ("EmployeeNumber", HIRE_DATE),
        ("Division", f"[{DIVISION}]"),
        ("Department", f'Join(",", [{SKILLS}])'),
        ("Title", f"[{GRADE}]"),
        ("CompanyName", f'IIF([{MANAGER}], "manager", "staff")'),
        ("Extension", f'FormatDateTime([{START}], , "yyyy-MM-ddTHH:mm:ssZ", "dd/MM/yyyy")'),
    )
    rows = [
        graph_user(
            "u1",
            onPremisesExtensionAttributes={**ALL_NULL, "extensionAttribute1": "20150123105347.1Z"},
            **{DIVISION: "EMEA", SKILLS: ["sql", "go"], GRADE: 7, MANAGER: True, START: "2024-05-01T00:00:00Z"},
        ),
        graph_user("u2", onPremisesExtensionAttributes=dict(ALL_NULL), **{MANAGER: False}),
    ]
    frame = users_frame(rows, graph_attributes(loaded.source_attributes()))
    # The USERS frame reaches the mapping through users.parquet: the values must survive it.
    workspace = Workspace(tmp_path)
    workspace.write_frame("users", frame)
    result = loaded.evaluate(workspace.read_frame("users"))
    assert result.errors == {}
    assert result.mapped.to_dict("records") == [
        {
            "id": "u1",
            "Username": "u1@x.example",
            "EmployeeNumber": "2015-01-23",
            "Division": "EMEA",
            "Department": "sql,go",
            "Title": "7",
            "CompanyName": "manager",
            "Extension": "01/05/2024",
        },
        {
            "id": "u2",
            "Username": "u2@x.example",
            "EmployeeNumber": None,
            "Division": None,
            "Department": None,
            "Title": None,
            "CompanyName": "staff",
            "Extension": None,
        },
    ]


def test_a_value_formatdatetime_cannot_read_fails_that_user_only() -> None:
    loaded = table(("EmployeeNumber", HIRE_DATE))
    rows = [
        graph_user("u1", onPremisesExtensionAttributes={**ALL_NULL, "extensionAttribute1": "2015-01-23"}),
        graph_user("u2", onPremisesExtensionAttributes={**ALL_NULL, "extensionAttribute1": "20200704000000.0Z"}),
    ]
    result = loaded.evaluate(users_frame(rows, graph_attributes(loaded.source_attributes())))
    assert result.errors == {
        "u1": ["EmployeeNumber: FormatDateTime: '2015-01-23' does not match the input format 'yyyyMMddHHmmss.fZ'"]
    }
    assert result.mapped.to_dict("records") == [
        {"id": "u2", "Username": "u2@x.example", "EmployeeNumber": "2020-07-04"}
    ]


def test_validate_config_reports_the_attributes_and_the_select_it_sends(tmp_path: Any) -> None:
    path = tmp_path / "table.yaml"
    rows = f"  - target: EmployeeNumber\n    source: '{HIRE_DATE}'\n  - target: Division\n    source: '[{DIVISION}]'\n"
    path.write_text(HEAD + rows, encoding="utf-8")
    _problems, info = check_config({}, path, DEFAULT_SUITE_PATH)
    assert "  Graph attributes read: id, userPrincipalName, accountEnabled, extensionAttribute1, " + DIVISION in info
    assert f"  Graph $select: id,userPrincipalName,accountEnabled,onPremisesExtensionAttributes,{DIVISION}" in info
