"""Encoding of the values the state store keeps as JSON text, and small coercions.

Field values arrive from DataFrames, so they may be numpy scalars, ``NaN``, ``pd.NA`` or
``pd.Timestamp``; they are stored as plain JSON (numbers, strings, booleans, null) so the
snapshot compares equal to the next cycle's desired values however they were typed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import orjson
import pandas as pd

from include.provisioning.errors import ConfigurationError, ProvisioningError
from include.provisioning.model import FieldChange

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class StateError(ProvisioningError, RuntimeError):
    """The state store refused an operation or found data it cannot trust; the message says why."""


class StateConfigError(StateError, ConfigurationError):
    """The state database cannot be used as configured (URL, driver, schema version)."""


def _default(value: Any) -> Any:
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, FieldChange):
        return [value.old, value.new]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__}: {value!r}")


def dumps(value: Any, *, what: str) -> str:
    """JSON text of ``value``; ``what`` names the record and field in the error a bad value raises."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except TypeError as exc:
        raise StateError(f"{what}: cannot be stored as JSON ({exc})") from exc


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def changes_json(changes: dict[str, FieldChange], *, what: str) -> str:
    """``{field: [old, new]}``, the provisioning log's shape for changed properties."""
    return dumps({name: [change.old, change.new] for name, change in changes.items()}, what=what)


def changes_from_json(text: str | None) -> dict[str, FieldChange]:
    raw = loads(text) or {}
    return {name: FieldChange(pair[0], pair[1]) for name, pair in raw.items()}


def plain(value: Any) -> Any:
    """A field value as the snapshot keeps it: every flavour of null becomes None. A clear is the
    typed null already (``FieldChange(old, None)``); text, even ``"#N/A"``, is data and stays."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_bool(value: Any, *, default: bool) -> bool:
    """Salesforce booleans come as True/False, "true"/"false" (Bulk CSV) or numpy bools."""
    value = plain(value)
    if value is None:
        return default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return default  # "" is Bulk CSV's null
    return bool(value)


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
