"""Provision one user now, showing each step (Entra's "provision on demand").

It is an ordinary cycle focused on one user (``run_cycle(focus_upn=...)``), so on-demand and
scheduled provisioning cannot disagree: the same scope rules, validation, mapping, matching
and load, and the result lands in the same provisioning log. The steps mirror Entra's:
connection test, import, scope, match, action.

The focused cycle reads that user only, never the tenant (``graph.extract._OneUserRead``: the
user, their own app role assignments and their groups' assignments to the app; the Salesforce
users linked to them or holding their match keys; their own rows of the state store), so it
takes seconds however large the tenant is.

A real user who is not assigned to the app (and not managed by this product) is "nothing to do";
a name Entra ID does not know is an error: the extract raises ``UnknownUserError`` (a
configuration error: the DAG's task fails without retries), which the command line reports as
``OnDemandOutcome.unknown_user`` (exit 2), as Entra only offers users of the directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.errors import UnknownUserError
from include.provisioning.model import Action, PlannedChange, user_label
from include.provisioning.plan_preview import describe_changes


@dataclass
class Step:
    name: str
    status: str
    """"ok", "skipped" or "failed"."""
    detail: str


@dataclass
class OnDemandOutcome:
    upn: str
    steps: list[Step] = field(default_factory=list)
    result: CycleResult | None = None
    unknown_user: bool = False
    """Entra ID has no user with this userPrincipalName (a typo, or a deleted user)."""

    @property
    def ok(self) -> bool:
        return all(step.status != "failed" for step in self.steps)


def _planned(result: CycleResult) -> tuple[str, PlannedChange] | None:
    plan = result.plan
    for label, changes in (
        ("create", plan.creates),
        ("update", plan.updates),
        ("reactivate", plan.reactivations),
        ("deactivate", plan.deactivations),
        ("hold back", plan.held_back),
        ("none", plan.unchanged),
    ):
        if changes:
            return label, changes[0]
    return None


def _text(value: Any) -> str | None:
    """A USERS frame cell as text, None when missing (pandas may hold a missing value as NaN)."""
    return None if value is None or pd.isna(value) else str(value)


def provision_user(engine: Engine, upn: str, *, dry_run: bool = False, force: bool = False) -> OnDemandOutcome:
    """Run a cycle focused on ``upn`` and describe it as Entra's steps; never raises (a failure
    is the "connection test" step's). ``force`` is passed to ``run_cycle`` (the caller holds the
    writer lease)."""
    outcome = OnDemandOutcome(upn)
    try:
        result = run_cycle(engine, dry_run=dry_run, focus_upn=upn, force=force)
    except UnknownUserError as exc:
        outcome.unknown_user = True
        outcome.steps.append(Step("connection test", "ok", "Graph and Salesforce answered"))
        outcome.steps.append(Step("import", "failed", str(exc)))
        return outcome
    except Exception as exc:
        outcome.steps.append(Step("connection test", "failed", f"{type(exc).__name__}: {exc}"))
        return outcome
    return describe(upn, result, dry_run=dry_run)


def describe(upn: str, result: CycleResult, *, dry_run: bool = False) -> OnDemandOutcome:
    """Entra's steps (connection test, import, scope, validate, match, action) of a cycle that was
    focused on ``upn``: the CLI prints them, the DAG's commit task logs them and returns them."""
    outcome = OnDemandOutcome(upn)
    outcome.result = result
    outcome.steps.append(Step("connection test", "ok", "Graph and Salesforce answered"))
    users = result.users if result.users is not None else pd.DataFrame()
    if users.empty and result.quarantined:  # read, but their app roles cannot be resolved
        entry = result.quarantined[0]
        who = user_label(entry.display_name, entry.user_principal_name, entry.entra_id)
        outcome.steps.append(Step("import", "ok", f"Entra user {who}, object id {entry.entra_id}"))
        outcome.steps.append(Step("validate", "failed", "; ".join(entry.reasons)))
        return outcome
    if users.empty:
        outcome.steps.append(
            Step(
                "import",
                "skipped",
                f"{upn} is not assigned to the app (directly or through a group) "
                "and was never provisioned by this product; nothing to do",
            )
        )
        return outcome
    row = users.iloc[0]
    roles = ", ".join(row["appRoleAssignments"]) or "none"
    who = user_label(_text(row.get("displayName")), _text(row.get("userPrincipalName")), str(row["id"]))
    via = row["assignedVia"] or "-"
    outcome.steps.append(Step("import", "ok", f"Entra user {who}, object id {row['id']}; roles: {roles}; via {via}"))
    if bool(row["IsSoftDeleted"]):
        outcome.steps.append(
            Step("scope", "ok", f"out of scope ({row['scopeReason']}): the Salesforce user is disabled")
        )
    else:
        outcome.steps.append(Step("scope", "ok", "in scope"))
    for entry in result.quarantined:
        outcome.steps.append(Step("validate", "failed", "; ".join(entry.reasons)))
        return outcome
    planned = _planned(result)
    if planned is None:
        outcome.steps.append(Step("match", "skipped", "no Salesforce action was planned"))
        return outcome
    label, change = planned
    matched = f"Salesforce user {change.sf_id} (matched on {change.match_value})" if change.sf_id else "no match"
    outcome.steps.append(Step("match", "ok", matched))
    fields = describe_changes(change, result.profile_names) or "no field changes"
    if dry_run:
        # An up-to-date user plans Action.OTHER, whose label is "none": "would none" read as a typo.
        planned_text = "no action" if change.action is Action.OTHER else f"would {label}"
        outcome.steps.append(Step("action", "skipped", f"{planned_text}: {fields} (dry run)"))
        return outcome
    if change.action in (Action.OTHER, Action.STAGED_DELETE):
        reason = result.plan.held_back_reason if change.action is Action.STAGED_DELETE else "already up to date"
        outcome.steps.append(Step("action", "skipped", f"{label}: {reason}"))
        return outcome
    record = next((r for r in result.results if r.entra_id == change.entra_id), None)
    if record is not None and record.ok:
        outcome.steps.append(Step("action", "ok", f"{label} succeeded ({record.sf_id}): {fields}"))
    else:
        error = f"{record.error_code}: {record.error_message}" if record else "no result from Salesforce"
        outcome.steps.append(Step("action", "failed", f"{label} failed: {error}; retried in later cycles"))
    return outcome
