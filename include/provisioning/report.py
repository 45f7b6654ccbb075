"""What a person reads after a cycle: the summary table, and the failure report e-mailed when
anything failed, was quarantined or was held back.

User data in these reports is hostile until proven otherwise: a display name may be
``<script>``, a UPN may start with ``=HYPERLINK(...)``. So every value is HTML-escaped in the
HTML body, flattened to one line in the text body, and in the CSV attachment quoted and
neutralised against spreadsheet formula injection (OWASP "CSV Injection": a cell starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe, which
spreadsheets show as text). The HTML table is truncated for large reports; the CSV never is.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from include.provisioning.model import (
    Action,
    CycleSummary,
    LogEntry,
    PlannedChange,
    QuarantinedUser,
    Status,
)

HTML_ROW_LIMIT = 200
TEXT_ROW_LIMIT = 50
CSV_COLUMNS = (
    "cycle_id",
    "action",
    "status",
    "entra_id",
    "user_principal_name",
    "salesforce_id",
    "error_code",
    "message",
)
OUTCOMES = (
    ("created", "created"),
    ("updated", "updated"),
    ("unchanged", "unchanged"),
    ("deactivated", "deactivated"),
    ("quarantined", "quarantined"),
    ("escrowed", "escrowed"),
    ("held_back", "held back"),
)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""OWASP's list, plus the full-width forms some spreadsheets fold into the ASCII ones."""
HELD_BACK_DEFAULT = "held back by the accidental-deletion threshold"

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t\u2028\u2029\x85]+")


# -- summary ---------------------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def format_summary(summary: CycleSummary) -> str:
    """A plain-text table for the CLI and task logs; the outcome counts add up to "in scope"."""
    lines = [
        f"Cycle {summary.cycle_id}: {summary.mode} cycle, {summary.status}",
        f"  started  {_when(summary.started_at)}",
        f"  finished {_when(summary.finished_at)}",
        "",
    ]
    width = max(len(label) for _, label in OUTCOMES)
    rule = f"  {'-' * width}  {'-' * 9}"
    lines += [f"  {'outcome':<{width}}  {'users':>9}", rule]
    lines += [f"  {label:<{width}}  {getattr(summary, name):>9,}" for name, label in OUTCOMES]
    lines += [rule, f"  {'in scope':<{width}}  {summary.in_scope:>9,}", ""]
    terms = " + ".join(f"{label} {getattr(summary, name):,}" for name, label in OUTCOMES)
    lines += [f"  in scope {summary.in_scope:,} = {terms}", ""]
    if summary.phase_seconds:
        name_width = max(8, *(len(name) for name in summary.phase_seconds))
        lines.append(f"  {'phase':<{name_width}}  {'seconds':>9}")
        lines += [f"  {name:<{name_width}}  {seconds:>9.2f}" for name, seconds in summary.phase_seconds.items()]
        lines += [f"  {'total':<{name_width}}  {sum(summary.phase_seconds.values()):>9.2f}", ""]
    if summary.requests:
        name_width = max(8, *(len(name) for name in summary.requests))
        lines.append(f"  {'requests':<{name_width}}  {'count':>9}")
        lines += [f"  {name:<{name_width}}  {count:>9,}" for name, count in summary.requests.items()]
        lines.append("")
    if summary.reason:
        lines.append(f"  reason: {summary.reason}")
    return "\n".join(lines).rstrip() + "\n"


# -- failure report --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One user in the failure report (the CSV's columns, in order)."""

    cycle_id: str
    action: str
    status: str
    entra_id: str
    user_principal_name: str | None
    salesforce_id: str | None
    error_code: str | None
    message: str | None

    def values(self) -> tuple[str | None, ...]:
        return (
            self.cycle_id,
            self.action,
            self.status,
            self.entra_id,
            self.user_principal_name,
            self.salesforce_id,
            self.error_code,
            self.message,
        )


