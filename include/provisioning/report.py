"""What a person reads after a cycle: the summary table, and the cycle report e-mailed when
anything failed, was quarantined or was held back (or the cycle stopped or failed).

The cycle report (:func:`cycle_report` → :class:`CycleReport`) groups the records by reason — a
Salesforce or loader error code, a broken expectation of the suite, a quarantine rule of the
engine, the accidental-deletion threshold — and says for each what an administrator should do
(:data:`ERROR_ADVICE`, :func:`classify_quarantine`). Its HTML and text bodies are rendered from
the Jinja templates in ``templates/``; the CSV attachment lists every record.

User data in these reports is hostile until proven otherwise: a display name may be
``<script>``, a UPN may start with ``=HYPERLINK(...)``. So the HTML template is autoescaped,
every value is flattened to one line (no forged lines in the text body or a mail header), and in
the CSV every value is quoted and neutralised against spreadsheet formula injection (OWASP "CSV
Injection": a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
leading apostrophe, which spreadsheets show as text). The bodies list the first records only
(a report of 100,000 quarantined users renders as fast as one of ten); the CSV never truncates.

No Airflow here: sending is ``plugins/entra_provisioning/notify.py``'s job.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import textwrap
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from include.provisioning.model import (
    DRY_RUN_REASON,
    Action,
    CycleStatus,
    CycleSummary,
    LogEntry,
    PlannedChange,
    QuarantinedUser,
    Status,
    user_label,
)
from include.provisioning.salesforce_messages import plain_message

HTML_ROW_LIMIT = 50
"""Records listed one by one in the HTML body (the CSV has them all)."""
TEXT_ROW_LIMIT = 50
"""Records listed one by one in the text body."""
EXAMPLES_PER_REASON = 3
"""Records shown under each reason."""
REASON_LIMIT = 20
"""Reasons shown in the bodies; the CSV's ``reason`` column names every record's reasons."""
VALUE_LIMIT = 200
"""Characters of one value shown in the bodies (a hostile 1 MB display name must not bloat the
mail); the CSV has every value whole."""
ZIP_ABOVE_BYTES = 5 * 1024 * 1024
"""A CSV larger than this is attached zipped: mail relays commonly refuse messages above 10-35 MB
(base64 adds a third), and the CSV of 100,000 users is ~20 MB but zips to a tenth of it."""
CSV_COLUMNS = (
    "cycle_id",
    "action",
    "status",
    "entra_id",
    "user_principal_name",
    "display_name",
    "salesforce_id",
    "error_code",
    "message",
    "reason",
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
ATTENTION_KINDS = ("failed", "not processed", "quarantined", "held back", "other")
"""Kinds of reported records, in the order the report lists them (see :func:`record_kind`)."""
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""OWASP's list, plus the full-width forms some spreadsheets fold into the ASCII ones."""
HELD_BACK_DEFAULT = "held back by the accidental-deletion threshold"
SUBJECT_PREFIX = "Entra to Salesforce provisioning"
SUBJECT_MAX = 200
TEMPLATES = Path(__file__).resolve().parent / "templates"

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t\u2028\u2029\x85]+")


# -- summary ---------------------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def planned_dry_run(summary: CycleSummary, *, dry_run: bool) -> bool:
    """A dry run that planned its changes: the engine records it as stopped before writing, which
    is by design and no stop (a dry run that validation stopped is one: the real cycle would stop)."""
    return dry_run and summary.reason in (None, DRY_RUN_REASON)


@dataclass(frozen=True)
class EscrowBacklog:
    """Users waiting in escrow after a cycle, whether or not the cycle looked at them (an
    incremental cycle sees only changed users, so its ``escrowed`` count can be 0 while others wait)."""

    waiting: int = 0
    next_attempt_at: dt.datetime | None = None

    @classmethod
    def of(cls, entries: Sequence[Any], now: dt.datetime) -> EscrowBacklog:
        """From the state store's escrow entries (``EscrowEntry``: ``next_attempt_at``)."""
        due = [e.next_attempt_at for e in entries]
        upcoming = [at for at in due if at > now]
        return cls(len(due), min(upcoming) if upcoming else (min(due) if due else None))

    def to_json(self) -> dict[str, Any]:
        """``{"escrow_waiting": int, "escrow_next_attempt_at": ISO 8601 or None}``: the keys the
        commit task's XCom carries them under (the demo's summary reads them back, :meth:`from_json`)."""
        at = self.next_attempt_at.isoformat() if self.next_attempt_at else None
        return {"escrow_waiting": self.waiting, "escrow_next_attempt_at": at}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> EscrowBacklog | None:
        """From :meth:`to_json`'s keys (in a larger mapping); None when ``escrow_waiting`` is absent
        (an XCom of an older version, or of a run that committed no cycle)."""
        if values.get("escrow_waiting") is None:
            return None
        at = values.get("escrow_next_attempt_at")
        return cls(int(values["escrow_waiting"]), dt.datetime.fromisoformat(at) if at else None)

    def describe(self) -> str:
        if not self.waiting:
            return "escrow: nobody waiting"
        return f"escrow: {self.waiting:,} user(s) waiting; next retry {_when(self.next_attempt_at)}"


