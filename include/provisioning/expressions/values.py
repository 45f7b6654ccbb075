"""What values are and how they convert, shared by the per-row and the vectorised evaluators.

Entra's attribute values are strings, booleans, numbers, multi-valued lists and (inside date
functions) DateTimes. Here they are ``str``, ``bool``, ``int``/``float``, ``list[str]``,
``datetime`` (timezone-aware, UTC) and ``None`` for null. An absent attribute, ``NaN`` and an
empty multi-valued attribute are all null, as Entra has no other way to say "absent".
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from include.provisioning.expressions.errors import ExpressionRuntimeError


def normalise(value: Any) -> Any:
    """Turn one frame cell into an expression value (NaN → None, arrays → lists)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [normalise(v) for v in value]
        items = [v for v in items if v is not None]
        return items or None
    if isinstance(value, np.generic):
        return normalise(value.item())
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def format_datetime_default(value: dt.datetime) -> str:
    """Entra's DateTime text, ``M/d/yyyy h:mm:ss tt``, in UTC."""
    value = value.astimezone(dt.UTC) if value.tzinfo else value
    hour12 = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {hour12}:{value.minute:02d}:{value.second:02d} {ampm}"


def to_text(value: Any, function: str = "") -> str | None:
    """The string form of a value, as .NET would print it (``True``, ``42``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, dt.datetime):
        return format_datetime_default(value)
    if isinstance(value, list):
        if not value:
            return None
        if len(value) == 1:
            return to_text(value[0], function)
        where = f"{function}: " if function else ""
        raise ExpressionRuntimeError(f"{where}expected a single value, found {len(value)} values")
    return str(value)


def to_bool(value: Any, function: str) -> bool | None:
    """A condition's truth: booleans, ``"True"``/``"False"`` in any case, numbers (non-zero)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    text = to_text(value, function)
    if text is None:
        return None
    folded = text.strip().lower()
    if folded == "true":
        return True
    if folded == "false":
        return False
    try:
        return float(folded) != 0
    except ValueError:
        raise ExpressionRuntimeError(f"{function}: expected True or False, found {text!r}") from None


def to_int(value: Any, function: str, parameter: str) -> int | None:
    """An integer argument (``NumChars``, ``start``...); text holding an integer is accepted."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ExpressionRuntimeError(f"{function}: {parameter} must be a whole number, found {to_text(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = to_text(value, function)
    try:
        return int(str(text).strip())
    except ValueError:
        raise ExpressionRuntimeError(f"{function}: {parameter} must be a whole number, found {text!r}") from None


def to_number(value: Any) -> float | int | None:
    """A number if the value is one or is text holding one, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


def to_list(value: Any) -> list[Any] | None:
    """A multi-valued view: a list stays, a single value becomes a list of one."""
    if value is None:
        return None
    if isinstance(value, list):
        return value or None
    return [value]
