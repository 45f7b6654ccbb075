"""Codecs for the stage outputs that are not plain frames: the plan, Salesforce's results and
quarantined users, as DataFrames (Parquet in a file workspace) and back.

Field values (old/new of each change, desired values) are stored as JSON text with the state
store's encoder, which already turns numpy scalars, NaN and timestamps into plain JSON; Bulk's
``#N/A`` stays the string it is, exactly as the state store's log keeps it.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pandas as pd

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import Action, Plan, PlannedChange, QuarantinedUser, RecordResult
from include.provisioning.state.codec import ChangesDecoder, changes_json, dumps, json_bytes

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


def _texts(values: pd.Series) -> list[str | None]:
    """``_text`` of every value; a string column (what Parquet gives back) in one step."""
    if isinstance(values.dtype, pd.StringDtype):  # only text and missing values
        return values.to_numpy(dtype=object, na_value=None).tolist()
    return [_text(v) for v in values.tolist()]


_ACTIONS = {action.value: action for action in Action}
DECODE_BATCH = 20_000
"""Rows turned into Python objects at a time: the texts of one batch are freed before the next."""


def _action(value: Any) -> Action:
    return _ACTIONS.get(value) or Action(value)


class PlanCodec:
    """``Plan`` ↔ one row per planned change (``group`` names the plan's list); the held-back
    reason and the diff's quarantined users ride in the frame's ``attrs`` (Parquet metadata).

    A first sync's plan holds a million changes: it is encoded in one pass over them, and decoded
    a batch of rows at a time, column by column."""

    def encode(self, plan: Plan) -> pd.DataFrame:
        with collector_paused():
            try:
                rows = self._rows(plan)
            except TypeError:  # a value JSON cannot hold: the checked path says whose
                rows = self._rows_checked(plan)
        frame = pd.DataFrame(rows, columns=PLAN_COLUMNS, dtype=object)
        frame.attrs["meta"] = {
            "held_back_reason": plan.held_back_reason,
            "quarantined": [_quarantined_dict(q) for q in plan.quarantined],
        }
        return frame

    @staticmethod
    def _rows(plan: Plan) -> list[tuple[Any, ...]]:
        # One pass over the changes (a million objects), each value's JSON made as soon as it is
        # built, so only the texts stay alive.
        return [
            (
                group,
                c.entra_id,
                c.user_principal_name,
                c.action.value,
                c.sf_id,
                c.match_value,
                json_bytes({name: (f.old, f.new) for name, f in c.changes.items()}).decode(),
                json_bytes(c.desired).decode(),
                json_bytes(c.roles if type(c.roles) is list else list(c.roles)).decode(),
            )
            for group in PLAN_GROUPS
            for c in getattr(plan, group)
        ]

    @staticmethod
    def _rows_checked(plan: Plan) -> list[tuple[Any, ...]]:
        """``_rows`` with every value checked on its own: the error names the user."""
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
        return rows

    def decode(self, frame: pd.DataFrame) -> Plan:
        meta = frame.attrs.get("meta", {})
        plan = Plan(
            held_back_reason=meta.get("held_back_reason"),
            quarantined=[_quarantined_from(d) for d in meta.get("quarantined", [])],
        )
        columns = [frame[c] for c in PLAN_COLUMNS]
        changes = ChangesDecoder()
        with collector_paused():
            for start in range(0, len(frame), DECODE_BATCH):
                self._fill(plan, [column.iloc[start : start + DECODE_BATCH] for column in columns], changes)
        return plan

    @staticmethod
    def _fill(plan: Plan, columns: list[pd.Series], decode_changes: ChangesDecoder) -> None:
        group, entra_id, upn, action, sf_id, match_value, changes, desired, roles = columns
        built = map(
            PlannedChange,
            entra_id.tolist(),
            _texts(upn),
            list(map(_action, action.tolist())),
            _texts(sf_id),
            decode_changes(changes.tolist()),
            _texts(match_value),
            list(map(orjson.loads, desired.tolist())),
            list(map(orjson.loads, roles.tolist())),
        )
        appends: dict[str, Any] = {}
        for name, change in zip(group.tolist(), built, strict=True):
            append = appends.get(name)
            if append is None:
                append = appends[name] = getattr(plan, name).append
            append(change)


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
        with collector_paused():
            return list(
                map(
                    RecordResult,
                    frame["entra_id"].tolist(),
                    list(map(_action, frame["action"].tolist())),
                    _texts(frame["sf_id"]),
                    list(map(bool, frame["ok"].tolist())),
                    _texts(frame["error_code"]),
                    _texts(frame["error_message"]),
                    list(map(bool, frame["unprocessed"].tolist())),
                    list(map(bool, frame["created"].tolist())),
                )
            )


class QuarantineCodec:
    """``list[QuarantinedUser]`` ↔ rows of (entra_id, upn, reasons as JSON)."""

    def encode(self, users: list[QuarantinedUser]) -> pd.DataFrame:
        rows = [(q.entra_id, q.user_principal_name, orjson.dumps(q.reasons).decode()) for q in users]
        return pd.DataFrame(rows, columns=["entra_id", "upn", "reasons"], dtype=object)

    def decode(self, frame: pd.DataFrame) -> list[QuarantinedUser]:
        return list(
            map(
                QuarantinedUser,
                frame["entra_id"].tolist(),
                _texts(frame["upn"]),
                list(map(orjson.loads, frame["reasons"].tolist())),
            )
        )


def _quarantined_dict(user: QuarantinedUser) -> dict[str, Any]:
    return {"entra_id": user.entra_id, "upn": user.user_principal_name, "reasons": list(user.reasons)}


def _quarantined_from(data: dict[str, Any]) -> QuarantinedUser:
    return QuarantinedUser(data["entra_id"], data.get("upn"), list(data.get("reasons", [])))


PLAN = PlanCodec()
RESULTS = ResultsCodec()
QUARANTINE = QuarantineCodec()