def format_summary(summary: CycleSummary, *, dry_run: bool = False, backlog: EscrowBacklog | None = None) -> str:
    """A plain-text table for the CLI and task logs; the outcome counts add up to "in scope".

    A dry run's status reads "dry run" (``planned_dry_run``), or "stopped (dry run)" with the
    reason when validation stopped it. ``backlog``: who waits in escrow after the cycle (the
    ``escrowed`` count is only of the users this cycle looked at)."""
    planned = planned_dry_run(summary, dry_run=dry_run)
    status = "dry run (planned only, nothing written)" if planned else str(summary.status)
    if dry_run and not planned:
        status += " (dry run)"
    lines = [
        f"Cycle {summary.cycle_id}: {summary.mode} cycle, {status}",
        f"  started  {_when(summary.started_at)}",
        f"  finished {_when(summary.finished_at)}",
        "",
    ]
    total = total_label(summary, planned=planned)
    width = max(len(total), *(len(label) for _, label in OUTCOMES))
    rule = f"  {'-' * width}  {'-' * 9}"
    lines += [f"  {'outcome':<{width}}  {'users':>9}", rule]
    lines += [f"  {label:<{width}}  {count:>9,}{note and '  ' + note}" for label, count, note in outcome_rows(summary)]
    lines += [rule, f"  {total:<{width}}  {summary.in_scope:>9,}", ""]
    lines += [f"  {total} {summary.in_scope:,} = {_equation(summary)}", ""]
    if total != "in scope":
        lines += [f"  {STOPPED_COUNT_NOTE}", ""]
    if backlog is not None:
        lines += [f"  {backlog.describe()}", ""]
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
    if summary.reason and not planned:
        lines.append(f"  reason: {summary.reason}")
    return "\n".join(lines).rstrip() + "\n"


STOPPED_COUNT_NOTE = (
    "The cycle stopped before writing: only these users have an outcome; the reason says how many were in scope."
)


def total_label(summary: CycleSummary, *, planned: bool = False) -> str:
    """What the outcome counts add up to: "in scope", or "counted" for a cycle that stopped
    before writing (validation stopped it: the users it never reached have no outcome, and the
    stop's reason gives the whole scope, ``stages._validation_stop``)."""
    return "counted" if summary.status is CycleStatus.STOPPED and not planned else "in scope"


def outcome_rows(summary: CycleSummary) -> list[tuple[str, int, str]]:
    """``(label, users, note)`` per outcome of :data:`OUTCOMES`; the note of "updated" says how
    many of them were reactivated (``"17 reactivated"``), every other note is ""."""
    return [
        (
            label,
            getattr(summary, name),
            f"({summary.reactivated:,} reactivated)" if name == "updated" and summary.reactivated else "",
        )
        for name, label in OUTCOMES
    ]


def _equation(summary: CycleSummary) -> str:
    return " + ".join(" ".join(f"{label} {count:,} {note}".split()) for label, count, note in outcome_rows(summary))


# -- reasons and what to do about them -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """Why records were reported, and what an administrator should do about it."""

    key: str
    """Groups the records: an error code, a quarantine rule's code, or for a broken expectation
    the quarantine reason itself (it names attribute and rule)."""
    code: str
    """Short code a person can search for: the error code, the expectation type, the rule (the
    CSV's ``reason`` column)."""
    title: str
    advice: str


_RETRIED = (
    "Failed records are retried automatically on Entra's escrow schedule (after 6 h, 12 h, 24 h, then daily "
    "for up to 28 days); once the cause is fixed the next retry succeeds."
)
_TRANSIENT = "Nothing to do unless it repeats: the record is sent again in the next cycle."

