"""The pure parts of the Provisioning page: the CSV export's shape (its cells are ``report.neutralize``'s,
tested with the report), and the steps of
the log rows the sandbox cycles in ``test_provisioning_api.py`` do not produce (quarantine, held back)."""

from __future__ import annotations

import csv
import io

from entra_provisioning.ui import csv_export, steps


def _row(**values: object) -> dict[str, object]:
    base = {
        "id": 1,
        "at": "2026-11-30T10:00:00+00:00",
        "cycle_id": "c1",
        "action": "Update",
        "status": "Success",
        "entra_id": "e1",
        "user_principal_name": "=x@contoso.example",
        "display_name": "@Zoë =SUM(A1)",
        "sf_id": None,
        "error_code": None,
        "error_message": None,
        "changes": [],
    }
    return {**base, **values}


def test_the_export_writes_every_column_and_chunks_large_exports() -> None:
    rows = [_row(id=n, changes=[{"property": "Title", "old": "-1", "new": "+2"}]) for n in range(2_500)]
    chunks = list(csv_export.csv_chunks(rows))
    assert len(chunks) == 3  # 1,000 rows a chunk, then the rest
    text = "".join(chunks)
    assert text.startswith("\ufeff")  # UTF-8 with a byte-order mark, as the report e-mail's CSV
    parsed = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    header = tuple(name if name != "display_name" else "Display name" for name in csv_export.COLUMNS)
    assert len(parsed) == 2_500 and tuple(parsed[0]) == header
    assert parsed[0]["user_principal_name"] == "'=x@contoso.example"
    assert parsed[0]["Display name"] == "'@Zoë =SUM(A1)"  # neutralised like every cell
    assert parsed[0]["changes"] == '{"Title":["-1","+2"]}'


def test_a_quarantined_user_stops_at_scope_with_the_reasons() -> None:
    found = steps.steps(_row(action="Quarantine", status="Skipped", error_message="mail: not an address"))
    assert [(s["name"], s["status"]) for s in found] == [
        ("import", "Success"),
        ("scope", "Skipped"),
        ("match", "Skipped"),
        ("action", "Skipped"),
    ]
    assert "mail: not an address" in found[1]["detail"]


def test_a_held_back_deactivation_waits_at_its_action_for_approval() -> None:
    found = steps.steps(_row(action="StagedDelete", status="Skipped", sf_id="005000000000001AAA"))
    assert found[2] == {"name": "match", "status": "Success", "detail": "Matched Salesforce user 005000000000001AAA"}
    assert found[3]["status"] == "Skipped" and "approve" in found[3]["detail"]


def test_the_import_step_names_the_user_by_display_name_and_upn() -> None:
    def imported(**values: object) -> str:
        return steps.steps(_row(**values))[0]["detail"]

    assert imported(display_name="Adele Vance", user_principal_name="adele@contoso.example") == (
        "Read user Adele Vance (adele@contoso.example), object id e1, from Entra ID"
    )
    assert imported(display_name=None, user_principal_name="old@contoso.example") == (
        "Read user old@contoso.example, object id e1, from Entra ID"  # a row logged before names were kept
    )
    assert imported(display_name="Zoë", user_principal_name=None) == "Read user Zoë (e1), object id e1, from Entra ID"
