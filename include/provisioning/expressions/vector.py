"""Vectorised evaluation: a whole USERS frame at once, with the same meaning as ``scalar``.

A sub-expression's result is a ``Vec``: a constant, an Arrow array (text, bool, int) or a
NumPy object array of Python values (lists, dates, anything else). The common functions have
Arrow implementations here; everything else, and any combination of argument kinds a
vectorised implementation does not handle, falls back to the function's per-row ``scalar``
over the argument columns, which is correct but slower. Each Vec carries its per-row errors
(an object array of messages, None where the row is fine), so a failing row fails alone and
an error in a branch that IIF, Switch or Coalesce did not take is dropped, as per-row
evaluation would never have reached it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.provisioning.expressions import dotnet, text
from include.provisioning.expressions.errors import ExpressionRuntimeError
from include.provisioning.expressions.functions import (
    NOT_LITERAL,
    SINGLE_APP_ROLE_ERROR,
    Static,
    replace_group,
)

ARROW_KINDS = ("text", "bool", "int")


@dataclass
class Vec:
    kind: str
    """"const", "text", "bool", "int" (Arrow arrays) or "obj" (NumPy object array)."""
    data: Any
    errors: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.kind == "const"


def const(value: Any, errors: np.ndarray | None = None) -> Vec:
    return Vec("const", value, errors)


def merge_errors(*errors: np.ndarray | None) -> np.ndarray | None:
    """First message per row, in argument order (left-to-right evaluation)."""
    result: np.ndarray | None = None
    for err in errors:
        if err is None:
            continue
        if result is None:
            result = err.copy()
        else:
            empty = _none_mask(result)
            result[empty] = err[empty]
    return result


def _none_mask(arr: np.ndarray) -> np.ndarray:
    return np.equal(arr, None)


def errors_where(mask: np.ndarray, errors: np.ndarray | None) -> np.ndarray | None:
    """Keep ``errors`` only on rows where ``mask`` is True."""
    if errors is None:
        return None
    kept = errors.copy()
    kept[~mask] = None
    return kept if not _none_mask(kept).all() else None


# --- conversions -------------------------------------------------------------------------------


def _as_string_array(arr: pa.Array) -> pa.Array:
    if arr.type == pa.large_string():
        return arr.cast(pa.string())
    return arr


def text_array(vec: Vec, n: int) -> pa.Array | None:
    """The Vec as an Arrow string array with to_text's meaning, or None if not possible."""
    if vec.kind == "text":
        return vec.data
    if vec.kind == "const":
        if vec.data is None:
            return pa.nulls(n, pa.string())
        if isinstance(vec.data, str):
            return pa.array(np.full(n, vec.data, dtype=object), type=pa.string())
        return None
    if vec.kind == "bool":
        return pc.if_else(vec.data, "True", "False")
    if vec.kind == "int":
        return pc.cast(vec.data, pa.string())
    return None


def text_or_scalar(vec: Vec, n: int) -> pa.Array | pa.Scalar | None:
    """Like text_array, but a string constant stays a scalar (Arrow broadcasts it)."""
    if vec.kind == "const" and isinstance(vec.data, str):
        return pa.scalar(vec.data, pa.string())
    if vec.kind == "const" and vec.data is None:
        return pa.scalar(None, pa.string())
    return text_array(vec, n)


def materialize(vec: Vec, n: int) -> list[Any]:
    """Python values, one per row (for per-row fallbacks)."""
    if vec.kind == "const":
        return [vec.data] * n
    if vec.kind == "obj":
        return vec.data.tolist()
    return vec.data.to_pylist()


def to_objects(vec: Vec, n: int) -> np.ndarray:
    """Python values in an object array; rows with errors are None."""
    if vec.kind == "const":
        out = np.empty(n, dtype=object)
        out[:] = [vec.data] * n if isinstance(vec.data, list) else vec.data
    elif vec.kind == "obj":
        out = vec.data.copy()
    elif vec.kind == "text":
        out = vec.data.to_numpy(zero_copy_only=False).astype(object, copy=False)
    else:
        out = np.empty(n, dtype=object)
        out[:] = vec.data.to_pylist()
    if vec.errors is not None:
        out[~_none_mask(vec.errors)] = None
    return out