ERROR_ADVICE: dict[str, tuple[str, str]] = {
    # Salesforce's record-level codes (Bulk API 2.0 failedResults, sf__Error).
    "DUPLICATE_USERNAME": (
        "The Username is already taken",
        "Salesforce usernames are unique across every org, sandboxes included. Find who holds the Username "
        "(another user in this org, a sandbox copy, another company's org), then change the user's "
        "userPrincipalName in Entra ID or rename the other Salesforce user. " + _RETRIED,
    ),
    "DUPLICATE_COMM_NICKNAME": (
        "The nickname is already taken",
        "Another Salesforce user has this CommunityNickname. The default mapping sends none (Salesforce picks a "
        "unique one); a CommunityNickname row in include/mappings/salesforce_user.yaml must give values unique in "
        "the org. Remove the row, or rename the other user's nickname in Salesforce. " + _RETRIED,
    ),
    "DUPLICATE_VALUE": (
        "A unique field's value belongs to another Salesforce user",
        "Usually FederationIdentifier: another Salesforce user already carries this value (the message names "
        "the field). Clear or correct it on that user in Salesforce. " + _RETRIED,
    ),
    "LICENSE_LIMIT_EXCEEDED": (
        "No free Salesforce licence",
        "The org has no free licence of the type the user's profile needs. Free licences (deactivate leavers in "
        "Salesforce) or buy more in Setup > Company Information. " + _RETRIED,
    ),
    "INVALID_EMAIL_ADDRESS": (
        "Salesforce refused an e-mail address",
        "Correct the user's mail (Email) or userPrincipalName (Username) in Entra ID; consider adding an "
        "expectation to include/expectations/entra_users.json so such values are quarantined before sending.",
    ),
    "STRING_TOO_LONG": (
        "A value is longer than its Salesforce field",
        "Shorten the value in Entra ID, or truncate it in the mapping table (Left(...)); the message names the "
        "field. " + _RETRIED,
    ),
    "REQUIRED_FIELD_MISSING": (
        "A required Salesforce field is empty",
        "Fill in the Entra attribute that feeds the field (the message names it), or give the field a default "
        "in include/mappings/salesforce_user.yaml. " + _RETRIED,
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": (
        "A value is not allowed by a restricted picklist",
        "The value is not one of the field's picklist values (locale, language, time zone, e-mail encoding). Fix "
        "the Switch(...) for that field in the mapping table, or the Entra attribute. " + _RETRIED,
    ),
    "INVALID_CROSS_REFERENCE_KEY": (
        "A referenced record does not exist",
        "Usually the ProfileId or UserRoleId: the profile or role was deleted, or the integration user cannot "
        "see it. Check the app roles' profile names against Salesforce's profiles. " + _RETRIED,
    ),
    "FIELD_INTEGRITY_EXCEPTION": (
        "Salesforce refused a combination of values",
        "Often a profile whose user licence does not fit the user, or a field the licence does not allow. Read "
        "the message, then fix the app role's profile or the mapping. " + _RETRIED,
    ),
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "A mapped field cannot be written",
        "The integration user may not write this field (field-level security) or it is read-only. Grant edit "
        "access to the integration user's profile, or remove the field from the mapping table.",
    ),
    "INVALID_TYPE_ON_FIELD_IN_RECORD": (
        "A value has the wrong type for its field",
        "The mapping produces text where Salesforce expects another type (a boolean, a number, a date). Fix the "
        "field's expression in include/mappings/salesforce_user.yaml.",
    ),
    "NUMBER_OUTSIDE_VALID_RANGE": (
        "A number is outside its field's range",
        "Correct the source value in Entra ID or the field's expression in the mapping table. " + _RETRIED,
    ),
    "INVALID_FIELD": (
        "The mapping names a field Salesforce does not know",
        "A target field of include/mappings/salesforce_user.yaml does not exist on User (or the integration user "
        "cannot see it): fix its name or grant access.",
    ),
    "UNABLE_TO_LOCK_ROW": ("Salesforce was busy with the same record", _TRANSIENT),
    "UNKNOWN_EXCEPTION": ("Salesforce had an internal error", _TRANSIENT),
    "SERVER_UNAVAILABLE": ("Salesforce was unavailable", _TRANSIENT),
    "REQUEST_LIMIT_EXCEEDED": (
        "The org's API limits ran out",
        "Salesforce refused requests because the org used up its API allowance. The records are retried; check "
        "API usage in Setup > System Overview and which integrations consume it.",
    ),
    "INVALID_SESSION_ID": ("The Salesforce session expired", _TRANSIENT),
    "InvalidBatch": (
        "Salesforce refused the whole Bulk job",
        "Every record of the job failed with this code; the message is Salesforce's. It usually points at the "
        "mapping table (a field name Salesforce does not know) or the integration user's permissions. Fix it, "
        "then the records are retried.",
    ),
    "JOB_FAILED": (
        "A Bulk job failed as a whole",
        "Salesforce failed the job without naming a code; the message and the Bulk Data Load Jobs page in Setup "
        "say why. The records are retried.",
    ),
    # The loader's own codes (include/provisioning/salesforce/load.py).
    "MISSING_KEY": (
        "The record has no key to send",
        "The mapping produced no Username (insert) or the snapshot has no Salesforce Id (update). Check the "
        "matching attribute's expression in the mapping table and the user's userPrincipalName in Entra ID.",
    ),
    "DUPLICATE_KEY": (
        "Two records of one job have the same key",
        "Two Entra users map to one Username (or one Salesforce Id). Make their userPrincipalNames distinct in "
        "Entra ID. " + _RETRIED,
    ),
    "UNSENDABLE_VALUE": (
        "A value cannot be sent through the Bulk API",
        "The message names the field and what is wrong with the value (a line break mix, the text #N/A, a row too "
        "large). Correct the value in Entra ID, or add an expectation so it is quarantined next time.",
    ),
    "UPLOAD_REFUSED": (
        "Salesforce refused the job upload",
        "The records were not sent; the task log has Salesforce's answer. They are sent again in the next "
        "cycle; if it repeats, check the integration user's Bulk API permission.",
    ),
    "NOT_REPORTED": (
        "Salesforce never reported the record",
        "The Bulk job finished without a result for the record. It is retried automatically; if it repeats, "
        "open the job in Setup > Bulk Data Load Jobs.",
    ),
    "UNPROCESSED": ("Salesforce did not process the record", _TRANSIENT),
    "JOB_NOT_FOUND": (
        "A job of an interrupted run is gone",
        "A run was killed during the load and its Bulk job no longer exists, so the outcome is unknown. The next "
        "full cycle compares with Salesforce and settles it; check the user in Salesforce if in doubt.",
    ),
    "UNKNOWN_ERROR": (
        "Salesforce gave no error code",
        "Read the message; the record is retried automatically. " + _RETRIED,
    ),
}
"""Error code → (title, what an administrator should do). Salesforce's codes pass through the
loader unchanged; codes not listed get :func:`error_reason`'s generic advice."""

DELETION_THRESHOLD = Reason(
    "DELETION_THRESHOLD",
    "DELETION_THRESHOLD",
    "Deactivations held back by the accidental-deletion threshold",
    "Nothing was deactivated: more users left scope than the threshold allows. Find out why (an unassigned "
    "group, a changed scoping filter, a directory problem). If the deactivations are intended, approve them by "
    "triggering the DAG with approve_deactivations, or raise the Variables "
    "provisioning_deletion_threshold_count / provisioning_deletion_threshold_share; if not, restore the "
    "assignments. The users stay active in Salesforce until then.",
)
OTHER = Reason(
    "OTHER",
    "OTHER",
    "Other reasons",
    "Read each record's message in the attached CSV.",
)

