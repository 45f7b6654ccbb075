"""Provision one user now, showing each step (Entra's "provision on demand").

It is an ordinary cycle focused on one user (``run_cycle(focus_upn=...)``), so on-demand and
scheduled provisioning cannot disagree: the same scope rules, validation, mapping, matching
and load, and the result lands in the same provisioning log. The steps mirror Entra's:
connection test, import, scope, match, action.

A user the cycle did not find is looked up in Entra ID (``GET /users/{upn}``): a real user who is
not assigned to the app is "nothing to do"; a name Entra ID does not know is an error
(``OnDemandOutcome.unknown_user``), as Entra only offers users of the directory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import quote

import pandas as pd

from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.graph.client import GraphClient
from include.provisioning.model import Action, PlannedChange


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


def provision_user(engine: Engine, upn: str, *, dry_run: bool = False, force: bool = False) -> OnDemandOutcome:
    """Run a cycle focused on ``upn`` and describe it as Entra's steps; never raises (a failure
    is the "connection test" step's). ``force`` is passed to ``run_cycle`` (the caller holds the
    writer lease)."""
    outcome = OnDemandOutcome(upn)
    try:
        result = run_cycle(engine, dry_run=dry_run, focus_upn=upn, force=force)
        found = result.users is not None and not result.users.empty
        in_entra = found or asyncio.run(entra_has_user(engine, upn))
    except Exception as exc:
        outcome.steps.append(Step("connection test", "failed", f"{type(exc).__name__}: {exc}"))
        return outcome
    if not in_entra:
        outcome.result = result
        outcome.unknown_user = True
        outcome.steps.append(Step("connection test", "ok", "Graph and Salesforce answered"))
        outcome.steps.append(
            Step("import", "failed", f"Entra ID has no user {upn} (Graph: 404 for GET /users/{{upn}}); check the name")
        )
        return outcome
    return describe(upn, result, dry_run=dry_run)


async def entra_has_user(engine: Engine, upn: str) -> bool:
    """Whether Entra ID has a user with this userPrincipalName: ``GET /users/{upn}`` answers 404
    ``Request_ResourceNotFound`` when it has none (deleted users included)."""
    async with GraphClient(engine.graph) as client:
        url = f"/users/{quote(upn, safe='@')}?$select=id"
        reply = await client.request("GET", url, kind="user")
        if reply.status == 404:
            return False
        if not reply.ok:
            raise client.request_error("user", client.absolute(url), reply)
        return True


def describe(upn: str, result: CycleResult, *, dry_run: bool = False) -> OnDemandOutcome:
    """Entra's steps (connection test, import, scope, validate, match, action) of a cycle that was
    focused on ``upn``: the CLI prints them, the DAG's commit task logs them and returns them."""
    outcome = OnDemandOutcome(upn)
    outcome.result = result
    outcome.steps.append(Step("connection test", "ok", "Graph and Salesforce answered"))
    users = result.users if result.users is not None else pd.DataFrame()
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
    outcome.steps.append(
        Step("import", "ok", f"Entra user {row['id']}; roles: {roles}; via {row['assignedVia'] or '-'}")
    )
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
    fields = ", ".join(f"{k}: {v.old!r} -> {v.new!r}" for k, v in change.changes.items()) or "no field changes"
    if dry_run:
        outcome.steps.append(Step("action", "skipped", f"would {label}: {fields} (dry run)"))
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
