"""The USERS frame (model.py) built column-wise from parsed Graph JSON.

Building each column as one list and handing pandas a dict of lists costs a few hundred
milliseconds for 100,000 users; appending rows or constructing per-user objects costs
seconds. Attribute names are Graph's own, so the mapping table reads them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

COMPUTED_COLUMNS = ("appRoleAssignments", "assignedVia", "IsSoftDeleted", "scopeReason")
"""Columns the extraction computes; never sent to Graph in ``$select``."""
ALWAYS_SELECTED = ("userPrincipalName", "accountEnabled")
"""Read whatever the mapping asks for: the UPN names users in messages, accountEnabled decides
``IsSoftDeleted``."""


def graph_attributes(select: Iterable[str]) -> list[str]:
    """The attributes of the output (and of ``$select``, plus ``id``): the mapping's source
    attributes in their order, minus computed ones, plus ``ALWAYS_SELECTED``."""
    skip = {"id", *COMPUTED_COLUMNS}
    attributes = [name for name in dict.fromkeys(select) if name and name not in skip]
    attributes += [name for name in ALWAYS_SELECTED if name not in attributes]
    return attributes


def select_clause(attributes: Sequence[str]) -> str:
    return ",".join(["id", *attributes])


def scope_reason(*, assigned: bool, record: Mapping[str, Any] | None, removed: str | None) -> str | None:
    """Why a user is out of scope (model.SCOPE_REASONS), most final reason first."""
    if removed == "deleted":
        return "deleted"
    if removed is not None or record is None:
        return "soft-deleted"
    if not assigned:
        return "unassigned"
    if record.get("accountEnabled") is False:
        return "disabled"
    return None


@dataclass(slots=True)
class UserRow:
    id: str
    record: Mapping[str, Any] | None
    """Graph's JSON for the user, or None when Graph no longer returns the user."""
    roles: list[str]
    via: str | None
    reason: str | None


def users_frame(rows: Sequence[UserRow], attributes: Sequence[str]) -> pd.DataFrame:
    """``id``, the attributes (absent → None), then the computed columns, one row per user."""
    records = [row.record or {} for row in rows]
    columns: dict[str, list[Any]] = {"id": [row.id for row in rows]}
    for name in attributes:
        columns[name] = [record.get(name) for record in records]
    # A Series of lists with an explicit object dtype: letting pandas infer a column of lists
    # costs more than all the other columns together.
    columns["appRoleAssignments"] = pd.Series([list(row.roles) for row in rows], dtype=object)
    columns["assignedVia"] = [row.via for row in rows]
    columns["IsSoftDeleted"] = pd.Series([row.reason is not None for row in rows], dtype=bool)
    columns["scopeReason"] = [row.reason for row in rows]
    return pd.DataFrame(columns)