_ENTRA_FIX = "Quarantined users are checked again as soon as Entra reports a change to them."
_QUARANTINE_RULES: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    # (pattern on one quarantine reason, code, title, advice). The texts come from
    # expressions/functions.py, mapping.py, salesforce/profiles.py, graph/assignments.py, diff.py.
    (
        re.compile(r"No more than one app role assignment was expected"),
        "SingleAppRoleAssignment",
        "More than one app role is assigned",
        "SingleAppRoleAssignment takes one app role per user and these users have several (directly or through "
        "groups; Entra reports the same error). Remove the extra assignments of the Salesforce enterprise "
        "application so each user keeps one role. " + _ENTRA_FIX,
    ),
    (
        re.compile(r"only the default access role is assigned"),
        "DEFAULT_ACCESS_ONLY",
        "Only the default access role is assigned",
        "The default access role names no Salesforce profile. Assign the users (or a group they belong to) an "
        "app role of the Salesforce enterprise application that names a profile. " + _ENTRA_FIX,
    ),
    (
        re.compile(r"no app role assigned and no default profile"),
        "NO_APP_ROLE",
        "No app role is assigned",
        "Assign the users (or a group they belong to) an app role of the Salesforce enterprise application that "
        "names a profile. " + _ENTRA_FIX,
    ),
    (
        re.compile(r"^no Salesforce profile:"),
        "NO_PROFILE",
        "The app role gives no profile name",
        "The user's app role has an empty value. Give the app role a value that is a Salesforce profile name "
        "(Entra ID > App registrations > App roles), or map it in the ProfileName expression.",
    ),
    (
        re.compile(r"^profile .* does not exist in Salesforce", re.DOTALL),
        "PROFILE_NOT_FOUND",
        "The profile does not exist in Salesforce",
        "The app role names a profile Salesforce does not have (the message lists the known ones). Correct the "
        "app role's value in Entra ID or the ProfileName expression, or create the profile in Salesforce.",
    ),
    (
        re.compile(r"^profile .* is ambiguous in Salesforce", re.DOTALL),
        "PROFILE_AMBIGUOUS",
        "The profile name is ambiguous in Salesforce",
        "Several Salesforce profiles have this name in different letter cases. Rename one of them, or spell the "
        "app role's value exactly as the intended profile.",
    ),
    (
        re.compile(r"^app role assignment .* which the application does not define", re.DOTALL),
        "UNKNOWN_APP_ROLE",
        "An assignment grants an app role that no longer exists",
        "The app role was removed from the application or has no value. Assign the user or group one of the "
        "application's current app roles in Entra ID. " + _ENTRA_FIX,
    ),
    (
        re.compile(r"\(duplicate Username\)$|^Username .* is also the Username of Entra user", re.DOTALL),
        "DUPLICATE_USERNAME",
        "The Username is already taken",
        "Held back before sending: Salesforce would refuse the create with DUPLICATE_USERNAME. Either two Entra "
        "users map to one Username, or a Salesforce user not linked to this Entra user already has it. Change "
        "the userPrincipalName in Entra ID, or rename (or link) the Salesforce user. " + _ENTRA_FIX,
    ),
    (
        re.compile(r"^linked to Salesforce user \S+, which Entra user"),
        "LINK_CONFLICT",
        "Two Entra users are linked to one Salesforce user",
        "Decide which Entra user owns the Salesforce user; correct the other one's matching attribute "
        "(userPrincipalName) in Entra ID so it matches its own Salesforce user, or none.",
    ),
    (
        re.compile(r"^ambiguous match:"),
        "AMBIGUOUS_MATCH",
        "Several Salesforce users match one Entra user",
        "Several Salesforce users have the same matching value (the message lists their Ids). Rename or "
        "deactivate the duplicates in Salesforce so exactly one matches.",
    ),
    (
        re.compile(r"^Salesforce user \S+ .* matches \d+ Entra users", re.DOTALL),
        "CONTESTED_MATCH",
        "Several Entra users match one Salesforce user",
        "Only one may match: make the Entra users' matching attribute (userPrincipalName) distinct in Entra ID. "
        + _ENTRA_FIX,
    ),
    (
        re.compile(r"^no mapped values:"),
        "NO_MAPPED_VALUES",
        "The mapping produced nothing for the user",
        "This points at the mapping table or the engine rather than the user's data: keep the CSV and the run's "
        "logs and report it to whoever maintains the pipeline.",
    ),
)
_VALIDATION_REASON = re.compile(r"^(?P<label>.+?): (?P<text>.+) \((?P<kind>expect_[a-z0-9_]+)\)$", re.DOTALL)
_MAPPING_REASON = re.compile(r"^(?P<target>[A-Z][A-Za-z0-9_]*): (?P<message>.+)$", re.DOTALL)
_EXPECTATION_ADVICE = {
    "expect_column_values_to_not_be_null": "Fill in {label} for these users in Entra ID.",
    "expect_column_values_to_match_regex": "Correct {label} in Entra ID so it has the expected form ({text}).",
    "expect_column_values_to_not_match_regex": "Edit {label} in Entra ID: it {text}, which cannot be sent.",
    "expect_column_values_to_be_unique": (
        "Several users share one {label}; every one of them is held. Give each user its own value in Entra ID."
    ),
    "expect_column_value_lengths_to_be_between": "Shorten {label} in Entra ID: it is {text}.",
    "expect_column_values_to_be_between": "Correct {label} in Entra ID: it is {text}.",
}


@lru_cache(maxsize=1024)
def error_reason(code: str | None) -> Reason:
    """The reason for a record Salesforce (or the loader) refused with ``code`` (cached: a
    report of 100,000 failures has a handful of codes)."""
    code = _one_line(code) or "UNKNOWN_ERROR"
    known = ERROR_ADVICE.get(code)
    if known is not None:
        return Reason(code, code, *known)
    return Reason(
        code,
        code,
        f"Salesforce refused the record ({code})",
        f"Salesforce answered {code}; the message says why (search Salesforce's documentation for the code). "
        + _RETRIED,
    )