@dataclass(frozen=True)
class FailureReport:
    subject: str
    text: str
    html: str
    csv_bytes: bytes
    """UTF-8 with a byte-order mark (so spreadsheets detect the encoding), one row per user."""
    rows: int
    csv_filename: str


def failure_report(
    summary: CycleSummary,
    entries: Sequence[LogEntry],
    quarantined: Sequence[QuarantinedUser],
    held_back: Sequence[PlannedChange],
    *,
    held_back_reason: str | None = None,
    html_limit: int = HTML_ROW_LIMIT,
) -> FailureReport | None:
    """The report for the e-mail step, or None when nothing failed, was quarantined or held back.

    ``entries`` may be the whole cycle's log: only rows that are not a success are reported, and
    users also listed in ``quarantined`` or ``held_back`` are not reported twice."""
    rows = report_rows(summary.cycle_id, entries, quarantined, held_back, held_back_reason=held_back_reason)
    if not rows:
        return None
    counts = _counts(rows)
    subject = _one_line(
        f"Entra to Salesforce provisioning, cycle {summary.cycle_id}: "
        + ", ".join(f"{count:,} {label}" for label, count in counts.items() if count)
    )
    return FailureReport(
        subject=subject,
        text=_text(summary, rows, counts),
        html=_html(summary, rows, counts, html_limit),
        csv_bytes=csv_bytes(rows),
        rows=len(rows),
        csv_filename=f"provisioning-{_safe_name(summary.cycle_id)}.csv",
    )


def report_rows(
    cycle_id: str,
    entries: Iterable[LogEntry],
    quarantined: Iterable[QuarantinedUser],
    held_back: Iterable[PlannedChange],
    *,
    held_back_reason: str | None = None,
) -> list[ReportRow]:
    """Failures first, then records Salesforce did not process, quarantined, held back."""
    logged = [entry for entry in entries if entry.status is not Status.SUCCESS]
    rank = {Status.FAILURE: 0, Status.WARNING: 1}
    groups: dict[int, list[ReportRow]] = {0: [], 1: [], 2: [], 3: [], 4: []}
    for entry in logged:
        group = rank.get(entry.status, {Action.QUARANTINE: 2, Action.STAGED_DELETE: 3}.get(entry.action, 4))
        groups[group].append(
            ReportRow(
                entry.cycle_id,
                str(entry.action),
                str(entry.status),
                entry.entra_id,
                entry.user_principal_name,
                entry.sf_id,
                entry.error_code,
                entry.error_message,
            )
        )
    seen = {(entry.action, entry.entra_id) for entry in logged}
    staged = [e.error_message for e in logged if e.action is Action.STAGED_DELETE and e.error_message]
    held_back_reason = held_back_reason or (staged[0] if staged else HELD_BACK_DEFAULT)
    for user in quarantined:
        if (Action.QUARANTINE, user.entra_id) not in seen:
            groups[2].append(
                ReportRow(
                    cycle_id,
                    str(Action.QUARANTINE),
                    str(Status.SKIPPED),
                    user.entra_id,
                    user.user_principal_name,
                    None,
                    None,
                    "; ".join(user.reasons),
                )
            )
    for change in held_back:
        if (Action.STAGED_DELETE, change.entra_id) not in seen:
            groups[3].append(
                ReportRow(
                    cycle_id,
                    str(Action.STAGED_DELETE),
                    str(Status.SKIPPED),
                    change.entra_id,
                    change.user_principal_name,
                    change.sf_id,
                    None,
                    held_back_reason,
                )
            )
    return [row for group in sorted(groups) for row in groups[group]]


def _counts(rows: Sequence[ReportRow]) -> dict[str, int]:
    counts = {"failed": 0, "not processed": 0, "quarantined": 0, "held back": 0, "other": 0}
    for row in rows:
        if row.status == Status.FAILURE:
            counts["failed"] += 1
        elif row.status == Status.WARNING:
            counts["not processed"] += 1
        elif row.action == Action.QUARANTINE:
            counts["quarantined"] += 1
        elif row.action == Action.STAGED_DELETE:
            counts["held back"] += 1
        else:
            counts["other"] += 1
    return counts


