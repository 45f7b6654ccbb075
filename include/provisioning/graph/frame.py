"""The USERS frame (model.py) built column-wise from parsed Graph JSON.

Building each column as one list and handing pandas a dict of lists costs a few hundred
milliseconds for 100,000 users; appending rows or constructing per-user objects costs
seconds. Attribute names are Graph's own, so the mapping table reads them unchanged.

At 1,000,000 users the records are scattered over gigabytes: each record is read once, all its
attributes together (``operator.itemgetter``), rather than once per attribute, and the cyclic
collector is paused while millions of lists and tuples are made (it would rescan every record
each time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from include.provisioning.gc_pause import collector_paused
from include.provisioning.graph.user_attributes import (
    EXTENSION_ATTRIBUTES_PROPERTY,
    extension_attribute_values,
    is_extension_attribute,
    select_properties,
)

COMPUTED_COLUMNS = ("appRoleAssignments", "assignedVia", "IsSoftDeleted", "scopeReason")
"""Columns the extraction computes; never sent to Graph in ``$select``."""
ALWAYS_SELECTED = ("userPrincipalName", "accountEnabled", "displayName")
"""Read whatever the mapping asks for: the UPN names users in messages, accountEnabled decides
``IsSoftDeleted``, displayName names them in the provisioning log (Entra's logs show it as the
user's name; the Provisioning page searches it)."""


def graph_attributes(select: Iterable[str]) -> list[str]:
    """The attributes of the output (and of ``$select``, plus ``id``): the mapping's source
    attributes in their order, minus computed ones, plus ``ALWAYS_SELECTED``."""
    skip = {"id", *COMPUTED_COLUMNS}
    attributes = [name for name in dict.fromkeys(select) if name and name not in skip]
    attributes += [name for name in ALWAYS_SELECTED if name not in attributes]
    return attributes


def select_clause(attributes: Sequence[str]) -> str:
    """``$select`` for the frame's ``attributes``: ``id`` and the Graph properties that hold them
    (user_attributes.select_properties: the extension attributes come in one object)."""
    return ",".join(["id", *select_properties(attributes)])


def scope_reason(*, assigned: bool, record: Mapping[str, Any] | None, removed: str | None) -> str | None:
    """Why a user is out of scope (model.SCOPE_REASONS), most final reason first."""
    enabled = record.get("accountEnabled") if record is not None else None
    return scope_reason_of(assigned=assigned, read=record is not None, enabled=enabled, removed=removed)


def scope_reason_of(*, assigned: bool, read: bool, enabled: Any, removed: str | None) -> str | None:
    """``scope_reason`` given whether Graph returned the user (``read``) and their
    ``accountEnabled`` (``enabled``) rather than the record."""
    if removed == "deleted":
        return "deleted"
    if removed is not None or not read:
        return "soft-deleted"
    if not assigned:
        return "unassigned"
    if enabled is False:
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
    return columns_frame(
        [row.id for row in rows],
        [row.record for row in rows],
        [row.roles for row in rows],
        [row.via for row in rows],
        [row.reason for row in rows],
        attributes=attributes,
    )


def columns_frame(
    ids: list[str],
    records: list[Mapping[str, Any] | None],
    roles: list[Sequence[str]],
    via: list[str | None],
    reasons: list[str | None],
    *,
    attributes: Sequence[str],
) -> pd.DataFrame:
    """``users_frame`` of rows given as parallel lists (a ``UserRow``'s fields, one list each)."""
    with collector_paused():
        values = dict(zip(attributes, attribute_columns(records, attributes), strict=True))
        return frame_of_columns(ids, values, roles, via, reasons)


def frame_of_columns(
    ids: list[str],
    attributes: Mapping[str, list[Any] | pa.ChunkedArray],
    roles: list[Sequence[str]],
    via: list[str | None],
    reasons: list[str | None],
) -> pd.DataFrame:
    """The USERS frame of ``ids`` whose attribute values are given column by column (attribute
    name → one value per id, as a list or an Arrow array; user_pages.UserPages.take), in the
    ``attributes`` order. An Arrow column becomes the pandas column its values as a list would
    have made (text: pandas' Arrow-backed ``str``, kept in Arrow memory; booleans and all-null
    columns: Python values)."""
    with collector_paused():
        columns: dict[str, Any] = {"id": ids}
        columns.update((name, _pandas_values(values)) for name, values in attributes.items())
        # A Series of lists with an explicit object dtype: letting pandas infer a column of lists
        # costs more than all the other columns together. Each row gets its own list.
        role_lists = np.fromiter(map(list, roles), dtype=object, count=len(roles))
        columns["appRoleAssignments"] = pd.Series(role_lists, dtype=object)
        columns["assignedVia"] = via
        columns["IsSoftDeleted"] = pd.Series([reason is not None for reason in reasons], dtype=bool)
        columns["scopeReason"] = reasons
        return pd.DataFrame(columns)


def _pandas_values(values: list[Any] | pa.ChunkedArray) -> Any:
    """What the frame's column is built from: lists as they are; an Arrow text column with a
    value as a pandas ``str`` Series (what pandas infers from such a list), any other Arrow column
    as its Python values."""
    if isinstance(values, list):
        return values
    if pa.types.is_large_string(values.type) and len(values) and values.null_count < len(values):
        return values.to_pandas()
    return values.to_pylist()


def attribute_columns(records: list[Mapping[str, Any] | None], attributes: Sequence[str]) -> list[list[Any]]:
    """Each attribute's values over ``records`` (no record, or no such key → None).

    ``extensionAttribute1``..``15`` are read from the record's ``onPremisesExtensionAttributes``
    object (read once for all of them); every other attribute is a key of the record."""
    fields = [name for name in attributes if is_extension_attribute(name)]
    if not fields:
        return _property_columns(records, attributes)
    properties = [name for name in attributes if name not in fields]
    columns = dict(zip(properties, _property_columns(records, properties), strict=True))
    (containers,) = _property_columns(records, [EXTENSION_ATTRIBUTES_PROPERTY])
    columns.update((name, extension_attribute_values(containers, name)) for name in fields)
    return [columns[name] for name in attributes]


def _property_columns(records: list[Mapping[str, Any] | None], attributes: Sequence[str]) -> list[list[Any]]:
    """Each property's values over ``records``, read with one ``itemgetter`` call per record."""
    names = list(attributes)
    if len(names) < 2:  # itemgetter of one name returns the value, not a 1-tuple
        return [[record.get(name) if record else None for record in records] for name in names]
    pick = itemgetter(*names)
    nothing = (None,) * len(names)
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for record in records:
        if not record:
            append(nothing)
            continue
        try:
            append(pick(record))
        except KeyError:  # an attribute Graph left out
            append(tuple(record.get(name) for name in names))
    if not rows:
        return [[] for _ in names]
    return [list(column) for column in zip(*rows, strict=True)]