def classify_quarantine(reason: str) -> Reason:
    """The reason for one quarantine reason text (a user may carry several).

    Broken expectations (``"<attribute>: <description> (<expectation type>)"``, as validate.py
    words them) keep their text as the key, so each expectation is its own group; the engine's
    own rules get a code; expression errors of the mapping table group per target field; anything
    else is :data:`OTHER`."""
    text = _one_line(reason)
    match = _VALIDATION_REASON.match(text)
    if match is not None:
        label, description, kind = match.group("label", "text", "kind")
        advice = _EXPECTATION_ADVICE.get(kind, "Correct {label} in Entra ID ({text}).").format(
            label=label, text=description
        )
        return Reason(text, kind, f"{label}: {description}", f"{advice} {_ENTRA_FIX}")
    for pattern, code, title, advice in _QUARANTINE_RULES:
        if pattern.search(text):
            return Reason(code, code, title, advice)
    match = _MAPPING_REASON.match(text)
    if match is not None:
        target = match.group("target")
        return Reason(
            f"MAPPING:{target}",
            "MAPPING_EXPRESSION",
            f"The mapping table's expression for {target} failed",
            f"The expression for {target} in include/mappings/salesforce_user.yaml could not evaluate these users' "
            "values (each message says why). Correct the source values in Entra ID, or make the expression "
            f"handle them. {_ENTRA_FIX}",
        )
    return OTHER


@cache
def _suite_notes(path: Path) -> dict[str, str]:
    """Quarantine reason of each expectation in the suite → the suite's ``notes`` (why the rule exists).

    The reason is worded by validate.py itself, so the keys match quarantine reasons exactly. A
    missing or unreadable suite gives no notes (the report must not fail over an explanation)."""
    from include.provisioning import validate

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        notes: dict[str, str] = {}
        for entry in raw.get("expectations") or []:
            if isinstance(entry, dict) and entry.get("notes") and isinstance(entry.get("type"), str):
                columns = validate._columns_of(entry.get("kwargs") or {})
                notes[validate._describe(entry, columns)] = str(entry["notes"])
        return notes
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def suite_notes(path: Path | None = None) -> dict[str, str]:
    """:func:`_suite_notes` of ``path`` (default: the project's suite, settings.DEFAULT_SUITE_PATH)."""
    if path is None:
        from include.provisioning.settings import DEFAULT_SUITE_PATH

        path = DEFAULT_SUITE_PATH
    return _suite_notes(Path(path).resolve())


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One user in the report; the first ten fields are the CSV's columns, in order."""

    cycle_id: str
    action: str
    status: str
    entra_id: str
    user_principal_name: str | None
    display_name: str | None
    """Entra's displayName (None for a row logged before schema version 7)."""
    salesforce_id: str | None
    error_code: str | None
    message: str | None
    reason: str | None = None
    """The codes of the row's reasons joined with "; " (see :class:`Reason`): an error code, an
    expectation type, a rule of the engine; ``message`` says the rest (which attribute, what value)."""
    reasons: tuple[Reason, ...] = field(default=(), compare=False)
    """What the row is grouped under; not a CSV column."""

    def values(self) -> tuple[str | None, ...]:
        return (
            self.cycle_id,
            self.action,
            self.status,
            self.entra_id,
            self.user_principal_name,
            self.display_name,
            self.salesforce_id,
            self.error_code,
            self.message,
            self.reason,
        )


def record_kind(row: ReportRow) -> str:
    """One of :data:`ATTENTION_KINDS`."""
    if row.status == Status.FAILURE:
        return "failed"
    if row.status == Status.WARNING:
        return "not processed"
    if row.action == Action.QUARANTINE:
        return "quarantined"
    if row.action == Action.STAGED_DELETE:
        return "held back"
    return "other"


def _row(values: tuple[Any, ...], reasons: Sequence[Reason]) -> ReportRow:
    """A report row from its first nine CSV values and its reasons (each key once, in order);
    its ``reason`` column holds their codes (each once), not their keys: a broken expectation's
    key is its whole text, which the ``message`` column already holds."""
    unique = tuple({r.key: r for r in reasons}.values())
    return ReportRow(*values, "; ".join(dict.fromkeys(r.code for r in unique)), unique)