# -- CSV -------------------------------------------------------------------------------------


def neutralize(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: None → "", formula triggers get a leading ``'``."""
    if value is None:
        return ""
    text = _SURROGATES.sub("\ufffd", str(value))
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_bytes(rows: Iterable[ReportRow]) -> bytes:
    """Every row (never truncated), every cell quoted and neutralised, RFC 4180 line ends."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([neutralize(value) for value in row.values()])
    return buffer.getvalue().encode("utf-8-sig")


# -- text and HTML bodies --------------------------------------------------------------------


def _one_line(value: object) -> str:
    """Free text on one line (no forged extra lines in a text body or a mail header)."""
    if value is None:
        return ""
    text = _SURROGATES.sub("\ufffd", str(value))
    return _CONTROL.sub("\ufffd", _LINE_BREAKS.sub(" ", text)).strip()


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value) or "cycle"


def _text(summary: CycleSummary, rows: Sequence[ReportRow], counts: dict[str, int]) -> str:
    lines = [format_summary(summary).rstrip(), ""]
    lines.append("Needs attention: " + ", ".join(f"{n:,} {label}" for label, n in counts.items() if n))
    lines.append("")
    for row in rows[:TEXT_ROW_LIMIT]:
        who = _one_line(row.user_principal_name) or _one_line(row.entra_id)
        code = f" [{_one_line(row.error_code)}]" if row.error_code else ""
        lines.append(f"- {row.action} {row.status}: {who} ({_one_line(row.entra_id)}){code} {_one_line(row.message)}")
    if len(rows) > TEXT_ROW_LIMIT:
        lines.append(f"... and {len(rows) - TEXT_ROW_LIMIT:,} more: every row is in the attached CSV.")
    else:
        lines.append("The attached CSV lists the same rows.")
    return "\n".join(lines) + "\n"


def _esc(value: object) -> str:
    if value is None:
        return ""
    text = _CONTROL.sub("\ufffd", _SURROGATES.sub("\ufffd", str(value)))
    return html.escape(text, quote=True)


_TABLE = '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">'


def _html(summary: CycleSummary, rows: Sequence[ReportRow], counts: dict[str, int], limit: int) -> str:
    outcome_rows = "".join(
        f"<tr><td>{_esc(label)}</td><td>{getattr(summary, name):,}</td></tr>" for name, label in OUTCOMES
    )
    terms = " + ".join(f"{label} {getattr(summary, name):,}" for name, label in OUTCOMES)
    header = "".join(f"<th>{_esc(name)}</th>" for name in CSV_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(value)}</td>" for value in row.values()) + "</tr>" for row in rows[:limit]
    )
    more = (
        f"<p>Showing the first {limit:,} of {len(rows):,} rows; every row is in the attached CSV.</p>"
        if len(rows) > limit
        else "<p>The attached CSV lists the same rows.</p>"
    )
    reason = f"<p>Reason: {_esc(summary.reason)}</p>" if summary.reason else ""
    attention = ", ".join(f"{n:,} {_esc(label)}" for label, n in counts.items() if n)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>Provisioning cycle {_esc(summary.cycle_id)}</title></head><body>"
        f"<h2>Provisioning cycle {_esc(summary.cycle_id)}</h2>"
        f"<p>{_esc(summary.mode)} cycle, {_esc(summary.status)}; started {_esc(_when(summary.started_at))}, "
        f"finished {_esc(_when(summary.finished_at))}.</p>{reason}"
        f"{_TABLE}{outcome_rows}"
        f"<tr><th>in scope</th><th>{summary.in_scope:,}</th></tr></table>"
        f"<p>in scope {summary.in_scope:,} = {_esc(terms)}</p>"
        f"<h3>Needs attention: {attention}</h3>"
        f"{_TABLE}<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
        f"{more}</body></html>"
    )