def _const_str(vec: Vec) -> bool:
    return vec.kind == "const" and (vec.data is None or isinstance(vec.data, str))


def _const_int(vec: Vec) -> int | None:
    if vec.kind == "const" and isinstance(vec.data, int) and not isinstance(vec.data, bool):
        return vec.data
    return None


# --- per-row fallback --------------------------------------------------------------------------


def fallback_strict(fn: Callable[..., Any], static: Static, args: Sequence[Vec], n: int, pad: int) -> Vec:
    """Apply a strict scalar function row by row (rows whose arguments failed are skipped)."""
    skip = merge_errors(*(a.errors for a in args))
    if all(a.is_const for a in args) and skip is None:
        values = [a.data for a in args] + [None] * pad
        try:
            return const(fn(static, *values))
        except ExpressionRuntimeError as exc:
            errors = np.empty(n, dtype=object)
            errors[:] = str(exc)
            return const(None, errors)
    columns = [materialize(a, n) for a in args] + [[None] * n] * pad
    out = np.empty(n, dtype=object)
    errors: np.ndarray | None = None
    skip_rows = None if skip is None else ~_none_mask(skip)
    for i, row in enumerate(zip(*columns, strict=True)):
        if skip_rows is not None and skip_rows[i]:
            continue
        try:
            out[i] = fn(static, *row)
        except ExpressionRuntimeError as exc:
            if errors is None:
                errors = np.empty(n, dtype=object)
            errors[i] = str(exc)
    return objects_vec(out, errors)


def objects_vec(out: np.ndarray, errors: np.ndarray | None = None) -> Vec:
    """Wrap per-row results; all-text results become an Arrow text Vec so that vectorised
    functions further up can take them."""
    if all(v is None or type(v) is str for v in out):
        try:
            return Vec("text", pa.array(out, type=pa.string()), errors)
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
            pass
    return Vec("obj", out, errors)


def fallback_lazy(fn: Callable[..., Any], static: Static, args: Sequence[Vec], n: int) -> Vec:
    """Apply a lazy scalar function row by row: an argument's row error is raised only if the
    function asks for that argument, exactly as per-row evaluation would."""
    columns = [materialize(a, n) for a in args]
    errs = [a.errors for a in args]
    out = np.empty(n, dtype=object)
    errors: np.ndarray | None = None

    def thunk(k: int, i: int) -> Callable[[], Any]:
        def get() -> Any:
            err = errs[k]
            if err is not None and err[i] is not None:
                raise ExpressionRuntimeError(err[i])
            return columns[k][i]

        return get

    for i in range(n):
        try:
            out[i] = fn(static, *(thunk(k, i) for k in range(len(args))))
        except ExpressionRuntimeError as exc:
            if errors is None:
                errors = np.empty(n, dtype=object)
            errors[i] = str(exc)
    return objects_vec(out, errors)


# --- vectorised implementations ---------------------------------------------------------------
# Each takes (static, args, n) and returns a Vec, or None to fall back to the scalar. Strict
# functions need not look at args' errors: the caller merges them.