def report_rows(
    cycle_id: str,
    entries: Iterable[LogEntry],
    quarantined: Iterable[QuarantinedUser],
    held_back: Iterable[PlannedChange],
    *,
    held_back_reason: str | None = None,
) -> list[ReportRow]:
    """Failures first, then records Salesforce did not process, quarantined, held back; each user
    once (log entries win over the ``quarantined``/``held_back`` lists that repeat them)."""
    quarantined = list(quarantined)
    reasons_of = {user.entra_id: user.reasons for user in quarantined}
    classified: dict[str, Reason] = {}  # users share a handful of reason texts: classify each once

    def classify(texts: Iterable[str]) -> list[Reason]:
        out = []
        for text in texts:
            reason = classified.get(text)
            if reason is None:
                reason = classified[text] = classify_quarantine(text)
            out.append(reason)
        return out or [OTHER]

    logged = [entry for entry in entries if entry.status is not Status.SUCCESS]
    rank = {Status.FAILURE: 0, Status.WARNING: 1}
    groups: dict[int, list[ReportRow]] = {0: [], 1: [], 2: [], 3: [], 4: []}
    for entry in logged:
        group = rank.get(entry.status, {Action.QUARANTINE: 2, Action.STAGED_DELETE: 3}.get(entry.action, 4))
        if group == 2:
            texts = reasons_of.get(entry.entra_id)
            if texts is None:  # the log joins reasons with "; "; the list, when given, is exact
                texts = (entry.error_message or "").split("; ") if entry.error_message else []
            reasons = classify(texts)
        elif group == 3:
            reasons = [DELETION_THRESHOLD]
        elif group == 4 and not entry.error_code:
            reasons = [OTHER]
        else:
            reasons = [error_reason(entry.error_code)]
        groups[group].append(
            _row(
                (
                    entry.cycle_id,
                    str(entry.action),
                    str(entry.status),
                    entry.entra_id,
                    entry.user_principal_name,
                    entry.display_name,
                    entry.sf_id,
                    entry.error_code,
                    plain_message(entry.error_message),  # a row stored before the loader did it,
                ),
                reasons,
            )
        )
    seen = {(entry.action, entry.entra_id) for entry in logged}
    staged = [e.error_message for e in logged if e.action is Action.STAGED_DELETE and e.error_message]
    held_back_reason = held_back_reason or (staged[0] if staged else HELD_BACK_DEFAULT)
    for user in quarantined:
        if (Action.QUARANTINE, user.entra_id) not in seen:
            groups[2].append(
                _row(
                    (
                        cycle_id,
                        str(Action.QUARANTINE),
                        str(Status.SKIPPED),
                        user.entra_id,
                        user.user_principal_name,
                        user.display_name,
                        None,
                        None,
                        "; ".join(user.reasons),
                    ),
                    classify(user.reasons),
                )
            )
    for change in held_back:
        if (Action.STAGED_DELETE, change.entra_id) not in seen:
            groups[3].append(
                _row(
                    (
                        cycle_id,
                        str(Action.STAGED_DELETE),
                        str(Status.SKIPPED),
                        change.entra_id,
                        change.user_principal_name,
                        change.display_name,
                        change.sf_id,
                        None,
                        held_back_reason,
                    ),
                    [DELETION_THRESHOLD],
                )
            )
    return [row for group in sorted(groups) for row in groups[group]]


def _counts(rows: Sequence[ReportRow]) -> dict[str, int]:
    counts = dict.fromkeys(ATTENTION_KINDS, 0)
    for row in rows:
        counts[record_kind(row)] += 1
    return counts


@dataclass(frozen=True)
class ReasonGroup:
    """The records that share one reason (a record with several reasons is in each of its groups)."""

    reason: Reason
    count: int
    kinds: tuple[str, ...]
    """Which of :data:`ATTENTION_KINDS` the records are, in that order."""
    examples: tuple[ReportRow, ...]
    """The first :data:`EXAMPLES_PER_REASON` records."""
    why: str | None = None
    """Why the rule exists (the expectation suite's notes), when known."""


@dataclass(slots=True)
class _Tally:
    reason: Reason
    count: int = 0
    kinds: set[str] = field(default_factory=set)
    examples: list[ReportRow] = field(default_factory=list)


def group_by_reason(
    rows: Iterable[ReportRow], *, notes: Mapping[str, str] | None = None, examples: int = EXAMPLES_PER_REASON
) -> list[ReasonGroup]:
    """Groups in report order: by the most urgent kind among their records (failed first), then
    by size (:data:`OTHER` last), then by key. One pass, so 100,000 rows cost milliseconds.
    ``notes`` maps a reason's key to why its rule exists (:func:`suite_notes`)."""
    notes = notes or {}
    tallies: dict[str, _Tally] = {}
    for row in rows:
        kind = record_kind(row)
        for reason in row.reasons or (OTHER,):
            tally = tallies.get(reason.key)
            if tally is None:
                tally = tallies[reason.key] = _Tally(reason)
            tally.count += 1
            tally.kinds.add(kind)
            if len(tally.examples) < examples:
                tally.examples.append(row)
    order = {kind: i for i, kind in enumerate(ATTENTION_KINDS)}
    groups = [
        ReasonGroup(
            t.reason,
            t.count,
            tuple(sorted(t.kinds, key=order.__getitem__)),
            tuple(t.examples),
            notes.get(t.reason.key),
        )
        for t in tallies.values()
    ]
    groups.sort(key=lambda g: (order[g.kinds[0]], g.reason.key == OTHER.key, -g.count, g.reason.key))
    return groups


# -- CSV -------------------------------------------------------------------------------------


