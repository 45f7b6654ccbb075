"""Compiled expressions: evaluate one record, or a whole frame at once.

``Expression.evaluate_frame`` is what the mapping stage uses (a million rows in well under a
second for the common functions); ``evaluate_row`` is the reference meaning, used for
provisioning one user on demand and by the tests that check both agree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from include.provisioning.expressions import vector
from include.provisioning.expressions.errors import ExpressionRuntimeError
from include.provisioning.expressions.functions import FUNCTIONS, compare
from include.provisioning.expressions.nodes import Attribute, Call, Compare, Literal, Node, Omitted, attributes
from include.provisioning.expressions.parser import ParsedExpression, parse
from include.provisioning.expressions.values import normalise
from include.provisioning.expressions.vector import Vec


def read_attribute(value: Any) -> Any:
    """A source attribute's value as expressions see it.

    Dates become Graph's ISO text (``2024-03-01T09:00:00Z``), whether the frame holds them as
    text or as datetimes, so an expression means the same thing either way.
    """
    value = normalise(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


@dataclass
class FrameResult:
    values: np.ndarray
    """Object array, one Python value per row (None for null and for failed rows)."""
    errors: dict[int, str]
    """Row position → message, for rows whose evaluation failed."""
    kind: str = "obj"
    """How the values were computed: "text" and "bool" mean every value is str/bool/None."""


class Expression:
    """A parsed, checked expression, ready to evaluate."""

    def __init__(self, parsed: ParsedExpression):
        self._parsed = parsed
        self.source = parsed.source
        self.root: Node = parsed.root

    @classmethod
    def parse(cls, source: str) -> Expression:
        return cls(parse(source))

    def canonical(self) -> str:
        """The expression re-rendered without its formatting (for fingerprints)."""
        return self.root.canonical()

    def attributes(self) -> list[str]:
        return attributes(self.root)

    # --- one record ------------------------------------------------------------------------

    def evaluate_row(self, record: Mapping[str, Any]) -> Any:
        """Evaluate for one record (attribute name → value); raises ExpressionRuntimeError."""
        return self._row(self.root, record)

    def _row(self, node: Node, record: Mapping[str, Any]) -> Any:
        if isinstance(node, Attribute):
            return read_attribute(record.get(node.name))
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Omitted):
            return None
        if isinstance(node, Compare):
            return compare(node.op, self._row(node.left, record), self._row(node.right, record))
        spec = FUNCTIONS[node.name]
        static = self._parsed.statics[id(node)]
        if spec.lazy:
            thunks = [lambda a=a: self._row(a, record) for a in node.args]
            return spec.scalar(static, *thunks)
        values = [self._row(a, record) for a in node.args]
        if not spec.variadic:
            values += [None] * (len(spec.params) - len(values))
        return spec.scalar(static, *values)

    # --- a whole frame ---------------------------------------------------------------------

    def evaluate_frame(self, frame: pd.DataFrame, columns: dict[str, Vec] | None = None) -> FrameResult:
        """Evaluate for every row of ``frame``.

        ``columns`` caches converted attribute columns between expressions of one table.
        A referenced attribute missing from the frame is an error for the whole frame (the
        extract did not select it), never a silent null.
        """
        n = len(frame)
        cache = columns if columns is not None else {}
        result = self._vec(self.root, frame, n, cache)
        values = vector.to_objects(result, n)
        errors: dict[int, str] = {}
        if result.errors is not None:
            rows = np.flatnonzero(~np.equal(result.errors, None))
            errors = {int(i): str(result.errors[i]) for i in rows}
        return FrameResult(values, errors, result.kind)

    def _vec(self, node: Node, frame: pd.DataFrame, n: int, cache: dict[str, Vec]) -> Vec:
        if isinstance(node, Attribute):
            if node.name not in cache:
                if node.name not in frame.columns:
                    raise KeyError(f"the USERS frame has no column {node.name!r}, which the expression uses")
                cache[node.name] = column_vec(frame[node.name])
            return cache[node.name]
        if isinstance(node, Literal):
            return vector.const(node.value)
        if isinstance(node, Omitted):
            return vector.const(None)
        if isinstance(node, Compare):
            left, right = self._vec(node.left, frame, n, cache), self._vec(node.right, frame, n, cache)
            errors = vector.merge_errors(left.errors, right.errors)
            out = vector.COMPARE(node.op, left, right, n)
            if out is None:
                out = vector.fallback_strict(
                    lambda _s, a, b: compare(node.op, a, b),
                    None,
                    [left, right],
                    n,
                    pad=0,  # type: ignore[arg-type]
                )
            out.errors = vector.merge_errors(errors, out.errors)
            return out
        return self._call(node, frame, n, cache)

    def _call(self, node: Call, frame: pd.DataFrame, n: int, cache: dict[str, Vec]) -> Vec:
        spec = FUNCTIONS[node.name]
        static = self._parsed.statics[id(node)]
        args = [self._vec(a, frame, n, cache) for a in node.args]
        implementation = vector.VECTORISED.get(node.name)
        if spec.lazy:
            out = implementation(static, args, n) if implementation else None
            return out if out is not None else vector.fallback_lazy(spec.scalar, static, args, n)
        errors = vector.merge_errors(*(a.errors for a in args))
        out = None
        if implementation is not None and not all(a.is_const for a in args):
            out = implementation(static, args, n)
        if out is None:
            pad = 0 if spec.variadic else len(spec.params) - len(args)
            return vector.fallback_strict(spec.scalar, static, args, n, pad)
        out.errors = vector.merge_errors(errors, out.errors)
        return out


def column_vec(series: pd.Series) -> Vec:
    """Convert one frame column to the evaluator's representation (once per table)."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) or (hasattr(series.array, "__arrow_array__") and dtype.kind == "O"):
        arr = pa.array(series.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return Vec("text", vector._as_string_array(arr))
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
        return Vec("bool", pa.array(series.to_numpy()))
    if isinstance(dtype, pd.BooleanDtype):
        return Vec("bool", pa.array(series.array))
    if pd.api.types.is_integer_dtype(dtype):
        return Vec("int", pa.array(series.array).cast(pa.int64()))
    if pd.api.types.is_float_dtype(dtype):
        numbers = series.to_numpy(dtype=float, na_value=np.nan)
        finite = numbers[~np.isnan(numbers)]
        if np.all(np.mod(finite, 1) == 0) and (finite.size == 0 or np.abs(finite).max() < 2**53):
            return Vec("int", pa.array(numbers, from_pandas=True).cast(pa.int64()))
    values = series.to_numpy(dtype=object)
    sample = next((v for v in values if not _missing(v)), None)
    if sample is None:
        return Vec("text", pa.nulls(len(values), pa.string()))
    if isinstance(sample, str):
        try:
            return Vec("text", pa.array(values, type=pa.string(), from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
            pass
    normalised = np.empty(len(values), dtype=object)
    normalised[:] = [_read_fast(v) for v in values]
    return vector.objects_vec(normalised) if isinstance(sample, str) else Vec("obj", normalised)


def _read_fast(value: Any) -> Any:
    """read_attribute, short-cutting the common cases of a list column (one role, no role).

    Parquet reads a list column as one NumPy object array per row: when every element is text,
    ``normalise`` would return the same elements as a list (none is null), so ``tolist`` gives
    that list without visiting each element in Python (1.5 of the transform's 2.6 CPU-s for
    220,000 users' roles went there)."""
    kind = type(value)
    if kind is list and len(value) == 1 and type(value[0]) is str:
        return value
    if value is None:
        return None
    if kind is np.ndarray and value.dtype == object:
        items = value.tolist()
        if all(type(item) is str for item in items):
            return items or None
    return read_attribute(value)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def compile_expression(source: str) -> Expression:
    """Parse and check ``source``; raises ExpressionSyntaxError."""
    return Expression.parse(source)


__all__ = ["Expression", "ExpressionRuntimeError", "FrameResult", "column_vec", "compile_expression"]
