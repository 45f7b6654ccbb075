"""The dry run's table and CSV (plan_preview): order, the "… and N more" line, every action in
the CSV, and cells no spreadsheet evaluates."""

from __future__ import annotations

import csv
import io

from wcwidth import wcswidth

from include.provisioning.model import Action, FieldChange, Plan, PlannedChange, QuarantinedUser
from include.provisioning.plan_preview import CSV_COLUMNS, csv_bytes, describe_changes, plan_rows, table_lines


def _change(n: int, action: Action, upn: str | None = None, **fields: tuple[object, object]) -> PlannedChange:
    changes = {name: FieldChange(old, new) for name, (old, new) in fields.items()}
    sf_id = None if action is Action.CREATE else f"005{n:015d}"
    return PlannedChange(
        f"entra-{n}", upn if upn is not None else f"user{n:03d}@contoso.example", action, sf_id, changes
    )


def _plan(creates: int = 0) -> Plan:
    return Plan(
        creates=[_change(n, Action.CREATE, LastName=(None, f"Last{n}")) for n in range(creates, 0, -1)],
        updates=[
            _change(900, Action.UPDATE, "b@contoso.example", Title=("Clerk", "Manager"), Department=(None, "Ops"))
        ],
        deactivations=[_change(901, Action.DISABLE, "z@contoso.example", IsActive=(True, False))],
        reactivations=[_change(902, Action.REACTIVATE, "a@contoso.example", IsActive=(False, True))],
        held_back=[_change(903, Action.DISABLE, "held@contoso.example", IsActive=(True, False))],
        held_back_reason="3 deactivations exceed the threshold of 2",
        quarantined=[QuarantinedUser("entra-904", "dup@contoso.example", ["Username is also planned for entra-905"])],
    )


def test_rows_follow_the_load_order_then_held_back_and_quarantined_each_by_upn() -> None:
    rows = plan_rows(_plan(creates=2), [QuarantinedUser("entra-906", "bad@contoso.example", ["mail: not an address"])])
    assert [(r.action, r.user_principal_name) for r in rows] == [
        ("deactivate", "z@contoso.example"),
        ("create", "user001@contoso.example"),
        ("create", "user002@contoso.example"),
        ("update", "b@contoso.example"),
        ("reactivate", "a@contoso.example"),
        ("held back", "held@contoso.example"),
        ("quarantine", "bad@contoso.example"),
        ("quarantine", "dup@contoso.example"),
    ]
    by_action = {r.action: r for r in reversed(rows)}  # the first row of each action
    assert by_action["create"].changes == "LastName: Last1"
    assert by_action["update"].changes == "Title: Clerk → Manager; Department: (empty) → Ops"
    assert (by_action["update"].entra_id, by_action["update"].salesforce_id) == ("entra-900", f"005{900:015d}")
    assert by_action["held back"].reason == "3 deactivations exceed the threshold of 2"
    assert [r.reason for r in rows[-2:]] == ["mail: not an address", "Username is also planned for entra-905"]


def test_the_table_shows_the_first_rows_and_says_how_many_more() -> None:
    rows = plan_rows(_plan(creates=30))
    lines = table_lines(rows, limit=20)
    assert lines[0].split() == ["action", "user", "changes"] and set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + 20 + 1
    assert lines[2].split() == ["deactivate", "z@contoso.example", "IsActive:", "True", "→", "False"]
    assert lines[3].split() == ["create", "user001@contoso.example", "LastName:", "Last1"]
    assert lines[-1] == f"… and {len(rows) - 20} more (every planned action is in the CSV)"
    assert table_lines(plan_rows(Plan())) == ["(no changes planned)"]
    assert len(table_lines(rows[:5], limit=20)) == 2 + 5  # no "more" line when everything fits