def neutralize(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: None → "", formula triggers get a leading ``'``."""
    if value is None:
        return ""
    text = str(value)
    if not text.isascii():  # a flag check: skips the regex for most cells of a large report
        text = _SURROGATES.sub("\ufffd", text)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def spreadsheet_csv(columns: Sequence[str], rows: Iterable[Iterable[object]]) -> bytes:
    """A CSV a person opens in a spreadsheet: a header of ``columns``, then every row (never
    truncated), every cell quoted and neutralised, RFC 4180 line ends (CRLF), UTF-8 with a
    byte-order mark (Excel reads a CSV without one in the machine's ANSI code page: "Zoë" would
    open as "ZoÃ«"; LibreOffice, pandas and Python's ``utf-8-sig`` read the mark and drop it)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([neutralize(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def csv_bytes(rows: Iterable[ReportRow]) -> bytes:
    """The report's CSV (:func:`spreadsheet_csv`), columns :data:`CSV_COLUMNS`."""
    return spreadsheet_csv(CSV_COLUMNS, (row.values() for row in rows))


def _attachment(csv_name: str, data: bytes, zip_above: int) -> tuple[str, bytes]:
    if len(data) <= zip_above:
        return csv_name, data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.writestr(csv_name, data)
    return csv_name.removesuffix(".csv") + ".zip", buffer.getvalue()


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleReport:
    """Everything the cycle's e-mail needs; built by :func:`cycle_report`.

    ``html`` and ``text`` are rendered from ``templates/cycle_report.{html,txt}.j2``;
    :meth:`with_run_url` renders them again with a link to the run."""

    summary: CycleSummary
    subject: str
    """One line, at most :data:`SUBJECT_MAX` characters."""
    counts: dict[str, int]
    """Records per kind (:data:`ATTENTION_KINDS`)."""
    groups: tuple[ReasonGroup, ...]
    """Every reason (the bodies show the first :data:`REASON_LIMIT`)."""
    first_rows: tuple[ReportRow, ...]
    """The first records, as many as either body lists one by one."""
    rows: int
    """Records in the report (= data rows of the CSV)."""
    csv_bytes: bytes
    """UTF-8 with a byte-order mark, one row per record, columns :data:`CSV_COLUMNS`."""
    csv_filename: str
    attachment_name: str
    """What to attach: ``csv_filename``, or a .zip holding it when the CSV is large."""
    attachment_bytes: bytes
    needs_attention: bool
    """False when nothing failed, was quarantined or held back and the cycle neither stopped nor
    failed: then no e-mail is sent."""
    dry_run: bool = False
    html_limit: int = HTML_ROW_LIMIT
    """Records the HTML body lists one by one (the text body lists :data:`TEXT_ROW_LIMIT`)."""
    run_url: str | None = None
    """Link to the run in the Airflow UI (http or https only)."""
    html: str = ""
    text: str = ""

    def with_run_url(self, run_url: str | None) -> CycleReport:
        """The same report whose bodies link to ``run_url`` (ignored unless http(s))."""
        report = dataclasses.replace(self, run_url=_safe_url(run_url))
        return dataclasses.replace(report, html=_render(report, "html"), text=_render(report, "txt"))


FailureReport = CycleReport
"""The former name (the CLI and the stages still use it)."""


def cycle_report(
    summary: CycleSummary,
    entries: Sequence[LogEntry] = (),
    quarantined: Sequence[QuarantinedUser] = (),
    held_back: Sequence[PlannedChange] = (),
    *,
    held_back_reason: str | None = None,
    run_url: str | None = None,
    dry_run: bool = False,
    suite_path: Path | None = None,
    html_limit: int = HTML_ROW_LIMIT,
    zip_above: int = ZIP_ABOVE_BYTES,
) -> CycleReport:
    """The report of one cycle, whether or not it needs attention (see ``needs_attention``).

    ``entries`` may be the whole cycle's provisioning log (only rows that are not a success are
    reported); users also listed in ``quarantined`` or ``held_back`` are reported once, and the
    ``quarantined`` list gives their reasons exactly (the log joins them). A failed cycle may
    pass no records at all: its summary's ``reason`` is the news. ``suite_path`` is the
    expectation suite whose notes explain broken expectations (default: the project's)."""
    rows = report_rows(summary.cycle_id, entries, quarantined, held_back, held_back_reason=held_back_reason)
    counts = _counts(rows)
    stopped = summary.status is CycleStatus.STOPPED and not dry_run
    needs_attention = bool(rows) or summary.status is CycleStatus.FAILED or stopped
    csv_name = f"provisioning-{_safe_name(summary.cycle_id)}.csv"
    data = csv_bytes(rows)
    attachment_name, attachment = _attachment(csv_name, data, zip_above)
    groups = group_by_reason(rows, notes=suite_notes(suite_path) if counts["quarantined"] else None)
    report = CycleReport(
        summary=summary,
        subject=_subject(summary, counts, dry_run=dry_run),
        counts=counts,
        groups=tuple(groups),
        first_rows=tuple(rows[: max(html_limit, TEXT_ROW_LIMIT)]),
        html_limit=max(html_limit, 0),
        rows=len(rows),
        csv_bytes=data,
        csv_filename=csv_name,
        attachment_name=attachment_name,
        attachment_bytes=attachment,
        needs_attention=needs_attention,
        dry_run=dry_run,
    )
    return report.with_run_url(run_url)


def failure_report(
    summary: CycleSummary,
    entries: Sequence[LogEntry],
    quarantined: Sequence[QuarantinedUser],
    held_back: Sequence[PlannedChange],
    *,
    held_back_reason: str | None = None,
    html_limit: int = HTML_ROW_LIMIT,
    dry_run: bool = False,
) -> CycleReport | None:
    """:func:`cycle_report`, or None when the cycle needs no attention (nothing to write or send).
    Pass ``dry_run`` for a dry run: its stop is not news, only its records are."""
    report = cycle_report(
        summary,
        entries,
        quarantined,
        held_back,
        held_back_reason=held_back_reason,
        html_limit=html_limit,
        dry_run=dry_run,
    )
    return report if report.needs_attention else None


def _subject(summary: CycleSummary, counts: Mapping[str, int], *, dry_run: bool) -> str:
    """``Entra to Salesforce provisioning, cycle <id>[ stopped|failed]: 3 failed, 2 quarantined``."""
    status = ""
    if summary.status is CycleStatus.FAILED:
        status = " failed"
    elif summary.status is CycleStatus.STOPPED:
        status = " (dry run)" if dry_run else " stopped"
    parts = [f"{count:,} {label}" for label, count in counts.items() if count]
    if summary.status is CycleStatus.FAILED and summary.reason:
        parts.insert(0, summary.reason)
    subject = _one_line(f"{SUBJECT_PREFIX}, cycle {summary.cycle_id}{status}: " + ", ".join(parts)).rstrip(": ")
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1].rstrip() + "…"


# -- rendering -------------------------------------------------------------------------------


