"""The steps of one provisioning-log row, as Entra's provisioning log shows them.

Entra's log details list four steps for each user: import from the source, the scope decision,
matching to a target user, and the action on the target ("Provisioning logs in Microsoft Entra
ID": https://learn.microsoft.com/en-us/entra/identity/monitoring-health/concept-provisioning-logs,
"Steps" tab). They are derived here from what the row records (its action, status, Salesforce id
and error), so the page and the JSON API show the same thing.
"""

from __future__ import annotations

from typing import Any

from include.provisioning.model import Action, Status, user_label

STEP_NAMES = ("import", "scope", "match", "action")

_ACTION_TEXT = {
    Action.CREATE.value: "Create the Salesforce user",
    Action.UPDATE.value: "Update the Salesforce user",
    Action.DISABLE.value: "Deactivate the Salesforce user (IsActive = false)",
    Action.REACTIVATE.value: "Reactivate the Salesforce user (IsActive = true)",
}


def _step(name: str, status: str, detail: str) -> dict[str, str]:
    return {"name": name, "status": status, "detail": detail}


def steps(row: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"name", "status", "detail"}]`` for the steps ``STEP_NAMES`` of a ``log_query.full_row``.

    ``status`` is the log's vocabulary (Success, Failure, Skipped, Warning). A quarantined user
    stops at scope; a held-back deactivation stops at its action, waiting for approval; a
    Salesforce failure names Salesforce's error code and message."""
    who = user_label(row.get("display_name"), row.get("user_principal_name"), row["entra_id"])
    action, sf_id = row["action"], row.get("sf_id")
    found = [_step("import", Status.SUCCESS.value, f"Read user {who}, object id {row['entra_id']}, from Entra ID")]
    if action == Action.QUARANTINE.value:
        reasons = row.get("error_message") or "no reason recorded"
        found.append(_step("scope", Status.SKIPPED.value, f"Held out of the cycle (quarantined): {reasons}"))
        found.append(_step("match", Status.SKIPPED.value, "Not evaluated: the user was quarantined"))
        found.append(_step("action", Status.SKIPPED.value, "No change sent to Salesforce"))
        return found
    found.append(_step("scope", Status.SUCCESS.value, "Evaluated against the app's assignments and scoping filters"))
    if action == Action.CREATE.value:
        created = f" (now {sf_id})" if sf_id else ""
        found.append(_step("match", Status.SUCCESS.value, f"No Salesforce user matched: one is created{created}"))
    elif sf_id:
        found.append(_step("match", Status.SUCCESS.value, f"Matched Salesforce user {sf_id}"))
    else:
        found.append(_step("match", Status.WARNING.value, "No Salesforce user id recorded"))
    found.append(_action_step(row))
    return found


def _action_step(row: dict[str, Any]) -> dict[str, str]:
    action, status = row["action"], row["status"]
    if action == Action.STAGED_DELETE.value:
        detail = "Deactivation held back by the accidental-deletion threshold; approve it to apply"
        return _step("action", Status.SKIPPED.value, row.get("error_message") or detail)
    text = _ACTION_TEXT.get(action, action)
    if status == Status.FAILURE.value:
        code = row.get("error_code") or "no error code"
        message = row.get("error_message") or "no message"
        return _step("action", status, f"{text}: Salesforce answered {code}: {message}")
    if status == Status.SUCCESS.value:
        changed = len(row.get("changes") or [])
        return _step("action", status, f"{text}: done ({changed} properties changed)")
    return _step("action", status, f"{text}: {row.get('error_message') or status}")