def test_the_csv_has_every_row_and_no_cell_a_spreadsheet_evaluates() -> None:
    hostile = _change(1, Action.CREATE, '=HYPERLINK("http://x")@contoso.example', LastName=(None, "+SUM(A1)"))
    plan = Plan(creates=[hostile, *(_change(n, Action.CREATE, LastName=(None, "Zoë")) for n in range(2, 40))])
    data = csv_bytes(plan_rows(plan))
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(header) == CSV_COLUMNS
    assert len(rows) == 39  # never truncated
    assert rows[0][:2] == ["create", '\'=HYPERLINK("http://x")@contoso.example']
    assert rows[0][5] == "LastName: +SUM(A1)"  # not at the start of the cell: nothing to neutralise
    assert rows[1][5] == "LastName: Zoë"
    dash = csv_bytes(plan_rows(Plan(creates=[_change(1, Action.CREATE, "-1@contoso.example")])))
    assert b'"\'-1@contoso.example"' in dash


def test_a_profile_id_is_shown_with_its_name_when_the_cycle_knows_it() -> None:
    new = _change(1, Action.CREATE, Username=(None, "a@contoso.example"), ProfileId=(None, "00e000000000001AAA"))
    moved = _change(2, Action.UPDATE, ProfileId=("00e000000000001AAA", "00e000000000009AAA"))
    names = {"00e000000000001AAA": "Standard User"}
    assert describe_changes(new, names) == "Username: a@contoso.example; ProfileId: 00e000000000001AAA (Standard User)"
    assert describe_changes(moved, names) == "ProfileId: 00e000000000001AAA (Standard User) → 00e000000000009AAA"
    assert describe_changes(new) == "Username: a@contoso.example; ProfileId: 00e000000000001AAA"
    (row,) = plan_rows(Plan(creates=[new]), profile_names=names)
    assert row.changes.endswith("(Standard User)")


def test_users_are_named_by_display_name_and_upn_in_the_table_and_the_csv() -> None:
    named = _change(1, Action.CREATE, "adele@contoso.example", LastName=(None, "Vance"))
    named.display_name = "Adele Vance"
    hostile = _change(2, Action.UPDATE, "h@contoso.example", Title=("a", "b"))
    hostile.display_name = "=cmd|' /C calc'!A0"
    unnamed = _change(3, Action.DISABLE, IsActive=(True, False))  # a row logged before names were kept
    held_out = QuarantinedUser("entra-4", None, ["mail: missing"], "Zoë Müller")
    rows = plan_rows(Plan(creates=[named], updates=[hostile], deactivations=[unnamed]), [held_out])

    header_line, _, *lines = table_lines(rows)
    start, end = header_line.index("user"), header_line.index("changes")
    assert [line[start:end].strip() for line in lines] == [
        "user003@contoso.example",
        "Adele Vance (adele@contoso.example)",
        "=cmd|' /C calc'!A0 (h@contoso.example)",
        "Zoë Müller (entra-4)",  # no UPN: the object id names the user
    ]
    header, *cells = list(csv.reader(io.StringIO(csv_bytes(rows).decode("utf-8-sig"), newline="")))
    assert header[1:3] == ["user_principal_name", "display_name"]
    assert [row[1:4] for row in cells] == [
        ["user003@contoso.example", "", "entra-3"],
        ["adele@contoso.example", "Adele Vance", "entra-1"],
        ["h@contoso.example", "'=cmd|' /C calc'!A0", "entra-2"],  # neutralised, as every cell
        ["", "Zoë Müller", "entra-4"],
    ]


def test_the_changes_column_starts_in_one_terminal_column_with_wide_and_combining_names() -> None:
    """A CJK name takes two terminal columns a character and a combining mark none: padding by
    ``len`` pushed the changes column of 鈴木's row right and of a decomposed "Zoë" left."""
    wide = _change(1, Action.CREATE, "suzuki@contoso.example", LastName=(None, "Suzuki"))
    wide.display_name = "鈴木 一郎"
    combining = _change(2, Action.CREATE, "zoe@contoso.example", LastName=(None, "Muller"))
    combining.display_name = "Zoe\u0308 Mu\u0308ller"
    plain = _change(3, Action.CREATE, "ann@contoso.example", LastName=(None, "Lee"))
    plain.display_name = "Ann Lee"
    header_line, _, *lines = table_lines(plan_rows(Plan(creates=[wide, combining, plain]), []))
    column = wcswidth(header_line[: header_line.index("changes")])
    assert [wcswidth(line[: line.index("LastName")]) for line in lines] == [column] * 3
    assert len({line.index("LastName") for line in lines}) == 3  # the characters before it do differ