def _one_line(value: object) -> str:
    """Free text on one line (no forged extra lines in a text body or a mail header)."""
    if value is None:
        return ""
    text = _SURROGATES.sub("\ufffd", str(value))
    return _CONTROL.sub("\ufffd", _LINE_BREAKS.sub(" ", text)).strip()


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value) or "cycle"


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links reach the bodies (a ``javascript:`` href would be escaped but live)."""
    if not url:
        return None
    url = _one_line(url)
    return url if urlsplit(url).scheme in ("http", "https") else None


def _paragraph(value: object, indent: int = 0, width: int = 78) -> str:
    """One flattened paragraph wrapped for the text body (Jinja filter ``para``)."""
    pad = " " * indent
    return textwrap.fill(
        _one_line(value), width=width, initial_indent=pad, subsequent_indent=pad, break_long_words=False
    )


@cache
def _environment() -> Any:
    """One Jinja environment for both templates; HTML autoescaped, text not (it is flattened)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True, default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["n"] = lambda value: f"{value:,}"
    env.filters["line"] = _one_line
    env.filters["para"] = _paragraph
    return env


def _clip(value: object, limit: int = VALUE_LIMIT) -> str:
    text = _one_line(value)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _record(row: ReportRow) -> dict[str, str]:
    """One record as the templates show it: every value on one line and clipped; ``who`` is
    :func:`~include.provisioning.model.user_label` of the clipped values."""
    upn, entra_id = _clip(row.user_principal_name), _clip(row.entra_id)
    return {
        "who": user_label(_clip(row.display_name), upn, entra_id),
        "upn": upn,
        "entra_id": entra_id,
        "salesforce_id": _clip(row.salesforce_id),
        "action": _clip(row.action),
        "status": _clip(row.status),
        "kind": record_kind(row),
        "code": _clip(row.error_code),
        "reason": _clip("; ".join(r.code for r in row.reasons)),
        "message": _clip(row.message),
    }


_STATUS_NOTES = {
    CycleStatus.STOPPED: (
        "The cycle stopped before writing anything to Salesforce. Fix the data behind the biggest reasons below "
        "(or, if the share of bad records is expected, raise the Variable provisioning_max_quarantine_share), "
        "then the next run proceeds."
    ),
    CycleStatus.FAILED: (
        "The cycle failed; the state store was not advanced, so the next run starts from the same point. The "
        "Airflow task log has the traceback: fix the cause (a connection, a permission, the mapping table) and "
        "clear the failed task."
    ),
}


def _render(report: CycleReport, kind: str) -> str:
    summary = report.summary
    groups = report.groups[:REASON_LIMIT]
    limit = report.html_limit if kind == "html" else TEXT_ROW_LIMIT
    context = {
        "subject": report.subject,
        "cycle_id": _clip(summary.cycle_id),
        "mode": _one_line(summary.mode),
        "status": _one_line(summary.status),
        "started": _when(summary.started_at),
        "finished": _when(summary.finished_at),
        "reason": _clip(summary.reason, 4 * VALUE_LIMIT),
        "status_note": "" if report.dry_run else _STATUS_NOTES.get(summary.status, ""),
        "dry_run": report.dry_run,
        "run_url": report.run_url,
        "counts": [(label, report.counts[label]) for label in ATTENTION_KINDS if report.counts[label]],
        "outcomes": outcome_rows(summary),
        "in_scope": summary.in_scope,
        "total_label": total_label(summary, planned=planned_dry_run(summary, dry_run=report.dry_run)),
        "equation": _equation(summary),
        "groups": [
            {
                "code": _clip(g.reason.code),
                "title": _clip(g.reason.title),
                "advice": g.reason.advice,
                "why": _one_line(g.why),
                "count": g.count,
                "kinds": ", ".join(g.kinds),
                "examples": [_record(row) for row in g.examples],
            }
            for g in groups
        ],
        "more_groups": len(report.groups) - len(groups),
        "records": [_record(row) for row in report.first_rows[:limit]],
        "total": report.rows,
        "attachment": report.attachment_name,
        "zipped": report.attachment_name != report.csv_filename,
        "summary_text": format_summary(summary, dry_run=report.dry_run),
    }
    return _environment().get_template(f"cycle_report.{kind}.j2").render(context)


def quarantine_notice(quarantine: Any, *, run_url: str | None = None) -> tuple[str, str, str]:
    """``(subject, html, text)`` of the one e-mail that says the job was quarantined and why
    (Entra sends one, and another when the reason changes). ``quarantine`` is a
    ``state.job_quarantine.JobQuarantine``."""
    from html import escape

    until = f"{quarantine.next_attempt_at:%Y-%m-%d %H:%M} UTC" if quarantine.next_attempt_at else "further notice"
    subject = _one_line(f"{SUBJECT_PREFIX}: quarantined ({quarantine.reason_code})")
    advice = (
        "Scheduled and backfill runs are skipped until then (they show as skipped, with this reason). "
        "Fix the cause (credentials of the connection, licences, the data the failures name in the last "
        "cycle's report), then trigger a run with the param reset_quarantine (or restart_provisioning). "
        "A cycle that succeeds lifts the quarantine."
    )
    lines = [
        "The Entra ID to Salesforce provisioning job is quarantined.",
        f"Why: {quarantine.reason} ({quarantine.reason_code})",
        f"Automatic runs wait until: {until}",
        advice,
    ]
    if run_url:
        lines.append(f"The run: {_safe_url(run_url) or ''}")
    text = "\n\n".join(lines)
    link = f'<p><a href="{escape(_safe_url(run_url) or "")}">Open the run in Airflow</a></p>' if run_url else ""
    html = (
        '<!DOCTYPE html><html><body style="font-family:Segoe UI,Helvetica,Arial,sans-serif">'
        f'<h2 style="color:#b42318">Provisioning quarantined</h2><p><strong>{escape(quarantine.reason or "")}'
        f"</strong> ({escape(quarantine.reason_code or '')})</p><p>Automatic runs wait until {escape(until)}.</p>"
        f"<p>{escape(advice)}</p>{link}</body></html>"
    )
    return subject, html, text
