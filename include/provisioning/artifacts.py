"""Codecs for the stage outputs that are not plain frames: the plan, Salesforce's results and
quarantined users, as DataFrames (Parquet in a file workspace) and back.

Field values (old/new of each change, desired values) are stored as JSON text with the state
store's encoder, which already turns numpy scalars, NaN and timestamps into plain JSON; a clear
(``FieldChange(old, None)``) is JSON null, exactly as the state store's log keeps it, and comes
back as None: the loader sends it as Bulk's ``#N/A``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pandas as pd

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import Action, Plan, PlannedChange, QuarantinedUser, RecordResult
from include.provisioning.state.codec import changes_from_json, changes_json, dumps

PLAN_GROUPS = ("creates", "updates", "deactivations", "reactivations", "held_back", "unchanged")
PLAN_COLUMNS = ["group", "entra_id", "upn", "action", "sf_id", "match_value", "changes", "desired", "roles"]
RESULT_COLUMNS = [
    "entra_id",
    "action",
    "sf_id",
    "ok",
    "error_code",
    "error_message",
    "unprocessed",
    "created",
]


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


class PlanCodec:
    """``Plan`` ↔ one row per planned change (``group`` names the plan's list); the held-back
    reason and the diff's quarantined users ride in the frame's ``attrs`` (Parquet metadata)."""

    def encode(self, plan: Plan) -> pd.DataFrame:
        rows: list[tuple[Any, ...]] = []
        for group in PLAN_GROUPS:
            for change in getattr(plan, group):
                what = f"planned change of {change.entra_id}"
                rows.append(
                    (
                        group,
                        change.entra_id,
                        change.user_principal_name,
                        change.action.value,
                        change.sf_id,
                        change.match_value,
                        changes_json(change.changes, what=what),
                        dumps(change.desired, what=what),
                        dumps(list(change.roles), what=what),
                    )
                )
        frame = pd.DataFrame(rows, columns=PLAN_COLUMNS, dtype=object)
        frame.attrs["meta"] = {
            "held_back_reason": plan.held_back_reason,
            "quarantined": [_quarantined_dict(q) for q in plan.quarantined],
        }
        return frame

    def decode(self, frame: pd.DataFrame) -> Plan:
        meta = frame.attrs.get("meta", {})
        plan = Plan(
            held_back_reason=meta.get("held_back_reason"),
            quarantined=[_quarantined_from(d) for d in meta.get("quarantined", [])],
        )
        columns = [frame[c].tolist() for c in PLAN_COLUMNS]  # plain lists: far faster to iterate
        with collector_paused():
            self._fill(plan, columns)
        return plan

    @staticmethod
    def _fill(plan: Plan, columns: list[list[Any]]) -> None:
        for group, entra_id, upn, action, sf_id, match_value, changes, desired, roles in zip(*columns, strict=True):
            getattr(plan, group).append(
                PlannedChange(
                    entra_id=entra_id,
                    user_principal_name=_text(upn),
                    action=Action(action),
                    sf_id=_text(sf_id),
                    changes=changes_from_json(changes),
                    match_value=_text(match_value),
                    desired=orjson.loads(desired),
                    roles=orjson.loads(roles),
                )
            )


class ResultsCodec:
    """``list[RecordResult]`` ↔ one row per Salesforce result."""

    def encode(self, results: list[RecordResult]) -> pd.DataFrame:
        rows = [
            (r.entra_id, r.action.value, r.sf_id, r.ok, r.error_code, r.error_message, r.unprocessed, r.created)
            for r in results
        ]
        frame = pd.DataFrame(rows, columns=RESULT_COLUMNS, dtype=object)
        return frame.astype({"ok": bool, "unprocessed": bool, "created": bool}) if len(frame) else frame

    def decode(self, frame: pd.DataFrame) -> list[RecordResult]:
        columns = [frame[c].tolist() for c in RESULT_COLUMNS]
        with collector_paused():
            return self._build(columns)

    @staticmethod
    def _build(columns: list[list[Any]]) -> list[RecordResult]:
        return [
            RecordResult(
                entra_id,
                Action(action),
                _text(sf_id),
                bool(ok),
                _text(code),
                _text(message),
                bool(unprocessed),
                bool(created),
            )
            for entra_id, action, sf_id, ok, code, message, unprocessed, created in zip(*columns, strict=True)
        ]


class QuarantineCodec:
    """``list[QuarantinedUser]`` ↔ rows of (entra_id, upn, reasons as JSON)."""

    def encode(self, users: list[QuarantinedUser]) -> pd.DataFrame:
        rows = [(q.entra_id, q.user_principal_name, orjson.dumps(q.reasons).decode()) for q in users]
        return pd.DataFrame(rows, columns=["entra_id", "upn", "reasons"], dtype=object)

    def decode(self, frame: pd.DataFrame) -> list[QuarantinedUser]:
        return [
            QuarantinedUser(entra_id, _text(upn), orjson.loads(reasons))
            for entra_id, upn, reasons in zip(frame["entra_id"], frame["upn"], frame["reasons"], strict=True)
        ]


def _quarantined_dict(user: QuarantinedUser) -> dict[str, Any]:
    return {"entra_id": user.entra_id, "upn": user.user_principal_name, "reasons": list(user.reasons)}


def _quarantined_from(data: dict[str, Any]) -> QuarantinedUser:
    return QuarantinedUser(data["entra_id"], data.get("upn"), list(data.get("reasons", [])))


PLAN = PlanCodec()
RESULTS = ResultsCodec()
QUARANTINE = QuarantineCodec()
