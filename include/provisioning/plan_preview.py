"""What a dry run shows: a short table of the plan, and the whole plan as a CSV a person can open.

One line of sixteen fields per user is unreadable at 100,000 users, so the terminal (or task log)
gets the counts (the summary) and the first :data:`TABLE_LIMIT` planned actions, in the order the
load would send them (``stages.WRITE_ORDER``: deactivations, creates, updates and reactivations),
then the held-back deactivations and the quarantined users, each group by UPN, with a
"… and N more" line; the CSV holds every planned action, one row each. A user is named as the
cycle report names one, "Display name (UPN)" (``model.user_label``); the CSV has the display name
in its own column next to the UPN.

The CSV is the failure report's dialect (``report.spreadsheet_csv``): every cell quoted and
neutralised against spreadsheet formula injection (a cell starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return gets a leading apostrophe), CRLF line ends (RFC 4180), and UTF-8
with a byte-order mark, so Excel does not read "Zoë Müller" in the ANSI code page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from wcwidth import wcswidth

from include.provisioning.model import Action, Plan, PlannedChange, QuarantinedUser, user_label
from include.provisioning.report import HELD_BACK_DEFAULT, spreadsheet_csv

TABLE_LIMIT = 20
"""Planned actions the table lists one by one (the CSV has them all)."""
USER_LIMIT = 60
"""Characters of a UPN in the table (the CSV has every value whole)."""
NAME_LIMIT = 40
"""Characters of a display name in the table."""
WHAT_LIMIT = 100
"""Characters of the changes (or the reason) in the table."""
CSV_COLUMNS = ("action", "user_principal_name", "display_name", "entra_id", "salesforce_id", "changes", "reason")
ARROW = "→"


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One planned action; the fields are the CSV's columns, in order."""

    action: str
    user_principal_name: str | None
    display_name: str | None
    """Entra's displayName, as the plan has it."""
    entra_id: str
    salesforce_id: str | None
    changes: str
    """``Field: old → new`` for each field sent, joined with "; " (empty when nothing is sent)."""
    reason: str | None = None
    """Why a deactivation is held back, or why a user is quarantined."""


PROFILE_ID = "ProfileId"


def _value(value: object, field: str, profile_names: Mapping[str, str]) -> str:
    if value is None or value == "":
        return "(empty)"
    name = profile_names.get(str(value)) if field == PROFILE_ID else None
    return f"{value} ({name})" if name else str(value)


def describe_changes(change: PlannedChange, profile_names: Mapping[str, str] | None = None) -> str:
    """``LastName: Smith → Jones; Title: (empty) → Manager`` for each field sent, in the mapping's
    order; a create has no old values, so it reads ``Username: a@b.example; LastName: Jones``.
    ``profile_names`` (Profile Id → Name, ``CycleResult.profile_names``) names each ProfileId:
    ``ProfileId: 00e5r000000AbCdAAK (Standard User)``. The one rendering of planned changes: the
    dry run's table and CSV, and provision on demand's action step (CLI and task log)."""
    names = profile_names or {}
    if change.action is Action.CREATE:
        return "; ".join(f"{field}: {_value(c.new, field, names)}" for field, c in change.changes.items())
    return "; ".join(
        f"{field}: {_value(c.old, field, names)} {ARROW} {_value(c.new, field, names)}"
        for field, c in change.changes.items()
    )


def _by_upn(change: PlannedChange) -> tuple[str, str]:
    return ((change.user_principal_name or "").lower(), change.entra_id)


def plan_rows(
    plan: Plan, quarantined: Iterable[QuarantinedUser] = (), *, profile_names: Mapping[str, str] | None = None
) -> list[PlanRow]:
    """Every planned action: writes in the load's order, then held back, then quarantined; each
    group sorted by UPN. Unchanged users are not actions and are left out. ``profile_names``: see
    :func:`describe_changes`."""
    writes: list[tuple[str, list[PlannedChange]]] = [
        ("deactivate", plan.deactivations),
        ("create", plan.creates),
        ("update", plan.updates),
        ("reactivate", plan.reactivations),
    ]
    rows = [
        PlanRow(label, c.user_principal_name, c.display_name, c.entra_id, c.sf_id, describe_changes(c, profile_names))
        for label, changes in writes
        for c in sorted(changes, key=_by_upn)
    ]
    held_back_reason = plan.held_back_reason or HELD_BACK_DEFAULT
    rows += [
        PlanRow(
            "held back",
            c.user_principal_name,
            c.display_name,
            c.entra_id,
            c.sf_id,
            describe_changes(c, profile_names),
            held_back_reason,
        )
        for c in sorted(plan.held_back, key=_by_upn)
    ]
    everyone = [*plan.quarantined, *quarantined]
    unique = {q.entra_id: q for q in everyone}.values()
    rows += [
        PlanRow(
            str(Action.QUARANTINE).lower(),
            q.user_principal_name,
            q.display_name,
            q.entra_id,
            None,
            "",
            "; ".join(q.reasons),
        )
        for q in sorted(unique, key=lambda q: ((q.user_principal_name or "").lower(), q.entra_id))
    ]
    return rows


def _columns(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters (鈴木) take two, combining
    marks none (``wcwidth``, after Unicode's East Asian Width and the terminals that follow it);
    ``len`` for text holding a control character, which has no width."""
    width = wcswidth(text)
    return len(text) if width < 0 else width


def _pad(text: str, columns: int) -> str:
    return text + " " * max(columns - _columns(text), 0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_lines(rows: Sequence[PlanRow], limit: int = TABLE_LIMIT) -> list[str]:
    """The first ``limit`` rows as an aligned table (action, user as ``model.user_label`` names one,
    changes or reason), then "… and N more" when the plan has more; "(no changes planned)" for an
    empty plan."""
    if not rows:
        return ["(no changes planned)"]
    cells = [
        (
            r.action,
            user_label(
                r.display_name and _clip(r.display_name, NAME_LIMIT),
                r.user_principal_name and _clip(r.user_principal_name, USER_LIMIT),
                r.entra_id,
            ),
            _clip(r.changes or r.reason or "", WHAT_LIMIT),
        )
        for r in rows[:limit]
    ]
    header = ("action", "user", "changes")
    action_width = max(len(header[0]), *(len(c[0]) for c in cells))
    user_width = max(len(header[1]), *(_columns(c[1]) for c in cells))
    lines = [
        f"{action:<{action_width}}  {_pad(user, user_width)}  {what}".rstrip()
        for action, user, what in [header, ("-" * action_width, "-" * user_width, "-" * len(header[2])), *cells]
    ]
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit:,} more (every planned action is in the CSV)")
    return lines


def csv_bytes(rows: Iterable[PlanRow]) -> bytes:
    """Every row, columns :data:`CSV_COLUMNS`, in the report's spreadsheet dialect."""
    return spreadsheet_csv(CSV_COLUMNS, ((getattr(row, name) for name in CSV_COLUMNS) for row in rows))
