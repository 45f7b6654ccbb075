"""Entra's custom-data sources end to end: EmployeeNumber from Entra's FormatDateTime example over
``[extensionAttribute1]`` and Division from a directory extension. The full cycle that the new
table forces writes exactly those values; each later change in Entra (an extension attribute, a
directory extension, one nobody maps, a value removed) reaches Salesforce through an incremental
cycle as exactly the field it feeds, or not at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.mapping import MappingTable
from include.provisioning.model import CycleStatus, Mode
from include.provisioning.settings import DEFAULT_MAPPING_PATH
from tests.e2e.conftest import org_changes, org_users
from tests.sandbox_process import SandboxProcess

ADELE, MEGAN = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000003"
ADELE_UPN, MEGAN_UPN = "adele.vance@contoso.example", "megan.bowen@contoso.example"
DIVISION = "extension_0123456789abcdef0123456789abcdef_division"
EMPLOYEE_NUMBER_ROW = """\
  - target: EmployeeNumber
    source: "[employeeId]"
    clear_when_null: true
"""
CUSTOM_ROWS = f"""\
  - target: EmployeeNumber
    source: 'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")'
  - target: Division
    source: "[{DIVISION}]"
"""


def custom_table(tmp_path: Path) -> MappingTable:
    """The repository's table with EmployeeNumber and Division from custom data (null not sent)."""
    text = DEFAULT_MAPPING_PATH.read_text(encoding="utf-8")
    assert EMPLOYEE_NUMBER_ROW in text
    path = tmp_path / "custom.yaml"
    path.write_text(text.replace(EMPLOYEE_NUMBER_ROW, CUSTOM_ROWS), encoding="utf-8")
    return MappingTable.load(path)


def patch(sandbox: SandboxProcess, user_id: str, body: dict[str, Any]) -> None:
    sandbox.graph.patch(f"/_sandbox/users/{user_id}", json=body).raise_for_status()


def changes_of(sandbox: SandboxProcess, run: Callable[[], CycleResult], mode: Mode) -> dict[str, Any]:
    before = org_users(sandbox)
    result = run()
    assert result.summary.status is CycleStatus.SUCCEEDED, result.notes
    assert result.summary.mode is mode
    return org_changes(before, org_users(sandbox))


def test_extension_attribute_and_directory_extension_reach_salesforce_exactly(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = make_engine()
    assert run_cycle(engine).summary.status is CycleStatus.SUCCEEDED  # the default table
    patch(sandbox, ADELE, {"onPremisesExtensionAttributes": {"extensionAttribute1": "20150123105347.1Z"}})
    patch(sandbox, ADELE, {DIVISION: "EMEA"})
    patch(sandbox, MEGAN, {"onPremisesExtensionAttributes": {"extensionAttribute1": "20190301120000.0Z"}})
    engine.table = custom_table(tmp_path)
    cycle = lambda: run_cycle(engine)  # noqa: E731 - read as "the next cycle"

    # The new table forces a full cycle. Users without the values keep what they have (a null is
    # not sent, as for any attribute): only Adele's and Megan's fields change.
    assert changes_of(sandbox, cycle, Mode.FULL) == {
        ADELE_UPN: {"EmployeeNumber": ("1001", "2015-01-23"), "Division": (None, "EMEA")},
        MEGAN_UPN: {"EmployeeNumber": ("1003", "2019-03-01")},
    }

    patch(sandbox, ADELE, {"onPremisesExtensionAttributes": {"extensionAttribute1": "20200704000000.0Z"}})
    assert changes_of(sandbox, cycle, Mode.INCREMENTAL) == {ADELE_UPN: {"EmployeeNumber": ("2015-01-23", "2020-07-04")}}

    patch(sandbox, ADELE, {"onPremisesExtensionAttributes": {"extensionAttribute2": "not mapped"}})
    patch(sandbox, MEGAN, {DIVISION: "APAC"})
    assert changes_of(sandbox, cycle, Mode.INCREMENTAL) == {MEGAN_UPN: {"Division": (None, "APAC")}}

    patch(sandbox, ADELE, {DIVISION: None})
    patch(sandbox, MEGAN, {"onPremisesExtensionAttributes": {"extensionAttribute1": None}})
    assert changes_of(sandbox, cycle, Mode.INCREMENTAL) == {}