def _append(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source = text_or_scalar(args[0], n)
    suffix = text_or_scalar(args[1], n)
    if source is None or suffix is None or isinstance(source, pa.Scalar):
        return None
    suffix = pc.fill_null(suffix, "") if isinstance(suffix, pa.Array) else (suffix if suffix.is_valid else "")
    return Vec("text", pc.binary_join_element_wise(source, suffix, ""))


def _left(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source = text_array(args[0], n)
    count = _const_int(args[1])
    if source is None or count is None or args[0].is_const:
        return None
    sliced = source if count < 0 else pc.utf8_slice_codeunits(source, 0, count)
    return Vec("text", pc.fill_null(sliced, ""))


def _mid(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source = text_array(args[0], n)
    start, length = _const_int(args[1]), _const_int(args[2])
    if source is None or start is None or length is None or args[0].is_const or start < 1 or length < 0:
        return None
    return Vec("text", pc.utf8_slice_codeunits(source, start - 1, start - 1 + length))


def _python_on_rows(source: pa.Array, rows: np.ndarray, fn: Callable[[str], Any]) -> pa.Array:
    """Replace ``source`` at ``rows`` (a boolean mask) with ``fn`` of their values."""
    if not rows.any():
        return source
    values = [fn(v) for v in source.filter(pa.array(rows)).to_pylist()]
    return pc.replace_with_mask(source, pa.array(rows), pa.array(values, type=pa.string()))


def _non_ascii_rows(source: pa.Array) -> np.ndarray:
    ascii_mask = pc.fill_null(pc.string_is_ascii(source), True)
    return ~ascii_mask.to_numpy(zero_copy_only=False)


def _case(upper: bool) -> Callable[[Static, Sequence[Vec], int], Vec | None]:
    def apply(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
        source = text_array(args[0], n)
        culture = args[1].data if len(args) > 1 else None
        if source is None or args[0].is_const or (len(args) > 1 and not _const_str(args[1])):
            return None
        if culture is not None and (text.check_culture(culture) or text.is_turkic(culture)):
            return None
        fast = pc.ascii_upper(source) if upper else pc.ascii_lower(source)
        convert = text.to_upper if upper else text.to_lower
        return Vec("text", _python_on_rows(fast, _non_ascii_rows(source), convert))

    return apply


def _normalize(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source = text_array(args[0], n)
    if source is None or args[0].is_const:
        return None
    return Vec("text", _python_on_rows(source, _non_ascii_rows(source), text.normalize_diacritics))


def _stripspaces(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source = text_array(args[0], n)
    if source is None or args[0].is_const:
        return None
    return Vec("text", pc.replace_substring(source, " ", ""))


def _not(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    vec = args[0]
    if vec.kind == "bool":
        return Vec("bool", pc.fill_null(pc.invert(vec.data), True))
    if vec.kind == "text":
        is_true = pc.fill_null(pc.equal(pc.utf8_lower(vec.data), "true"), False)
        return Vec("bool", pc.invert(is_true))
    return None


def _null_test(kind: str) -> Callable[[Static, Sequence[Vec], int], Vec | None]:
    def apply(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
        vec = args[0]
        if vec.kind not in ARROW_KINDS:
            return None
        nulls = pc.is_null(vec.data)
        if kind != "IsNull" and vec.kind == "text":
            nulls = pc.or_(nulls, pc.fill_null(pc.equal(vec.data, ""), False))
        return Vec("bool", pc.invert(nulls) if kind == "IsPresent" else nulls)

    return apply


def _cstr(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    if args[0].kind not in ARROW_KINDS:
        return None
    return Vec("text", text_array(args[0], n))


def _join(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    if not _const_str(args[0]) or any(a.is_const for a in args[1:]):
        return None
    separator = args[0].data or ""
    arrays = []
    for vec in args[1:]:
        arr = text_array(vec, n)
        if arr is None:
            return None
        arrays.append(arr)
    all_null = None
    acc: pa.Array | None = None
    for source in arrays:
        missing = pc.is_null(source)
        all_null = missing if all_null is None else pc.and_(all_null, missing)
        # Empty values are skipped like nulls (Entra's Join(", ", "", [surname], [givenName])).
        value = pc.if_else(pc.equal(source, ""), pa.scalar(None, pa.string()), source)
        if acc is None:
            acc = value
        else:
            joined = pc.binary_join_element_wise(acc, value, separator)
            acc = pc.coalesce(joined, acc, value)
    assert acc is not None and all_null is not None
    return Vec("text", pc.if_else(all_null, pa.scalar(None, pa.string()), pc.fill_null(acc, "")))


def _single_app_role(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    vec = args[0]
    if vec.kind == "text":
        return Vec("text", vec.data)
    if vec.kind != "obj":
        return None
    out = np.empty(n, dtype=object)
    errors: np.ndarray | None = None
    for i, value in enumerate(vec.data):
        if value is None:
            continue
        if not isinstance(value, list):
            out[i] = value
        elif len(value) == 1:
            out[i] = value[0]
        else:
            distinct = list(dict.fromkeys(value))
            if len(distinct) == 1:
                out[i] = distinct[0]
            else:
                if errors is None:
                    errors = np.empty(n, dtype=object)
                errors[i] = SINGLE_APP_ROLE_ERROR.format(count=len(distinct))
    if errors is None and all(v is None or isinstance(v, str) for v in out):
        return Vec("text", pa.array(out, type=pa.string()))
    return Vec("obj", out, errors)


def _replace(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    form = static.extra["form"]
    source_vec = args[0]
    if source_vec.is_const or form in ("template", "regex_attribute"):
        return None
    literals = [static.literal(i) for i in range(7)]
    if any(v is NOT_LITERAL for i, v in enumerate(literals) if i > 0):
        return None
    source = text_array(source_vec, n)
    if source is None:
        return None
    if form == "literal":
        old, new = literals[1], literals[4]
        if not isinstance(old, str) or not old:
            return None
        return Vec("text", pc.replace_substring(source, old, new if isinstance(new, str) else ""))
    compiled = dotnet.compile_regex(str(literals[2]))
    replacement = literals[4] if isinstance(literals[4], str) else ""
    if form == "regex":
        substitute = dotnet.replacement_function(replacement)

        def apply(value: str) -> str:
            return compiled.sub(substitute, value)
    else:
        group = str(literals[3])

        def apply(value: str) -> str:
            return replace_group(compiled, group, value, replacement)

    values = [None if v is None else apply(v) for v in source.to_pylist()]
    return Vec("text", pa.array(values, type=pa.string()))


def _compare_vec(op: str, left: Vec, right: Vec, n: int) -> Vec | None:
    """Text comparisons vectorised; numbers, dates and booleans go through the scalar."""
    if not ((left.kind == "text" or _const_str(left)) and (right.kind == "text" or _const_str(right))):
        return None
    if left.is_const and right.is_const:
        return None
    a, b = text_or_scalar(left, n), text_or_scalar(right, n)
    fn = {"=": pc.equal, "<>": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}
    return Vec("bool", fn[op](a, b))


# Lazy functions: they see their arguments' errors and decide which rows keep them.


def _bool_mask(arr: pa.Array) -> np.ndarray:
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)


def _iif(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    condition, if_true, if_false = args
    if condition.kind != "bool":
        return None
    kinds = {if_true.kind, if_false.kind} - {"const"}
    if kinds <= {"text"} and all(v.kind == "text" or _const_str(v) for v in (if_true, if_false)):
        kind = "text"
        t, f = text_or_scalar(if_true, n), text_or_scalar(if_false, n)
    elif all(
        v.kind == "bool" or (v.is_const and (v.data is None or isinstance(v.data, bool))) for v in (if_true, if_false)
    ):
        kind = "bool"
        t, f = (v.data if v.kind == "bool" else pa.scalar(v.data, pa.bool_()) for v in (if_true, if_false))
    else:
        return None
    truth = condition.data
    value = pc.if_else(truth, t, f)
    if isinstance(value, pa.Scalar):
        return None
    true_rows = _bool_mask(truth)
    false_rows = _bool_mask(pc.invert(truth))
    errors = merge_errors(
        condition.errors, errors_where(true_rows, if_true.errors), errors_where(false_rows, if_false.errors)
    )
    return Vec(kind, value, errors)


def _coalesce(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    arrays = []
    for vec in args:
        if not (vec.kind == "text" or _const_str(vec)):
            return None
        arrays.append(text_or_scalar(vec, n))
    value = pc.coalesce(*arrays)
    if isinstance(value, pa.Scalar):
        return None
    errors: np.ndarray | None = None
    reached = np.ones(n, dtype=bool)
    for vec, arr in zip(args, arrays, strict=True):
        if vec.errors is not None:
            failed = reached & ~_none_mask(vec.errors)
            errors = merge_errors(errors, errors_where(failed, vec.errors))
            reached &= ~failed
        if isinstance(arr, pa.Scalar):
            if arr.is_valid:
                break
            continue
        reached &= pc.is_null(arr).to_numpy(zero_copy_only=False)
    return Vec("text", value, errors)


def _switch(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    source_vec, default, *pairs = args
    keys = pairs[0::2]
    values = pairs[1::2]
    if source_vec.is_const or not all(_const_str(k) and k.data is not None and k.errors is None for k in keys):
        return None
    source = text_array(source_vec, n)
    outputs = [default, *values]
    if source is None or not all(v.kind == "text" or _const_str(v) for v in outputs):
        return None
    matched_source = pc.fill_null(source, "")
    key_array = pa.array([k.data for k in keys], type=pa.string())
    index = pc.index_in(matched_source, value_set=key_array)
    if all(v.is_const for v in outputs):
        table = pa.array([v.data for v in values] + [default.data], type=pa.string())
        value = pc.take(table, pc.fill_null(index, len(values)))
    else:
        value = text_or_scalar(default, n)
        for k in range(len(keys) - 1, -1, -1):
            value = pc.if_else(pc.fill_null(pc.equal(index, k), False), text_or_scalar(values[k], n), value)
        if isinstance(value, pa.Scalar):
            return None
    errors = source_vec.errors
    if any(v.errors is not None for v in outputs):
        chosen = pc.fill_null(index, len(values)).to_numpy(zero_copy_only=False)
        errors = merge_errors(
            errors,
            errors_where(chosen == len(values), default.errors),
            *(errors_where(chosen == k, v.errors) for k, v in enumerate(values)),
        )
    return Vec("text", value, errors)


def _word(static: Static, args: Sequence[Vec], n: int) -> Vec | None:
    """Word with constant number and delimiters, as one RE2 extraction per frame: skip
    leading delimiters, then number-1 words each followed by at least one delimiter (so a
    word cannot be split by backtracking), then the word."""
    source = text_array(args[0], n)
    number = _const_int(args[1])
    if source is None or args[0].is_const or number is None or not _const_str(args[2]) or not args[2].data:
        return None
    if number < 1:
        return Vec("text", pa.array([""] * n, type=pa.string()))
    if number > 1000:
        return None
    chars = "".join(f"\\x{{{ord(c):x}}}" for c in dict.fromkeys(args[2].data))
    word = f"[^{chars}]+"
    skip = f"(?:{word}[{chars}]+){{{number - 1}}}" if number > 1 else ""
    pattern = f"^[{chars}]*{skip}(?P<w>{word})"
    extracted = pc.struct_field(pc.extract_regex(source, pattern=pattern), [0])
    return Vec("text", pc.fill_null(extracted, ""))


VECTORISED: dict[str, Callable[[Static, Sequence[Vec], int], Vec | None]] = {
    "Append": _append,
    "CStr": _cstr,
    "Coalesce": _coalesce,
    "IIF": _iif,
    "IsNull": _null_test("IsNull"),
    "IsNullOrEmpty": _null_test("IsNullOrEmpty"),
    "IsPresent": _null_test("IsPresent"),
    "Join": _join,
    "Left": _left,
    "Mid": _mid,
    "NormalizeDiacritics": _normalize,
    "Not": _not,
    "Replace": _replace,
    "SingleAppRoleAssignment": _single_app_role,
    "StripSpaces": _stripspaces,
    "Switch": _switch,
    "Word": _word,
    "ToLower": _case(False),
    "ToUpper": _case(True),
}

COMPARE = _compare_vec
