"""Entra's functions: signatures, parse-time checks and per-row semantics.

Each function is a ``FunctionSpec``. The parser checks arity and required arguments against
it and runs its ``prepare`` hook, which validates literal arguments (a bad regex, culture or
date format is a load error with a position) and precomputes what every row would otherwise
redo. ``scalar`` is the per-row meaning; the vectorised evaluator (``vector.py``) must agree
with it, and the tests check that it does.

Null semantics follow Entra's documentation where it says something (Left and Word give ""
for null, Not gives True for anything but True, Coalesce skips nulls, Switch matches a null
source against the key "") and otherwise return null for a null source, so the target field
is simply not sent.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from include.provisioning.expressions import dotnet, text
from include.provisioning.expressions.errors import ExpressionRuntimeError, ExpressionSyntaxError
from include.provisioning.expressions.nodes import Call, Literal, Omitted
from include.provisioning.expressions.values import (
    is_null,
    to_bool,
    to_int,
    to_list,
    to_number,
    to_text,
)

NOT_LITERAL = object()
"""Marks an argument whose value is only known per row."""

SINGLE_APP_ROLE_ERROR = "No more than one app role assignment was expected, but this many where found: {count}"
"""Entra's wording (typo included, so people can search for it), after
"An error occured while evaluating this function: 'SingleAppRoleAssignment.'"."""


@dataclass
class Static:
    """What is known about a call before any row is seen."""

    call: Call
    omitted: tuple[bool, ...]
    literals: tuple[Any, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def literal(self, index: int) -> Any:
        """The literal value of argument ``index`` (None if omitted), or NOT_LITERAL."""
        if index >= len(self.literals):
            return None
        return self.literals[index]

    def given(self, index: int) -> bool:
        return index < len(self.omitted) and not self.omitted[index]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    params: tuple[str, ...]
    min_args: int
    optional: frozenset[int] = frozenset()
    """Parameter indices that may be left empty (``Switch([x], , "a", "b")``)."""
    variadic: bool = False
    """The last parameter repeats (Coalesce, Join, Switch)."""
    lazy: bool = False
    """``scalar`` receives thunks and evaluates only the arguments it needs (IIF, Switch...)."""
    scalar: Callable[..., Any] = lambda static, *args: None
    prepare: Callable[[Static], None] | None = None

    def signature(self) -> str:
        params = [f"[{p}]" if i in self.optional else p for i, p in enumerate(self.params)]
        if self.variadic:
            params.append("...")
        return f"{self.name}({', '.join(params)})"


def _arg_position(static: Static, index: int) -> int:
    return static.call.args[index].position if index < len(static.call.args) else static.call.position


def _fail(static: Static, index: int, message: str) -> None:
    raise ExpressionSyntaxError(_arg_position(static, index), f"{static.call.name}: {message}")


# --- scalar implementations ------------------------------------------------------------------


def _append(static: Static, source: Any, suffix: Any) -> Any:
    source = to_text(source, "Append")
    if source is None:
        return None
    return source + (to_text(suffix, "Append") or "")


def _bitand(static: Static, a: Any, b: Any) -> Any:
    x, y = to_int(a, "BitAnd", "value1"), to_int(b, "BitAnd", "value2")
    return None if x is None or y is None else x & y


def _cbool(static: Static, value: Any) -> Any:
    return to_bool(value, "CBool")


def _cdate(static: Static, value: Any) -> Any:
    return _as_datetime(value, "CDate")


def _as_datetime(value: Any, function: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raw = to_text(value, function)
    if raw is None:
        return None
    parsed = dotnet.parse_cdate(raw)
    if parsed is None:
        raise ExpressionRuntimeError(f"{function}: {raw!r} is not a date/time")
    return parsed


def _coalesce(static: Static, *thunks: Callable[[], Any]) -> Any:
    for thunk in thunks:
        value = thunk()
        if not is_null(value):
            return value
    return None


def _base64(static: Static, value: Any) -> Any:
    raw = to_text(value, "ConvertToBase64")
    return None if raw is None else base64.b64encode(raw.encode("utf-16-le")).decode("ascii")


def _utf8hex(static: Static, value: Any) -> Any:
    raw = to_text(value, "ConvertToUTF8Hex")
    return None if raw is None else raw.encode("utf-8").hex().upper()


def _count(static: Static, value: Any) -> Any:
    items = to_list(value)
    return 0 if items is None else len(items)


def _cstr(static: Static, value: Any) -> Any:
    return to_text(value, "CStr")


_INTERVALS = ("yyyy", "q", "m", "y", "d", "w", "ww", "h", "n", "s")


def _check_interval(static: Static) -> None:
    interval = static.literal(0)
    if isinstance(interval, str) and interval not in _INTERVALS:
        _fail(static, 0, f"interval {interval!r} is not one of {', '.join(_INTERVALS)}")


def _interval(value: Any, function: str) -> str:
    interval = to_text(value, function)
    if interval not in _INTERVALS:
        raise ExpressionRuntimeError(f"{function}: interval {interval!r} is not one of {', '.join(_INTERVALS)}")
    return interval


def _add_months(value: dt.datetime, months: int) -> dt.datetime:
    total = value.month - 1 + months
    year, month = value.year + total // 12, total % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _dateadd(static: Static, interval: Any, number: Any, when: Any) -> Any:
    unit = _interval(interval, "DateAdd")
    amount = to_int(number, "DateAdd", "value")
    moment = _as_datetime(when, "DateAdd")
    if amount is None or moment is None:
        return None
    if unit == "yyyy":
        return _add_months(moment, 12 * amount)
    if unit == "q":
        return _add_months(moment, 3 * amount)
    if unit == "m":
        return _add_months(moment, amount)
    seconds = {"d": 86400, "y": 86400, "w": 86400, "ww": 7 * 86400, "h": 3600, "n": 60, "s": 1}[unit]
    return moment + dt.timedelta(seconds=seconds * amount)


def _datediff(static: Static, interval: Any, first: Any, second: Any) -> Any:
    """Visual Basic's DateDiff, which Entra exposes: calendar units for years and months,
    elapsed time truncated toward zero for days and smaller, week boundaries for ``ww``."""
    unit = _interval(interval, "DateDiff")
    a, b = _as_datetime(first, "DateDiff"), _as_datetime(second, "DateDiff")
    if a is None or b is None:
        return None
    if unit == "yyyy":
        return b.year - a.year
    if unit == "q":
        return (b.year - a.year) * 4 + (b.month - 1) // 3 - (a.month - 1) // 3
    if unit == "m":
        return (b.year - a.year) * 12 + b.month - a.month
    if unit == "ww":
        # Move both to the Sunday that starts their week, then count whole weeks.
        start_a = a.date() - dt.timedelta(days=(a.weekday() + 1) % 7)
        start_b = b.date() - dt.timedelta(days=(b.weekday() + 1) % 7)
        return math.trunc((start_b - start_a).days / 7)
    seconds = (b - a).total_seconds()
    per = {"d": 86400, "y": 86400, "w": 7 * 86400, "h": 3600, "n": 60, "s": 1}[unit]
    return math.trunc(seconds / per)


_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def _datefromnum(static: Static, value: Any) -> Any:
    ticks = to_int(value, "DateFromNum", "value")
    if ticks is None:
        return None
    return _FILETIME_EPOCH + dt.timedelta(microseconds=ticks // 10)


def _numfromdate(static: Static, value: Any) -> Any:
    moment = _as_datetime(value, "NumFromDate")
    if moment is None:
        return None
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _prepare_formatdatetime(static: Static) -> None:
    for index in (2, 3):
        fmt = static.literal(index)
        if isinstance(fmt, str):
            try:
                dotnet.tokenize_format(fmt)
            except ValueError as exc:
                _fail(static, index, str(exc))


def _formatdatetime(static: Static, source: Any, styles: Any, input_format: Any, output_format: Any) -> Any:
    if source is None:
        return None
    out_fmt = to_text(output_format, "FormatDateTime")
    if out_fmt is None:
        return None
    if isinstance(source, dt.datetime):
        moment = source
    else:
        raw = to_text(source, "FormatDateTime")
        in_fmt = to_text(input_format, "FormatDateTime")
        if raw is None or in_fmt is None:
            return None
        try:
            parsed = dotnet.parse_with_format(raw, in_fmt)
        except ValueError as exc:
            raise ExpressionRuntimeError(f"FormatDateTime: {exc}") from None
        if parsed is None:
            raise ExpressionRuntimeError(f"FormatDateTime: {raw!r} does not match the input format {in_fmt!r}")
        moment = parsed
    try:
        return dotnet.format_with(moment, out_fmt)
    except ValueError as exc:
        raise ExpressionRuntimeError(f"FormatDateTime: {exc}") from None


def _ignoreflow(static: Static, value: Any) -> Any:
    return None if is_null(value) or value == "" else value


def _iif(static: Static, condition: Callable[[], Any], if_true: Callable[[], Any], if_false: Callable[[], Any]) -> Any:
    truth = to_bool(condition(), "IIF")
    if truth is None:
        # Entra: "If the source attribute used within the IIF function is empty or null, the
        # condition check fails": the target is not set.
        return None
    return if_true() if truth else if_false()


def _prepare_instr(static: Static) -> None:
    compare = static.literal(3)
    if isinstance(compare, str) and compare not in ("vbTextCompare", "vbBinaryCompare"):
        _fail(static, 3, f"compareType must be vbTextCompare or vbBinaryCompare, found {compare!r}")
    start = static.literal(2)
    if isinstance(start, int) and not isinstance(start, bool) and start < 1:
        _fail(static, 2, f"start must be 1 or more, found {start}")


def _instr(static: Static, haystack: Any, needle: Any, start: Any, compare: Any) -> Any:
    a, b = to_text(haystack, "InStr"), to_text(needle, "InStr")
    if a is None or b is None:
        return None
    begin = 1 if start is None else to_int(start, "InStr", "start")
    if begin is None:
        return None
    if begin < 1:
        raise ExpressionRuntimeError(f"InStr: start must be 1 or more, found {begin}")
    mode = to_text(compare, "InStr") if compare is not None else "vbBinaryCompare"
    if mode == "vbTextCompare":
        a, b = text.to_lower(a), text.to_lower(b)
    elif mode != "vbBinaryCompare":
        raise ExpressionRuntimeError(f"InStr: compareType must be vbTextCompare or vbBinaryCompare, found {mode!r}")
    return a.find(b, begin - 1) + 1


def _isnull(static: Static, value: Any) -> Any:
    return is_null(value)


def _isnullorempty(static: Static, value: Any) -> Any:
    return is_null(value) or value == ""


def _ispresent(static: Static, value: Any) -> Any:
    return not (is_null(value) or value == "")


def _isstring(static: Static, value: Any) -> Any:
    return isinstance(value, str)


def _item(static: Static, values: Any, index: Any) -> Any:
    items = to_list(values)
    position = to_int(index, "Item", "index")
    if items is None or position is None:
        return None
    if position < 1:
        raise ExpressionRuntimeError(f"Item: index must be 1 or more, found {position}")
    return items[position - 1] if position <= len(items) else None


def _join(static: Static, separator: Any, *sources: Any) -> Any:
    values: list[str] = []
    for source in sources:
        for item in to_list(source) or ():
            rendered = to_text(item, "Join")
            if rendered is not None:
                values.append(rendered)
    if not values:
        return None
    # Entra's example Join(", ", "", [surname], [givenName]) gives "Doe, John": empty values
    # are skipped like nulls.
    return (to_text(separator, "Join") or "").join(v for v in values if v != "")


def _left(static: Static, source: Any, count: Any) -> Any:
    raw = to_text(source, "Left")
    n = to_int(count, "Left", "NumChars")
    if raw is None:
        return ""
    if n is None:
        return None
    if n < 0:
        return raw
    return raw[:n]


def _prepare_mid(static: Static) -> None:
    start, length = static.literal(1), static.literal(2)
    if isinstance(start, int) and not isinstance(start, bool) and start < 1:
        _fail(static, 1, f"start must be 1 or more (the first character is 1), found {start}")
    if isinstance(length, int) and not isinstance(length, bool) and length < 0:
        _fail(static, 2, f"length must not be negative, found {length}")


def _mid(static: Static, source: Any, start: Any, length: Any) -> Any:
    raw = to_text(source, "Mid")
    begin, size = to_int(start, "Mid", "start"), to_int(length, "Mid", "length")
    if raw is None or begin is None or size is None:
        return None
    if begin < 1:
        raise ExpressionRuntimeError(f"Mid: start must be 1 or more, found {begin}")
    if size < 0:
        raise ExpressionRuntimeError(f"Mid: length must not be negative, found {size}")
    return raw[begin - 1 : begin - 1 + size]


def _normalize(static: Static, source: Any) -> Any:
    raw = to_text(source, "NormalizeDiacritics")
    return None if raw is None else text.normalize_diacritics(raw)


def _not(static: Static, source: Any) -> Any:
    # Entra: "If source value is True, returns False. Otherwise, returns True."
    is_true = source is True or (isinstance(source, str) and text.to_lower(source) == "true")
    return not is_true


def _pcase(static: Static, source: Any, separators: Any) -> Any:
    raw = to_text(source, "PCase")
    if raw is None:
        return None
    chars = to_text(separators, "PCase") if separators is not None else None
    return text.proper_case(raw, chars)


def _removeduplicates(static: Static, values: Any) -> Any:
    items = to_list(values)
    if items is None:
        return None
    seen: dict[Any, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


# Replace: the documented argument forms, decided at parse time from which arguments are given.
REPLACE_FORMS = {
    "literal": "oldValue and replacementValue",
    "template": "oldValue and template",
    "regex": "regexPattern and replacementValue",
    "regex_group": "regexPattern, regexGroupName and replacementValue",
    "regex_attribute": "regexPattern, regexGroupName and replacementAttributeName",
}


def _prepare_replace(static: Static) -> None:
    given = {name for i, name in enumerate(_REPLACE_PARAMS) if static.given(i)}
    given.discard("source")
    shapes = {
        "literal": {"oldValue", "replacementValue"},
        "template": {"oldValue", "template"},
        "regex": {"regexPattern", "replacementValue"},
        "regex_group": {"regexPattern", "regexGroupName", "replacementValue"},
        "regex_attribute": {"regexPattern", "regexGroupName", "replacementAttributeName"},
    }
    form = next((name for name, needed in shapes.items() if given == needed), None)
    if form is None:
        listed = "; ".join(REPLACE_FORMS.values())
        found = ", ".join(sorted(given)) or "none"
        raise ExpressionSyntaxError(
            static.call.position,
            f"Replace: the arguments given ({found}) are not one of the documented forms: {listed}",
        )
    static.extra["form"] = form
    if form in ("regex", "regex_group", "regex_attribute"):
        pattern = static.literal(2)
        if isinstance(pattern, str):
            try:
                compiled = dotnet.compile_regex(pattern)
            except re.error as exc:
                _fail(static, 2, f"regexPattern {pattern!r} is not a valid regular expression: {exc}")
            group = static.literal(3)
            if form != "regex" and isinstance(group, str) and group not in compiled.groupindex:
                _fail(static, 3, f"regexGroupName {group!r} is not a named group of the pattern")
    if form in ("literal", "template") and static.literal(1) == "":
        _fail(static, 1, "oldValue must not be empty")


_REPLACE_PARAMS = (
    "source",
    "oldValue",
    "regexPattern",
    "regexGroupName",
    "replacementValue",
    "replacementAttributeName",
    "template",
)


def _compiled(pattern: Any) -> re.Pattern[str]:
    raw = to_text(pattern, "Replace")
    try:
        return dotnet.compile_regex(raw or "")
    except re.error as exc:
        raise ExpressionRuntimeError(
            f"Replace: regexPattern {raw!r} is not a valid regular expression: {exc}"
        ) from None


def replace_group(compiled: re.Pattern[str], group: str, source: str, replacement: str) -> str:
    """Replace what ``group`` matched, in every match, keeping the rest of the match."""

    def substitute(m: re.Match[str]) -> str:
        start, end = m.span(group)
        if start < 0:
            return m.group(0)
        base = m.start()
        whole = m.group(0)
        return whole[: start - base] + replacement + whole[end - base :]

    return compiled.sub(substitute, source)


def _replace(static: Static, source: Any, *rest: Any) -> Any:
    old, pattern, group, new, attr, tmpl = rest
    form = static.extra["form"]
    raw = to_text(source, "Replace")
    if form == "regex_attribute":
        if raw not in (None, ""):
            return raw
        other = to_text(attr, "Replace")
        if other is None:
            return None
        name = to_text(group, "Replace") or ""
        m = _compiled(pattern).search(other)
        if m is None or name not in m.re.groupindex:
            return None
        return m.group(name)
    if raw is None:
        return None
    if form == "literal":
        old_text = to_text(old, "Replace")
        if not old_text:
            raise ExpressionRuntimeError("Replace: oldValue must not be empty")
        return raw.replace(old_text, to_text(new, "Replace") or "")
    if form == "template":
        old_text = to_text(old, "Replace")
        template = to_text(tmpl, "Replace")
        if not old_text:
            raise ExpressionRuntimeError("Replace: oldValue must not be empty")
        return None if template is None else template.replace(old_text, raw)
    compiled = _compiled(pattern)
    replacement = to_text(new, "Replace") or ""
    if form == "regex":
        return compiled.sub(dotnet.replacement_function(replacement), raw)
    name = to_text(group, "Replace") or ""
    if name not in compiled.groupindex:
        raise ExpressionRuntimeError(f"Replace: regexGroupName {name!r} is not a named group of the pattern")
    return replace_group(compiled, name, raw, replacement)


def _single_app_role(static: Static, roles: Any) -> Any:
    items = to_list(roles)
    if items is None:
        return None
    distinct = list(dict.fromkeys(items))
    if len(distinct) > 1:
        raise ExpressionRuntimeError(SINGLE_APP_ROLE_ERROR.format(count=len(distinct)))
    return distinct[0]


def _split(static: Static, source: Any, delimiter: Any) -> Any:
    raw = to_text(source, "Split")
    sep = to_text(delimiter, "Split")
    if raw is None or sep is None:
        return None
    if sep == "":
        raise ExpressionRuntimeError("Split: delimiter must not be empty")
    # Entra's example splits "PermissionSetOne, PermissionSetTwo" on "," into values without
    # the blank: blanks around each value are trimmed.
    return [part.strip(" ") for part in raw.split(sep)]


def _stripspaces(static: Static, source: Any) -> Any:
    raw = to_text(source, "StripSpaces")
    return None if raw is None else raw.replace(" ", "")


def _prepare_switch(static: Static) -> None:
    count = len(static.call.args)
    if count % 2:
        raise ExpressionSyntaxError(
            static.call.position,
            f"Switch takes source, defaultValue and key/value pairs (an even number of arguments), found {count}",
        )


def _switch(static: Static, source: Callable[[], Any], default: Callable[[], Any], *pairs: Callable[[], Any]) -> Any:
    value = source()
    # A null source matches the key "" (Entra's advice for empty attributes).
    key_text = "" if is_null(value) else to_text(value, "Switch")
    for i in range(0, len(pairs), 2):
        if to_text(pairs[i](), "Switch") == key_text:
            return pairs[i + 1]()
    return default()


def _prepare_case(static: Static) -> None:
    culture = static.literal(1)
    if isinstance(culture, str):
        reason = text.check_culture(culture)
        if reason:
            _fail(static, 1, reason)


def _case(upper: bool) -> Callable[..., Any]:
    name = "ToUpper" if upper else "ToLower"

    def apply(static: Static, source: Any, culture: Any) -> Any:
        raw = to_text(source, name)
        if raw is None:
            return None
        culture_name = to_text(culture, name) if culture is not None else None
        if culture_name:
            reason = text.check_culture(culture_name)
            if reason:
                raise ExpressionRuntimeError(f"{name}: {reason}")
        return text.to_upper(raw, culture_name) if upper else text.to_lower(raw, culture_name)

    return apply


def _word(static: Static, source: Any, number: Any, delimiters: Any) -> Any:
    raw = to_text(source, "Word")
    n = to_int(number, "Word", "WordNumber")
    chars = to_text(delimiters, "Word") or ""
    if raw is None or n is None or n < 1:
        return ""
    words = [w for w in re.split("[" + re.escape(chars) + "]", raw) if w] if chars else ([raw] if raw else [])
    return words[n - 1] if n <= len(words) else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare(op: str, left: Any, right: Any) -> bool | None:
    """``=``, ``<>``, ``<``... of IIF conditions; null on either side makes the result null."""
    if is_null(left) or is_null(right):
        return None
    a: Any
    b: Any
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        a, b = left, right
    elif _is_number(left) or _is_number(right):
        a, b = to_number(left), to_number(right)
        if a is None or b is None:
            a, b = to_text(left), to_text(right)
    else:
        a, b = to_text(left), to_text(right)
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _spec(name: str, params: str, min_args: int | None = None, **kwargs: Any) -> FunctionSpec:
    names = tuple(p.strip() for p in params.split(",") if p.strip())
    optional = frozenset(kwargs.pop("optional", ()))
    required = min_args if min_args is not None else len(names) - sum(1 for i in optional if i >= 0)
    return FunctionSpec(name=name, params=names, min_args=required, optional=optional, **kwargs)


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        _spec("Append", "source, suffix", scalar=_append),
        _spec("BitAnd", "value1, value2", scalar=_bitand),
        _spec("CBool", "expression", scalar=_cbool),
        _spec("CDate", "expression", scalar=_cdate),
        _spec("Coalesce", "source", 1, variadic=True, lazy=True, scalar=_coalesce),
        _spec("ConvertToBase64", "source", scalar=_base64),
        _spec("ConvertToUTF8Hex", "source", scalar=_utf8hex),
        _spec("Count", "attribute", scalar=_count),
        _spec("CStr", "value", scalar=_cstr),
        _spec("DateAdd", "interval, value, dateTime", scalar=_dateadd, prepare=_check_interval),
        _spec("DateDiff", "interval, date1, date2", scalar=_datediff, prepare=_check_interval),
        _spec("DateFromNum", "value", scalar=_datefromnum),
        _spec(
            "FormatDateTime",
            "source, dateTimeStyles, inputFormat, outputFormat",
            4,
            optional={1},
            scalar=_formatdatetime,
            prepare=_prepare_formatdatetime,
        ),
        _spec("IgnoreFlowIfNullOrEmpty", "expression", scalar=_ignoreflow),
        _spec("IIF", "condition, valueIfTrue, valueIfFalse", lazy=True, scalar=_iif),
        _spec("InStr", "value1, value2, start, compareType", 2, optional={2, 3}, scalar=_instr, prepare=_prepare_instr),
        _spec("IsNull", "expression", scalar=_isnull),
        _spec("IsNullOrEmpty", "expression", scalar=_isnullorempty),
        _spec("IsPresent", "expression", scalar=_ispresent),
        _spec("IsString", "expression", scalar=_isstring),
        _spec("Item", "attribute, index", scalar=_item),
        _spec("Join", "separator, source", 2, variadic=True, scalar=_join),
        _spec("Left", "String, NumChars", scalar=_left),
        _spec("Mid", "source, start, length", scalar=_mid, prepare=_prepare_mid),
        _spec("NormalizeDiacritics", "source", scalar=_normalize),
        _spec("Not", "source", scalar=_not),
        _spec("NumFromDate", "value", scalar=_numfromdate),
        _spec("PCase", "source, wordSeparators", 1, optional={1}, scalar=_pcase),
        _spec("RemoveDuplicates", "attribute", scalar=_removeduplicates),
        _spec(
            "Replace",
            ", ".join(_REPLACE_PARAMS),
            2,
            optional=set(range(1, 7)),
            scalar=_replace,
            prepare=_prepare_replace,
        ),
        _spec("SingleAppRoleAssignment", "appRoleAssignments", scalar=_single_app_role),
        _spec("Split", "source, delimiter", scalar=_split),
        _spec("StripSpaces", "source", scalar=_stripspaces),
        _spec(
            "Switch",
            "source, defaultValue, key, value",
            4,
            optional={1},
            variadic=True,
            lazy=True,
            scalar=_switch,
            prepare=_prepare_switch,
        ),
        _spec("ToLower", "source, culture", 1, optional={1}, scalar=_case(False), prepare=_prepare_case),
        _spec("ToUpper", "source, culture", 1, optional={1}, scalar=_case(True), prepare=_prepare_case),
        _spec("Word", "String, WordNumber, Delimiters", scalar=_word),
    )
}

UNSUPPORTED: dict[str, str] = {
    "AppRoleAssignmentsComplex": "it provisions several roles to SCIM apps; Salesforce takes one profile",
    "Guid": "it returns a new random value on every evaluation, so every cycle would change the field",
    "Now": "it changes on every evaluation, so every cycle would change the field",
    "RandomString": "it returns a new random value on every evaluation, so every cycle would change the field",
    "Redact": "this product has no redacted log view; leave the attribute out of the mapping instead",
    "SelectUniqueValue": "Entra supports it only for Active Directory targets",
}


def lookup(name: str, position: int) -> FunctionSpec:
    """The spec of function ``name`` or a syntax error that says what was probably meant."""
    spec = FUNCTIONS.get(name)
    if spec is not None:
        return spec
    if name in UNSUPPORTED:
        raise ExpressionSyntaxError(position, f"{name} is not supported: {UNSUPPORTED[name]}")
    lowered = {n.lower(): n for n in FUNCTIONS}
    if name.lower() in lowered:
        raise ExpressionSyntaxError(
            position, f"unknown function {name!r}: did you mean {lowered[name.lower()]}? (names are case-sensitive)"
        )
    close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ExpressionSyntaxError(position, f"unknown function {name!r}{hint}")


def check_call(spec: FunctionSpec, call: Call) -> Static:
    """Arity, required arguments and the function's own literal checks; returns the Static."""
    args = call.args
    count = len(args)
    maximum = None if spec.variadic else len(spec.params)
    if count < spec.min_args or (maximum is not None and count > maximum):
        if maximum is None:
            expected = f"at least {spec.min_args}"
        elif spec.min_args == maximum:
            expected = str(maximum)
        else:
            expected = f"{spec.min_args} to {maximum}"
        raise ExpressionSyntaxError(
            call.position,
            f"{spec.name} takes {expected} argument{'s' if expected != '1' else ''}, found {count}: {spec.signature()}",
        )
    omitted = tuple(isinstance(a, Omitted) for a in args)
    for index, is_omitted in enumerate(omitted):
        param_index = min(index, len(spec.params) - 1) if spec.variadic else index
        if spec.name == "Switch" and index >= 2:
            param_index = 2 + (index % 2)
        if is_omitted and param_index not in spec.optional:
            name = spec.params[param_index]
            raise ExpressionSyntaxError(
                args[index].position,
                f"argument {index + 1} of {spec.name} ({name}) is required: {spec.signature()}",
                expected=name,
            )
    literals = tuple(
        a.value if isinstance(a, Literal) else (None if isinstance(a, Omitted) else NOT_LITERAL) for a in args
    )
    static = Static(call=call, omitted=omitted, literals=literals)
    if spec.prepare is not None:
        spec.prepare(static)
    return static
