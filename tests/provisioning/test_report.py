"""The cycle summary and the failure report: counts that add up, and hostile user data kept inert."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    FieldChange,
    LogEntry,
    Mode,
    PlannedChange,
    QuarantinedUser,
    Status,
)
from include.provisioning.report import (
    CSV_COLUMNS,
    FORMULA_TRIGGERS,
    HTML_ROW_LIMIT,
    ReportRow,
    csv_bytes,
    failure_report,
    format_summary,
    neutralize,
)

T0 = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)
HOSTILE = [
    '<script>alert("x")</script>',
    '=HYPERLINK("http://evil","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
    'a,b;"c"\nd',
    "O'Brien & <Sons>",
    "\ufeffBOM",
]


def summary(**counts: int) -> CycleSummary:
    return CycleSummary(
        "20261126T153000Z-ab12",
        Mode.INCREMENTAL,
        CycleStatus.SUCCEEDED,
        T0,
        T0 + dt.timedelta(seconds=62),
        phase_seconds={"extract": 1.25, "load": 3.5},
        requests={"graph": 12, "salesforce": 5},
        **counts,
    )


def failure(entra_id: str, upn: str | None, message: str | None, code: str | None = "DUPLICATE_USERNAME") -> LogEntry:
    return LogEntry("c1", Action.CREATE, Status.FAILURE, entra_id, upn, None, {}, code, message, T0)


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# -- summary ---------------------------------------------------------------------------------


def test_summary_shows_every_count_and_the_equation_that_adds_them_up() -> None:
    text = format_summary(
        summary(created=3, updated=2, unchanged=1000, deactivated=1, quarantined=4, escrowed=5, held_back=6)
    )
    assert "in scope 1,021 = created 3 + updated 2 + unchanged 1,000 + deactivated 1 + quarantined 4 + " in text
    assert "escrowed 5 + held back 6" in text
    rows = dict(
        re.findall(
            r"^  (created|updated|unchanged|deactivated|quarantined|escrowed|held back|in scope) +"
            r"([\d,]+)$",
            text,
            re.MULTILINE,
        )
    )
    assert rows == {
        "created": "3",
        "updated": "2",
        "unchanged": "1,000",
        "deactivated": "1",
        "quarantined": "4",
        "escrowed": "5",
        "held back": "6",
        "in scope": "1,021",
    }
    assert "Cycle 20261126T153000Z-ab12: incremental cycle, succeeded" in text
    assert re.search(r"^  extract +1\.25$", text, re.MULTILINE)
    assert re.search(r"^  total +4\.75$", text, re.MULTILINE)
    assert re.search(r"^  graph +12$", text, re.MULTILINE)


def test_summary_shows_the_reason_of_a_stopped_cycle() -> None:
    stopped = summary(quarantined=50)
    stopped.status, stopped.reason = CycleStatus.STOPPED, "52% of 96 users failed validation (limit 40%)"
    text = format_summary(stopped)
    assert "stopped" in text
    assert text.rstrip().endswith("reason: 52% of 96 users failed validation (limit 40%)")


# -- failure report --------------------------------------------------------------------------


def test_no_report_when_nothing_failed_was_quarantined_or_held_back() -> None:
    ok = LogEntry("c1", Action.UPDATE, Status.SUCCESS, "e1", "a@x", "005", {"A": FieldChange(1, 2)}, None, None, T0)
    assert failure_report(summary(updated=1), [ok], [], []) is None


def test_report_lists_each_user_once_with_reasons() -> None:
    entries = [
        failure("e1", "dup@contoso.com", "Duplicate Username"),
        LogEntry("c1", Action.UPDATE, Status.WARNING, "e2", "w@x", "005B", {}, "UNPROCESSED", "not processed", T0),
        LogEntry("c1", Action.QUARANTINE, Status.SKIPPED, "e3", "q@x", None, {}, None, "UPN is not e-mail shaped", T0),
        LogEntry("c1", Action.STAGED_DELETE, Status.SKIPPED, "e4", "h@x", "005D", {}, None, "5 > 2 deletions", T0),
    ]
    quarantined = [QuarantinedUser("e3", "q@x", ["UPN is not e-mail shaped"]), QuarantinedUser("e5", None, ["a", "b"])]
    held = [
        PlannedChange("e4", "h@x", Action.DISABLE, "005D", {}),
        PlannedChange("e6", "i@x", Action.DISABLE, "005F", {}),
    ]
    report = failure_report(summary(escrowed=2, quarantined=2, held_back=2), entries, quarantined, held)
    assert report is not None
    rows = parse(report.csv_bytes)
    assert rows[0] == list(CSV_COLUMNS)
    assert [(r[1], r[2], r[3], r[7]) for r in rows[1:]] == [
        ("Create", "Failure", "e1", "Duplicate Username"),
        ("Update", "Warning", "e2", "not processed"),
        ("Quarantine", "Skipped", "e3", "UPN is not e-mail shaped"),
        ("Quarantine", "Skipped", "e5", "a; b"),
        ("StagedDelete", "Skipped", "e4", "5 > 2 deletions"),
        ("StagedDelete", "Skipped", "e6", "5 > 2 deletions"),
    ]
    assert report.rows == 6
    assert report.subject == (
        "Entra to Salesforce provisioning, cycle 20261126T153000Z-ab12: "
        "1 failed, 1 not processed, 2 quarantined, 2 held back"
    )
    assert report.csv_filename == "provisioning-20261126T153000Z-ab12.csv"
    assert "in scope 6 = " in report.text
    assert "- Create Failure: dup@contoso.com (e1) [DUPLICATE_USERNAME] Duplicate Username" in report.text


def test_held_back_users_alone_use_the_given_reason() -> None:
    held = [PlannedChange("e6", "i@x", Action.DISABLE, "005F", {})]
    report = failure_report(summary(held_back=1), [], [], held, held_back_reason="threshold 500 exceeded")
    assert report is not None
    assert parse(report.csv_bytes)[1][7] == "threshold 500 exceeded"


def test_hostile_values_are_escaped_in_html_flattened_in_text_and_neutralised_in_csv() -> None:
    entries = [failure(f"e{n}", value, value, code=value) for n, value in enumerate(HOSTILE)]
    quarantined = [QuarantinedUser("eq", HOSTILE[0], HOSTILE)]
    report = failure_report(summary(escrowed=len(HOSTILE), quarantined=1), entries, quarantined, [])
    assert report is not None
    assert "<script" not in report.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in report.html
    assert "O&#x27;Brien &amp; &lt;Sons&gt;" in report.html
    assert "\r" not in report.subject and "\n" not in report.subject
    listed = report.text.split("Needs attention:", 1)[1].splitlines()[2:-1]
    assert len(listed) == len(HOSTILE) + 1  # one line per user: no value forges extra lines
    assert all(line.startswith(("- Create Failure: ", "- Quarantine Skipped: ")) for line in listed)
    for row in parse(report.csv_bytes)[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS), cell
    first = parse(report.csv_bytes)[1]
    assert first[4] == first[7] == '<script>alert("x")</script>'
    second = parse(report.csv_bytes)[2]
    assert second[4] == '\'=HYPERLINK("http://evil","click")'
    assert parse(report.csv_bytes)[8][7] == 'a,b;"c"\nd'


def test_large_reports_truncate_the_html_table_but_never_the_csv() -> None:
    entries = [failure(f"e{n}", f"u{n}@x", "boom") for n in range(HTML_ROW_LIMIT + 57)]
    report = failure_report(summary(escrowed=len(entries)), entries, [], [])
    assert report is not None
    assert report.html.count("<tr><td>c1</td>") == HTML_ROW_LIMIT
    assert f"Showing the first {HTML_ROW_LIMIT:,} of {HTML_ROW_LIMIT + 57:,} rows" in report.html
    assert len(parse(report.csv_bytes)) == 1 + HTML_ROW_LIMIT + 57
    assert "... and 207 more: every row is in the attached CSV." in report.text


# -- CSV properties --------------------------------------------------------------------------

cells = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet=st.sampled_from([*FORMULA_TRIGGERS, "\n", '"', ",", ";", "'", "a", "\x00", " "])),
    st.builds(lambda t, s: t + s, st.sampled_from(FORMULA_TRIGGERS), st.text()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*([cells] * len(CSV_COLUMNS))), max_size=8))
def test_csv_round_trips_hostile_values_exactly_as_neutralised(rows: list[tuple[str | None, ...]]) -> None:
    report_rows = [ReportRow(*values) for values in rows]  # type: ignore[arg-type]
    parsed = parse(csv_bytes(report_rows))
    assert parsed[0] == list(CSV_COLUMNS)
    assert parsed[1:] == [[neutralize(v) for v in values] for values in rows]
    for row in parsed[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS)


@given(st.text())
def test_neutralize_only_prefixes_dangerous_cells(value: str) -> None:
    out = neutralize(value)
    clean = re.sub("[\ud800-\udfff]", "\ufffd", value)
    if clean.startswith(FORMULA_TRIGGERS):
        assert out == "'" + clean
    else:
        assert out == clean
    assert neutralize(None) == ""
