"""Mapping targets against Salesforce's User describe, and Salesforce's field faults as configuration
errors (``salesforce/fields.py``)."""

from __future__ import annotations

from typing import Any

from include.provisioning.errors import ConfigurationError, is_configuration_error
from include.provisioning.mapping import MappingTable
from include.provisioning.model import Action, RecordResult
from include.provisioning.salesforce.fields import (
    SalesforceFieldError,
    check_user_fields,
    field_fault,
    field_origin,
    refused_job_fault,
)
from include.sandbox.salesforce.exceptions import SoqlError
from include.sandbox.salesforce.models import USER_FIELDS
from include.sandbox.salesforce.soql import _no_such_column

HEAD = "fields:\n  - target: Username\n    source: '[userPrincipalName]'\n    match_precedence: 1\n"


def _describe(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sandbox's User fields as describe lists them, with ``overrides`` per field name."""
    fields = {
        f.name: {"name": f.name, "createable": f.createable, "updateable": f.updateable, "filterable": True}
        for f in USER_FIELDS
    }
    for name, flags in overrides.items():
        fields[name] = {**fields[name], **flags}
    return fields


def _table(rows: str) -> MappingTable:
    return MappingTable.loads(HEAD + rows, "table.yaml")


def test_the_repository_table_passes_against_the_sandbox_describe() -> None:
    assert check_user_fields(MappingTable.default(), _describe()) == []


def test_a_misspelt_target_names_its_row_and_the_close_match() -> None:
    table = _table("  - target: FirstNme\n    source: '[givenName]'\n")
    assert check_user_fields(table, _describe()) == [
        "table.yaml row 2 (FirstNme): Salesforce's User has no field FirstNme; did you mean FirstName?"
    ]


def test_case_differences_are_accepted_as_salesforce_accepts_them() -> None:
    assert check_user_fields(_table("  - target: firstname\n    source: '[givenName]'\n"), _describe()) == []


def test_a_field_salesforce_cannot_update_is_flagged_for_apply_always_only() -> None:
    describe = _describe(EmployeeNumber={"updateable": False})
    always = _table("  - target: EmployeeNumber\n    source: '[employeeId]'\n")
    on_create = _table("  - target: EmployeeNumber\n    source: '[employeeId]'\n    apply: on_create\n")
    assert check_user_fields(always, describe) == [
        "table.yaml row 2 (EmployeeNumber): Salesforce cannot update User.EmployeeNumber "
        "(apply: always sends it on update; use apply: on_create)"
    ]
    assert check_user_fields(on_create, describe) == []


def test_a_read_only_field_and_an_unfilterable_matching_field_are_flagged() -> None:
    table = _table("  - target: Name\n    source: '[displayName]'\n    apply: on_create\n")
    describe = _describe(Username={"filterable": False})
    assert check_user_fields(table, describe) == [
        "table.yaml row 1 (Username): Salesforce cannot filter on User.Username (it is a matching attribute)",
        "table.yaml row 2 (Name): Salesforce cannot create User.Name (a create sends it)",
    ]


def test_the_profile_row_is_checked_as_the_profile_id_it_becomes() -> None:
    table = _table("  - target: ProfileName\n    source: '[appRoleAssignments]'\n")
    assert check_user_fields(table, _describe()) == []
    describe = _describe(ProfileId={"updateable": False})
    assert check_user_fields(table, describe) == [
        "table.yaml row 2 (ProfileName): Salesforce cannot update User.ProfileId "
        "(apply: always sends it on update; use apply: on_create)"
    ]


def test_a_missing_field_every_cycle_reads_is_reported() -> None:
    describe = _describe()
    del describe["IsActive"]
    assert check_user_fields(_table(""), describe) == [
        "Salesforce's User describe lacks IsActive, which every cycle reads"
    ]


def test_salesforce_query_fault_becomes_a_configuration_error_naming_field_and_row() -> None:
    soql = "SELECT Id, FirstNme FROM User"
    refused: SoqlError = _no_such_column(soql, soql.index("FirstNme"), "FirstNme", "User")
    fault = field_fault(refused.error_code, refused.message)
    assert isinstance(fault, SalesforceFieldError) and isinstance(fault, ConfigurationError)
    assert fault.field == "FirstNme"
    table = _table("  - target: FirstNme\n    source: '[givenName]'\n")
    named = fault.at(field_origin(table, fault.field))
    assert is_configuration_error(named)
    assert str(named).startswith(
        "Salesforce refused the field FirstNme (table.yaml row 2 (FirstNme)): INVALID_FIELD: No such column "
        "'FirstNme' on entity 'User'."
    )


def test_bulk_wording_and_other_codes() -> None:
    fault = field_fault("INVALID_FIELD", "Field name not found : Divison")
    assert fault is not None and fault.field == "Divison"
    unsupported = field_fault("INVALID_TYPE_FOR_OPERATION", "entity type cannot be queried")
    assert unsupported is not None and unsupported.field is None and is_configuration_error(unsupported)
    assert field_fault("MALFORMED_QUERY", "unexpected token: FROM") is None
    assert field_fault("REQUEST_LIMIT_EXCEEDED", "No such column 'X'") is None


def test_field_origin_maps_profile_id_to_the_profile_row_and_unknown_to_none() -> None:
    table = _table("  - target: ProfileName\n    source: '[appRoleAssignments]'\n")
    assert field_origin(table, "ProfileId") == "table.yaml row 2 (ProfileName)"
    assert field_origin(table, "username") == "table.yaml row 1 (Username)"
    assert field_origin(table, "IsActive") is None


def test_a_refused_job_is_a_field_fault_only_when_nothing_of_the_group_was_written() -> None:
    refused = RecordResult(
        "a",
        Action.CREATE,
        None,
        False,
        "InvalidBatch",
        "job 750x failed: InvalidBatch : Field name not found : Divison",
    )
    fault = refused_job_fault([refused])
    assert fault is not None and fault.field == "Divison" and fault.code == "INVALID_FIELD"
    written = RecordResult("b", Action.CREATE, "005000000000001", True)
    assert refused_job_fault([refused, written]) is None
    other = RecordResult(
        "c", Action.CREATE, None, False, "InvalidBatch", "job 750y failed: InvalidBatch : Failed to parse CSV"
    )
    assert refused_job_fault([other]) is None
