"""The cycle summary and the cycle report: counts that add up, reasons grouped with what to do,
hostile user data kept inert, and bodies whose size does not grow with the records."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from include.provisioning.model import (
    DRY_RUN_REASON,
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
    ERROR_ADVICE,
    EXAMPLES_PER_REASON,
    FORMULA_TRIGGERS,
    HTML_ROW_LIMIT,
    OTHER,
    REASON_LIMIT,
    TEXT_ROW_LIMIT,
    VALUE_LIMIT,
    CycleReport,
    ReportRow,
    classify_quarantine,
    csv_bytes,
    cycle_report,
    error_reason,
    failure_report,
    format_summary,
    neutralize,
    planned_dry_run,
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


class _Tables(HTMLParser):
    """Cell texts of the tables with a given class (the records table, the reason blocks)."""

    def __init__(self, css_class: str) -> None:
        super().__init__(convert_charrefs=True)
        self.css_class, self.depth, self.rows = css_class, 0, []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("class") == self.css_class):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(body: str, css_class: str = "records") -> list[list[str]]:
    parser = _Tables(css_class)
    parser.feed(body)
    return [row for row in parser.rows if row and row[0] != "User"]  # without the header row


def visible(body: str) -> str:
    """The HTML body's text as a reader sees it (tags dropped, entities decoded, spaces folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


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


def test_a_stopped_summary_counts_what_it_reached_and_points_at_the_whole_scope() -> None:
    stopped = summary(quarantined=23)
    stopped.status = CycleStatus.STOPPED
    stopped.reason = (
        "23 of the 1,750 users validated (1.3%) failed validation (limit 1%); 1,784 users in scope, 34 not "
        "validated (34 waiting for their escrow retry); nothing was written to Salesforce"
    )
    text = format_summary(stopped)
    assert re.search(r"^  counted +23$", text, re.MULTILINE)
    assert "  counted 23 = created 0 + updated 0" in text
    assert "in scope 23" not in text  # 23 were counted, not in scope
    assert "the reason says how many were in scope" in text
    assert "1,784 users in scope" in text
    report = cycle_report(stopped, [], [QuarantinedUser(f"q{n}", None, ["mail: bad"]) for n in range(23)], [])
    assert "counted 23 = created 0" in visible(report.html)
    assert "in scope" not in visible(report.html).split("1,784 users in scope")[1]
    planned = summary(created=2)
    planned.status, planned.reason = CycleStatus.STOPPED, DRY_RUN_REASON
    assert "  in scope 2 = created 2" in format_summary(planned, dry_run=True)  # a dry run did not stop


def test_reactivations_are_shown_within_updated_without_changing_the_sum() -> None:
    counted = summary(created=3, updated=140, unchanged=10, reactivated=17)
    assert counted.in_scope == 153
    text = format_summary(counted)
    assert re.search(r"^  updated +140  \(17 reactivated\)$", text, re.MULTILINE)
    assert "in scope 153 = created 3 + updated 140 (17 reactivated) + unchanged 10 +" in text
    report = cycle_report(counted, [], [QuarantinedUser("q1", None, ["mail: bad"])], [])
    assert ["updated", "140", "(17 reactivated)"] in table_rows(report.html, "outcomes")
    assert "(17 reactivated)" in report.text
    assert "reactivated" not in format_summary(summary(updated=5))  # no note when nobody was


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
    assert [(r[1], r[2], r[3], r[8]) for r in rows[1:]] == [
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
    assert "- Create Failure: dup@contoso.com, object id e1 [DUPLICATE_USERNAME] Duplicate Username" in report.text


def test_held_back_users_alone_use_the_given_reason() -> None:
    held = [PlannedChange("e6", "i@x", Action.DISABLE, "005F", {})]
    report = failure_report(summary(held_back=1), [], [], held, held_back_reason="threshold 500 exceeded")
    assert report is not None
    assert parse(report.csv_bytes)[1][8] == "threshold 500 exceeded"


def test_hostile_values_are_escaped_in_html_flattened_in_text_and_neutralised_in_csv() -> None:
    entries = [failure(f"e{n}", value, value, code=value) for n, value in enumerate(HOSTILE)]
    quarantined = [QuarantinedUser("eq", HOSTILE[0], HOSTILE)]
    report = failure_report(summary(escrowed=len(HOSTILE), quarantined=1), entries, quarantined, [])
    assert report is not None
    assert "<script" not in report.html  # autoescaped: entities, never markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in report.html
    assert "O&#39;Brien &amp; &lt;Sons&gt;" in report.html
    assert '<script>alert("x")</script>' in visible(report.html)  # and a reader still sees the value
    assert "\r" not in report.subject and "\n" not in report.subject
    records = report.text.split("\nRecords\n-------\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(records) == len(HOSTILE) + 1  # one line per user: no value forges extra lines
    assert all(line.startswith(("- Create Failure: ", "- Quarantine Skipped: ")) for line in records)
    assert len(table_rows(report.html)) == len(HOSTILE) + 1
    for row in parse(report.csv_bytes)[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS), cell
    first = parse(report.csv_bytes)[1]
    assert first[4] == first[8] == '<script>alert("x")</script>'
    second = parse(report.csv_bytes)[2]
    assert second[4] == '\'=HYPERLINK("http://evil","click")'
    assert parse(report.csv_bytes)[8][8] == 'a,b;"c"\nd'


def test_users_are_named_by_display_name_and_upn_in_the_bodies_and_the_csv() -> None:
    named = failure("e1", "adele@contoso.example", "Duplicate Username")
    named.display_name = "Adele Vance"
    hostile = failure("e2", "h@contoso.example", "boom")
    hostile.display_name = '<script>alert("x")</script>\n=1'
    unnamed = failure("e3", "old@contoso.example", "boom")  # logged before the log kept names
    quarantined = [QuarantinedUser("e4", None, ["mail: missing"], "=Zoë Müller")]
    held = [PlannedChange("e5", "gone@contoso.example", Action.DISABLE, "005E", {}, display_name="Grady Archie")]
    report = cycle_report(summary(escrowed=3, quarantined=1, held_back=1), [named, hostile, unnamed], quarantined, held)

    cells = [row[0] for row in table_rows(report.html)]  # the user, then (another line) the ids
    assert [cell.rsplit(f"e{n}", 1)[0] for n, cell in enumerate(cells, start=1)] == [
        "Adele Vance (adele@contoso.example)",
        '<script>alert("x")</script> =1 (h@contoso.example)',  # one line, shown as text
        "old@contoso.example",
        "=Zoë Müller (e4)",  # no UPN: the object id in its place
        "Grady Archie (gone@contoso.example)",
    ]
    assert "<script" not in report.html and "&lt;script&gt;" in report.html
    records = report.text.split("\nRecords\n-------\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(": ", 1)[1] for line in records] == [
        # one pair of brackets per user: "Adele Vance (adele@…) (e1)" read as two names
        "Adele Vance (adele@contoso.example), object id e1 [DUPLICATE_USERNAME] Duplicate Username",
        '<script>alert("x")</script> =1 (h@contoso.example), object id e2 [DUPLICATE_USERNAME] boom',
        "old@contoso.example, object id e3 [DUPLICATE_USERNAME] boom",
        "=Zoë Müller (e4) mail: missing",
        "Grady Archie (gone@contoso.example), object id e5 held back by the accidental-deletion threshold",
    ]
    header, *rows = parse(report.csv_bytes)
    assert header[4:6] == ["user_principal_name", "display_name"]
    assert [row[5] for row in rows] == [
        "Adele Vance",
        '<script>alert("x")</script>\n=1',  # the CSV keeps the value whole
        "",
        "'=Zoë Müller",  # neutralised
        "Grady Archie",
    ]


def test_large_reports_truncate_the_html_table_but_never_the_csv() -> None:
    entries = [failure(f"e{n}", f"u{n}@x", "boom") for n in range(HTML_ROW_LIMIT + 57)]
    report = failure_report(summary(escrowed=len(entries)), entries, [], [])
    assert report is not None
    assert len(table_rows(report.html)) == HTML_ROW_LIMIT
    assert f"Showing the first {HTML_ROW_LIMIT:,} of {HTML_ROW_LIMIT + 57:,} records" in visible(report.html)
    assert len(parse(report.csv_bytes)) == 1 + HTML_ROW_LIMIT + 57
    more = HTML_ROW_LIMIT + 57 - TEXT_ROW_LIMIT
    assert f"... and {more:,} more: every row is in the attached CSV." in report.text


# -- reasons and what to do ------------------------------------------------------------------

SUITE = Path(__file__).resolve().parents[2] / "include" / "expectations" / "entra_users.json"


def quarantine(entra_id: str, *reasons: str, upn: str | None = None) -> QuarantinedUser:
    return QuarantinedUser(entra_id, upn or f"{entra_id}@contoso.example", list(reasons))


def groups_of(report: CycleReport) -> dict[str, int]:
    return {group.reason.key: group.count for group in report.groups}


def test_records_are_grouped_by_reason_with_counts_advice_and_examples() -> None:
    entries = [failure(f"f{n}", f"f{n}@x", "no licence", code="LICENSE_LIMIT_EXCEEDED") for n in range(7)]
    entries.append(failure("d1", "d1@x", "Duplicate Username"))
    role = "ProfileName: No more than one app role assignment was expected, but this many where found: 2"
    upn = "userPrincipalName: not e-mail-shaped (expect_column_values_to_match_regex)"
    mail = "mail: missing (expect_column_values_to_not_be_null)"
    quarantined = [quarantine(f"q{n}", role) for n in range(3)] + [quarantine("q9", upn, mail)]
    held = [PlannedChange("h1", "h1@x", Action.DISABLE, "005H", {})]
    report = cycle_report(summary(escrowed=8, quarantined=4, held_back=1), entries, quarantined, held)

    assert report.needs_attention
    assert report.counts == {"failed": 8, "not processed": 0, "quarantined": 4, "held back": 1, "other": 0}
    assert [(g.reason.key, g.count, g.kinds) for g in report.groups] == [
        ("LICENSE_LIMIT_EXCEEDED", 7, ("failed",)),  # failed first, biggest first
        ("DUPLICATE_USERNAME", 1, ("failed",)),
        ("SingleAppRoleAssignment", 3, ("quarantined",)),
        (mail, 1, ("quarantined",)),  # a user with two broken expectations is in both groups
        (upn, 1, ("quarantined",)),
        ("DELETION_THRESHOLD", 1, ("held back",)),
    ]
    licence = report.groups[0]
    assert len(licence.examples) == EXAMPLES_PER_REASON
    assert licence.reason.title == "No free Salesforce licence" and "retried automatically" in licence.reason.advice
    by_key = {g.reason.key: g for g in report.groups}
    assert by_key[upn].reason.code == "expect_column_values_to_match_regex"
    assert by_key[upn].reason.title == "userPrincipalName: not e-mail-shaped"
    assert by_key[upn].why and "INVALID_EMAIL_ADDRESS" in by_key[upn].why  # the suite's notes say why
    assert "approve_deactivations" in by_key["DELETION_THRESHOLD"].reason.advice

    blocks = table_rows(report.html, "reason")
    assert len([row for row in blocks if row[0].startswith("No free Salesforce licence")]) == 1
    shown = visible(report.html)
    assert "What to do: The org has no free licence" in shown
    assert f"… and {7 - EXAMPLES_PER_REASON} more in the CSV" in shown  # 7 records, fewer examples
    assert "* No free Salesforce licence [LICENSE_LIMIT_EXCEEDED]: 7 failed" in report.text
    assert "* More than one app role is assigned [SingleAppRoleAssignment]: 3 quarantined" in report.text
    rows = parse(report.csv_bytes)
    assert rows[0][-1] == "reason"
    reason_of = {row[3]: row[9] for row in rows[1:]}
    assert reason_of["f0"] == "LICENSE_LIMIT_EXCEEDED"
    assert reason_of["q0"] == "SingleAppRoleAssignment"
    assert reason_of["q9"] == "expect_column_values_to_match_regex; expect_column_values_to_not_be_null"
    message_of = {row[3]: row[8] for row in rows[1:]}
    assert message_of["q9"] == f"{upn}; {mail}"  # the texts once, in the message; the codes in reason
    assert all(row[8] != row[9] for row in rows[1:] if row[1] == "quarantine")
    assert reason_of["h1"] == "DELETION_THRESHOLD"


def test_quarantine_reasons_in_the_log_are_grouped_by_the_exact_list_when_given() -> None:
    """The log joins reasons with "; "; a reason may itself hold "; " (a group name)."""
    reason = "app role assignment a1 (group:R&D; Sales) grants app role r9, which the application does not define"
    logged = LogEntry("c1", Action.QUARANTINE, Status.SKIPPED, "q1", "q1@x", None, {}, None, reason, T0)
    with_list = cycle_report(summary(quarantined=1), [logged], [quarantine("q1", reason)], [])
    assert groups_of(with_list) == {"UNKNOWN_APP_ROLE": 1}
    log_only = cycle_report(summary(quarantined=1), [logged], [], [])
    assert log_only.rows == 1  # split at "; " the parts are not the reasons: the stages pass the list


def test_unknown_reasons_get_generic_advice_and_come_last() -> None:
    entries = [failure("f1", "f1@x", "odd", code="SOME_NEW_CODE")]
    quarantined = [quarantine("q1", "a reason nobody wrote a rule for"), quarantine("q2", "NO_PROFILE nonsense")]
    report = cycle_report(summary(escrowed=1, quarantined=2), entries, quarantined, [])
    assert [g.reason.key for g in report.groups] == ["SOME_NEW_CODE", "OTHER"]
    assert "SOME_NEW_CODE" in report.groups[0].reason.advice
    assert report.groups[1].count == 2 and report.groups[1].reason is OTHER


def test_every_error_code_the_engine_emits_has_advice() -> None:
    from include.provisioning.salesforce import load
    from include.provisioning.state import commit

    engine_codes = {
        load.MISSING_KEY,
        load.DUPLICATE_KEY,
        load.UNSENDABLE_VALUE,
        load.NOT_REPORTED,
        load.UNPROCESSED,
        load.JOB_NOT_FOUND,
        load.UPLOAD_REFUSED,
        load.job_error_code(None),
        load.job_error_code("InvalidBatch : Field name not found : Foo"),
        commit.UNPROCESSED_CODE,
        "UNKNOWN_ERROR",
    }
    # Record-level codes the Salesforce emulator answers with (the real service's, for User).
    salesforce_codes = {
        "DUPLICATE_USERNAME",
        "DUPLICATE_COMM_NICKNAME",
        "DUPLICATE_VALUE",
        "LICENSE_LIMIT_EXCEEDED",
        "INVALID_EMAIL_ADDRESS",
        "STRING_TOO_LONG",
        "REQUIRED_FIELD_MISSING",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_CROSS_REFERENCE_KEY",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "UNABLE_TO_LOCK_ROW",
    }
    missing = sorted((engine_codes | salesforce_codes) - set(ERROR_ADVICE))
    assert missing == []
    for code in engine_codes | salesforce_codes:
        reason = error_reason(code)
        assert reason.key == reason.code == code and reason.title and len(reason.advice) > 40


def test_every_quarantine_reason_the_engine_words_has_its_own_rule() -> None:
    """The reasons come from the engine itself: its constants, profile resolution, role
    resolution, the diff's holds and the expectation suite, so the advice cannot drift."""
    import pandas as pd

    from include.provisioning import validate
    from include.provisioning.expressions import SINGLE_APP_ROLE_ERROR
    from include.provisioning.graph.assignments import Grant, RoleCatalog, resolve_grants
    from include.provisioning.mapping import DEFAULT_ACCESS_ERROR, NO_ROLE_ERROR
    from include.provisioning.salesforce.profiles import resolve_profiles
    from tests.provisioning.test_diff import World, entra, link, sf

    expected: dict[str, str] = {
        f"ProfileName: {SINGLE_APP_ROLE_ERROR.format(count=3)}": "SingleAppRoleAssignment",
        f"ProfileName: {DEFAULT_ACCESS_ERROR}": "DEFAULT_ACCESS_ONLY",
        f"ProfileName: {NO_ROLE_ERROR}": "NO_APP_ROLE",
        "LastName: FormatDateTime: 'x' is not a date/time": "MAPPING:LastName",
        "no mapped values: the mapping produced no row for this user": "NO_MAPPED_VALUES",
    }
    mapped = pd.DataFrame({"id": ["a", "b", "c"], "ProfileName": [None, "Nope", "sales"]})
    profiles = pd.DataFrame({"Id": ["00e1", "00e2"], "Name": ["Sales", "SALES"]})
    _, errors = resolve_profiles(mapped, profiles)
    expected |= {errors["a"][0]: "NO_PROFILE", errors["b"][0]: "PROFILE_NOT_FOUND", errors["c"][0]: "PROFILE_AMBIGUOUS"}
    roles = resolve_grants([Grant("as1", "0badc0de", "group:Sales; EMEA")], RoleCatalog.from_service_principal({}))
    expected[roles.problems[0]] = "UNKNOWN_APP_ROLE"

    def held(world: World, **kwargs: object) -> list[str]:
        plan = world.plan(**kwargs)  # type: ignore[arg-type]
        return [reason for user in plan.quarantined for reason in user.reasons]

    shared = "team@contoso.example"
    worlds = {
        "AMBIGUOUS_MATCH": (
            World(
                [entra(1, Username="n@x.example", Email=shared)],
                org=[sf(7, Email=shared), sf(8, Email=shared)],
                matching=("Username", "Email"),
            ),
            {},
        ),
        "CONTESTED_MATCH": (
            World(
                [entra(1, Username="a@x.example", Email=shared), entra(2, Username="b@x.example", Email=shared)],
                org=[sf(7, Email=shared)],
                matching=("Username", "Email"),
            ),
            {},
        ),
        "LINK_CONFLICT": (
            World([entra(1), entra(2, Username="o@x.example")], org=[sf(1)], snapshot=[link(1), link(2, 1)]),
            {},
        ),
        "DUPLICATE_USERNAME": (
            World([entra(1), entra(2, Username="user1@contoso.example")], org=[sf(1)], snapshot=[link(1)]),
            {"incremental": True, "only": ["e2"]},
        ),
    }
    for code, (world, kwargs) in worlds.items():
        reasons = held(world, **kwargs)
        assert reasons, code
        expected |= dict.fromkeys(reasons, code)
    twins = held(World([entra(1, Username="same@x.example"), entra(2, Username="SAME@x.example")]))
    expected |= dict.fromkeys(twins, "DUPLICATE_USERNAME")

    suite = json.loads(SUITE.read_text(encoding="utf-8"))["expectations"]
    for entry in suite:
        text = validate._describe(entry, validate._columns_of(entry.get("kwargs") or {}))
        expected[text] = text  # each broken expectation is its own group

    got = {text: classify_quarantine(text).key for text in expected}
    assert got == expected
    for text in expected:
        reason = classify_quarantine(text)
        assert reason is not OTHER and reason.title and len(reason.advice) > 40, text

    report = cycle_report(summary(quarantined=len(suite)), [], [quarantine(f"q{n}", t) for n, t in enumerate(expected)])
    notes = {g.reason.key: g.why for g in report.groups}
    for entry in suite:  # every expectation's notes explain its group
        assert notes[validate._describe(entry, validate._columns_of(entry.get("kwargs") or {}))] == entry["notes"]


# -- needs attention, stopped and failed cycles, links -----------------------------------------


def test_a_clean_cycle_needs_no_attention_and_no_mail() -> None:
    ok = LogEntry("c1", Action.CREATE, Status.SUCCESS, "e1", "a@x", "005", {}, None, None, T0)
    report = cycle_report(summary(created=1), [ok], [], [])
    assert not report.needs_attention
    assert report.rows == 0 and report.groups == () and len(parse(report.csv_bytes)) == 1
    assert failure_report(summary(created=1), [ok], [], []) is None


def test_a_stopped_cycle_needs_attention_and_says_why() -> None:
    stopped = summary(quarantined=3)
    stopped.status = CycleStatus.STOPPED
    stopped.reason = "3 of 5 users (60%) failed validation (limit 40%); nothing was written to Salesforce"
    mail = "mail: missing (expect_column_values_to_not_be_null)"
    report = cycle_report(stopped, [], [quarantine(f"q{n}", mail) for n in range(3)], [])
    assert report.needs_attention
    assert report.subject == f"Entra to Salesforce provisioning, cycle {stopped.cycle_id} stopped: 3 quarantined"
    shown = visible(report.html)
    assert "Stopped: 3 of 5 users (60%) failed validation" in shown
    assert "provisioning_max_quarantine_share" in shown
    assert "Stopped: 3 of 5 users (60%) failed validation (limit 40%); nothing was written" in " ".join(
        report.text.split()
    )
    assert groups_of(report) == {mail: 3}


def test_a_failed_cycle_without_records_needs_attention() -> None:
    failed = summary()
    failed.status, failed.reason = CycleStatus.FAILED, "SalesforceAuthError: INVALID_LOGIN: bad\r\npassword"
    report = cycle_report(failed)
    assert report.needs_attention and report.rows == 0
    assert report.subject == (
        f"Entra to Salesforce provisioning, cycle {failed.cycle_id} failed: SalesforceAuthError: INVALID_LOGIN: bad "
        "password"
    )
    assert "the cycle itself needs attention" in visible(report.html)
    assert "Failed: SalesforceAuthError" in report.text and "Airflow task log" in report.text
    assert failure_report(failed, [], [], []) is not None  # same rule through the old name


def test_a_dry_run_that_found_nothing_needs_no_attention() -> None:
    dry = summary(created=2)
    dry.status, dry.reason = CycleStatus.STOPPED, "dry run: nothing was written"
    assert not cycle_report(dry, dry_run=True).needs_attention
    assert failure_report(dry, [], [], [], dry_run=True) is None
    assert cycle_report(dry).needs_attention  # a real stop does
    planned = cycle_report(
        dry, [], [quarantine("q1", "mail: missing (expect_column_values_to_not_be_null)")], [], dry_run=True
    )
    assert planned.needs_attention and planned.subject.endswith("cycle 20261126T153000Z-ab12 (dry run): 1 quarantined")


def test_a_dry_run_reads_as_a_dry_run_and_only_a_validation_stop_as_stopped() -> None:
    dry = summary(created=2)
    dry.status, dry.reason = CycleStatus.STOPPED, DRY_RUN_REASON
    assert planned_dry_run(dry, dry_run=True)
    text = format_summary(dry, dry_run=True)
    assert text.splitlines()[0].endswith("cycle, dry run (planned only, nothing written)")
    assert "stopped" not in text and "reason:" not in text
    stopped = summary(quarantined=3)
    stopped.status, stopped.reason = CycleStatus.STOPPED, "3 of 6 users failed validation (50 % > 40 %)"
    assert not planned_dry_run(stopped, dry_run=True)  # the preview of a cycle that would stop
    text = format_summary(stopped, dry_run=True)
    assert text.splitlines()[0].endswith("cycle, stopped (dry run)")
    assert "  reason: 3 of 6 users failed validation (50 % > 40 %)" in text
    assert format_summary(stopped).splitlines()[0].endswith("cycle, stopped")


def test_the_run_link_is_shown_escaped_and_only_for_http() -> None:
    url = 'http://localhost:8080/dags/sync/runs/manual__2026-11-30T07%3A31%3A00%2B00%3A00?a=1&b="x'
    report = cycle_report(summary(quarantined=1), [], [quarantine("q1", "x")], [], run_url=url)
    assert 'href="http://localhost:8080/dags/sync/runs/manual__2026-11-30T07%3A31%3A00%2B00%3A00?a=1&amp;b=&#34;x"' in (
        report.html
    )
    assert f"Run in Airflow: {url}" in report.text
    assert "Open the run in Airflow" in visible(report.html)
    for bad in ("javascript:alert(1)", "data:text/html,<b>", "", None):
        other = report.with_run_url(bad)
        assert other.run_url is None and "Open the run in Airflow" not in other.html and "javascript" not in other.html
    again = cycle_report(summary(quarantined=1), [], [quarantine("q1", "x")], []).with_run_url(url)
    assert again.html == report.html and again.text == report.text


def test_hostile_values_everywhere_stay_inert() -> None:
    bad = '<img src=x onerror="alert(1)">'
    hostile = summary(escrowed=1, quarantined=1)
    hostile.cycle_id, hostile.reason = bad, bad
    entries = [failure("e1", bad, bad, code=bad)]
    report = cycle_report(hostile, entries, [quarantine("q1", f"{bad}: {bad} (expect_{bad})", upn=bad)], [])
    assert "<img" not in report.html
    assert visible(report.html).count(bad) >= 5
    assert "\n" not in report.subject and report.csv_filename == "provisioning-_img_src_x_onerror_alert_1_.csv"


def test_huge_values_are_clipped_in_the_bodies_and_whole_in_the_csv() -> None:
    huge = "x" * 100_000
    report = cycle_report(summary(escrowed=1), [failure("e1", huge, huge, code="STRING_TOO_LONG")], [], [])
    assert len(report.html) < 30_000 and len(report.text) < 30_000
    assert "x" * (VALUE_LIMIT - 1) + "…" in report.html
    assert parse(report.csv_bytes)[1][4] == huge


# -- large reports -----------------------------------------------------------------------------


def test_a_report_of_100000_quarantined_users_keeps_its_bodies_small_and_its_csv_whole() -> None:
    """The bodies list a bounded number of records and reasons, so they do not grow with the
    input and stay under Gmail's 102 KB clipping limit. (Speed is measured by hand, never
    asserted: ~1.1 s for 100,000 users on 2 cores, most of it building the CSV.)"""
    n = 100_000
    rules = [
        "mail: missing (expect_column_values_to_not_be_null)",
        "ProfileName: No more than one app role assignment was expected, but this many where found: 2",
        *(f"profile 'P{k}' does not exist in Salesforce (known: Sales)" for k in range(40)),
    ]
    quarantined = [
        QuarantinedUser(f"{i:08d}-0000", f"user{i}@contoso.example", [rules[i % len(rules)]]) for i in range(n)
    ]
    stopped = summary(quarantined=n)
    stopped.status, stopped.reason = CycleStatus.STOPPED, "too many users failed validation"
    report = cycle_report(stopped, [], quarantined, [], zip_above=1_000_000)

    assert report.rows == n and report.counts["quarantined"] == n
    assert len(table_rows(report.html)) == HTML_ROW_LIMIT
    assert len(report.html.encode()) < 102_000 and len(report.text) < 60_000
    assert groups_of(report)["PROFILE_NOT_FOUND"] == sum(1 for i in range(n) if i % len(rules) >= 2)
    assert sum(g.count for g in report.groups) == n  # one reason each here
    assert len(report.groups) == 3
    assert report.attachment_name == "provisioning-20261126T153000Z-ab12.zip"
    with zipfile.ZipFile(io.BytesIO(report.attachment_bytes)) as archive:
        assert archive.namelist() == [report.csv_filename]
        assert archive.read(report.csv_filename) == report.csv_bytes
    assert len(report.attachment_bytes) < len(report.csv_bytes) // 5
    assert len(parse(report.csv_bytes)) == n + 1


def test_reasons_beyond_the_limit_are_counted_not_listed() -> None:
    entries = [failure(f"f{n}", f"f{n}@x", "x", code=f"CODE_{n:03d}") for n in range(REASON_LIMIT + 4)]
    report = cycle_report(summary(escrowed=len(entries)), entries, [], [])
    assert len(report.groups) == REASON_LIMIT + 4
    assert len(table_rows(report.html, "reason")) == 2 * REASON_LIMIT  # title row + advice row each
    assert "… and 4 more reasons" in visible(report.html)
    assert "... and 4 more reasons" in report.text


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


def test_salesforce_line_break_tags_read_as_text_not_as_markup() -> None:
    message = "Duplicate Username.<br>The username already exists in this or another Salesforce organization."
    report = cycle_report(summary(escrowed=1), [failure("e1", "a@x", message)], [], [])
    assert "&lt;br" not in report.html and "<br>The username" not in report.text
    assert "Duplicate Username. The username already exists" in report.html
    assert b"<br>" not in report.csv_bytes
