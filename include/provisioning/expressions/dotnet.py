""".NET regular expressions and date formats, translated to Python.

Entra evaluates expressions in .NET: Replace's patterns use .NET regex syntax (named groups
``(?<name>...)``, replacements ``${name}``/``$1``) and FormatDateTime uses .NET custom date
format strings (``yyyy-MM-dd``). Both are translated once per expression, at parse time when
the argument is a literal, so a bad pattern is a load error with a position, not a
million per-row failures.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache

# --- regular expressions -------------------------------------------------------------------

_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?![=!])([A-Za-z_]\w*)>")
_NAMED_GROUP_QUOTED = re.compile(r"(?<!\\)\(\?'([A-Za-z_]\w*)'")
_BACKREF = re.compile(r"\\k<([A-Za-z_]\w*)>")


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a .NET pattern; raises ``re.error`` with Python's reason when it is invalid."""
    translated = _NAMED_GROUP.sub(r"(?P<\1>", pattern)
    translated = _NAMED_GROUP_QUOTED.sub(r"(?P<\1>", translated)
    translated = _BACKREF.sub(r"(?P=\1)", translated)
    return re.compile(translated)


_REPLACEMENT_TOKEN = re.compile(r"\$(?:\$|&|\{(\w+)\}|(\d+))")


@lru_cache(maxsize=256)
def replacement_function(replacement: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` callable for a .NET replacement string (``${name}``, ``$1``, ``$$``, ``$&``).

    A reference to a group that does not exist is kept as literal text, as .NET does.
    """
    parts: list[str | tuple[str | int, str]] = []
    last = 0
    for m in _REPLACEMENT_TOKEN.finditer(replacement):
        parts.append(replacement[last : m.start()])
        token = m.group(0)
        if token == "$$":
            parts.append("$")
        elif token == "$&":
            parts.append((0, token))
        elif m.group(1) is not None:
            name = m.group(1)
            parts.append((int(name) if name.isdigit() else name, token))
        else:
            parts.append((int(m.group(2)), token))
        last = m.end()
    parts.append(replacement[last:])

    if all(isinstance(p, str) for p in parts):
        constant = "".join(p for p in parts if isinstance(p, str))
        return lambda _m: constant

    def substitute(match: re.Match[str]) -> str:
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            ref, literal = part
            try:
                out.append(match.group(ref) or "")
            except IndexError:  # no such group: .NET keeps the text as written
                out.append(literal)
        return "".join(out)

    return substitute


# --- dates -----------------------------------------------------------------------------------

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STANDARD = {
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
}
_SPECIFIERS = "yMdHhmsfFtzK"


@lru_cache(maxsize=256)
def tokenize_format(fmt: str) -> tuple[tuple[str, int | str], ...]:
    """Split a .NET custom date format into (specifier, repeat) and ("lit", text) tokens."""
    if len(fmt) == 1:
        if fmt in _STANDARD:
            fmt = _STANDARD[fmt]
        elif fmt not in _SPECIFIERS:
            raise ValueError(
                f"standard date format {fmt!r} is not supported; write a custom format such as 'yyyy-MM-dd'"
            )
    tokens: list[tuple[str, int | str]] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char in "'\"":
            end = fmt.find(char, i + 1)
            if end == -1:
                raise ValueError(f"date format {fmt!r}: quote at {i + 1} is not closed")
            tokens.append(("lit", fmt[i + 1 : end]))
            i = end + 1
        elif char == "\\":
            if i + 1 >= len(fmt):
                raise ValueError(f"date format {fmt!r} ends with a backslash")
            tokens.append(("lit", fmt[i + 1]))
            i += 2
        elif char == "%":
            i += 1
        elif char in _SPECIFIERS:
            j = i
            while j < len(fmt) and fmt[j] == char:
                j += 1
            count = j - i
            if char in "fF" and count > 7:
                raise ValueError(f"date format {fmt!r}: at most 7 '{char}'")
            tokens.append((char, count))
            i = j
        else:
            tokens.append(("lit", char))
            i += 1
    return tuple(tokens)


def _pattern_for(token: tuple[str, int | str]) -> str:
    kind, count = token
    if kind == "lit":
        return re.escape(str(count))
    assert isinstance(count, int)
    if kind == "y":
        return r"(?P<y>\d{4})" if count >= 3 else (r"(?P<yy>\d{2})" if count == 2 else r"(?P<yy>\d{1,2})")
    if kind == "M":
        if count >= 4:
            return "(?P<Mname>" + "|".join(_MONTHS) + ")"
        if count == 3:
            return "(?P<Mabbr>" + "|".join(m[:3] for m in _MONTHS) + ")"
        return r"(?P<M>\d{2})" if count == 2 else r"(?P<M>\d{1,2})"
    if kind == "d":
        if count >= 3:
            return "(?:" + "|".join(_DAYS if count >= 4 else tuple(d[:3] for d in _DAYS)) + ")"
        return r"(?P<d>\d{2})" if count == 2 else r"(?P<d>\d{1,2})"
    if kind in "Hhms":
        group = {"H": "H", "h": "h", "m": "mi", "s": "s"}[kind]
        return rf"(?P<{group}>\d{{2}})" if count >= 2 else rf"(?P<{group}>\d{{1,2}})"
    if kind == "f":
        return rf"(?P<f>\d{{{count}}})"
    if kind == "F":
        return rf"(?P<f>\d{{0,{count}}})"
    if kind == "t":
        return "(?P<tt>AM|PM|am|pm)" if count >= 2 else "(?P<tt>A|P|a|p)"
    if kind == "z":
        return r"(?P<z>[+-]\d{2}:\d{2})" if count >= 3 else r"(?P<z>[+-]\d{1,2})"
    if kind == "K":
        return r"(?P<z>Z|[+-]\d{2}:\d{2})?"
    raise ValueError(kind)


@lru_cache(maxsize=256)
def _parser(fmt: str) -> re.Pattern[str]:
    seen: set[str] = set()
    parts = []
    for token in tokenize_format(fmt):
        pattern = _pattern_for(token)
        group = re.match(r"\(\?P<(\w+)>", pattern)
        if group and group.group(1) in seen:
            # A specifier repeated (e.g. ``dd`` twice): match but do not capture again.
            pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern, count=1)
        elif group:
            seen.add(group.group(1))
        parts.append(pattern)
    return re.compile(r"\s*" + "".join(parts) + r"\s*")


def _offset(text: str) -> dt.timezone:
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    hours, _, minutes = text[1:].partition(":")
    return dt.timezone(sign * dt.timedelta(hours=int(hours), minutes=int(minutes or 0)))


def parse_with_format(text: str, fmt: str) -> dt.datetime | None:
    """Parse ``text`` with a .NET custom format; None when it does not match."""
    m = _parser(fmt).fullmatch(text)
    if not m:
        return None
    g = m.groupdict()
    year = int(g["y"]) if g.get("y") else None
    if year is None and g.get("yy"):
        yy = int(g["yy"])
        year = 2000 + yy if yy <= 49 else 1900 + yy  # .NET's TwoDigitYearMax is 2049
    if g.get("Mname"):
        month = _MONTHS.index(g["Mname"]) + 1
    elif g.get("Mabbr"):
        month = [mo[:3] for mo in _MONTHS].index(g["Mabbr"]) + 1
    else:
        month = int(g["M"]) if g.get("M") else 1
    day = int(g["d"]) if g.get("d") else 1
    if g.get("H"):
        hour = int(g["H"])
    elif g.get("h"):
        hour = int(g["h"]) % 12
        if (g.get("tt") or "A")[0] in "Pp":
            hour += 12
    else:
        hour = 0
    fraction = (g.get("f") or "").ljust(6, "0")[:6]
    try:
        value = dt.datetime(
            year or 1, month, day, hour, int(g.get("mi") or 0), int(g.get("s") or 0), int(fraction or 0)
        )
    except ValueError:
        return None
    if g.get("z"):
        value = value.replace(tzinfo=_offset(g["z"]))
    return value


def format_with(value: dt.datetime, fmt: str) -> str:
    """Format ``value`` with a .NET custom format."""
    out: list[str] = []
    for kind, count in tokenize_format(fmt):
        if kind == "lit":
            out.append(str(count))
            continue
        assert isinstance(count, int)
        if kind == "y":
            out.append(
                f"{value.year:04d}"
                if count >= 3
                else (f"{value.year % 100:02d}" if count == 2 else str(value.year % 100))
            )
        elif kind == "M":
            name = _MONTHS[value.month - 1]
            out.append(name if count >= 4 else name[:3] if count == 3 else f"{value.month:0{count}d}")
        elif kind == "d":
            name = _DAYS[value.weekday()]
            out.append(name if count >= 4 else name[:3] if count == 3 else f"{value.day:0{count}d}")
        elif kind == "H":
            out.append(f"{value.hour:0{min(count, 2)}d}")
        elif kind == "h":
            out.append(f"{value.hour % 12 or 12:0{min(count, 2)}d}")
        elif kind == "m":
            out.append(f"{value.minute:0{min(count, 2)}d}")
        elif kind == "s":
            out.append(f"{value.second:0{min(count, 2)}d}")
        elif kind in "fF":
            digits = f"{value.microsecond:06d}0"[:count]
            out.append(digits if kind == "f" else digits.rstrip("0"))
        elif kind == "t":
            ampm = "AM" if value.hour < 12 else "PM"
            out.append(ampm if count >= 2 else ampm[0])
        elif kind in "zK":
            offset = value.utcoffset()
            if offset is None:
                out.append("" if kind == "K" else "+00:00" if count >= 3 else "+00" if count == 2 else "+0")
                continue
            if kind == "K" and offset == dt.timedelta(0) and value.tzinfo is dt.UTC:
                out.append("Z")
                continue
            minutes = int(offset.total_seconds() // 60)
            sign = "-" if minutes < 0 else "+"
            hours, mins = divmod(abs(minutes), 60)
            out.append(
                f"{sign}{hours:02d}:{mins:02d}"
                if count >= 3 or kind == "K"
                else f"{sign}{hours:02d}"
                if count == 2
                else f"{sign}{hours}"
            )
    return "".join(out)


# CDate: the forms Entra's examples use (ISO 8601 with or without time and offset, and the
# M/d/yyyy h:mm:ss tt form Entra itself prints).
_ISO = re.compile(
    r"\s*(?P<y>\d{4})-(?P<M>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?)?)?"
    r"\s*(?P<z>Z|[+-]\d{2}:?\d{2})?\s*"
)
_US = re.compile(
    r"\s*(?P<M>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<tt>AM|PM|am|pm)?)?\s*"
)


def parse_cdate(text: str) -> dt.datetime | None:
    """CDate: a UTC DateTime from text; a value without an offset is taken as UTC."""
    m = _ISO.fullmatch(text)
    if m:
        g = m.groupdict()
        hour = int(g["H"] or 0)
    else:
        m = _US.fullmatch(text)
        if not m:
            return None
        g = m.groupdict()
        hour = int(g["h"] or 0)
        if g["tt"]:
            hour = hour % 12 + (12 if g["tt"].upper() == "PM" else 0)
    fraction = (g.get("f") or "").ljust(6, "0")[:6]
    try:
        value = dt.datetime(
            int(g["y"]), int(g["M"]), int(g["d"]), hour, int(g["mi"] or 0), int(g["s"] or 0), int(fraction or 0)
        )
    except ValueError:
        return None
    z = g.get("z")
    if z and z != "Z" and ":" not in z:
        z = f"{z[:3]}:{z[3:]}"
    value = value.replace(tzinfo=_offset(z) if z else dt.UTC)
    return value.astimezone(dt.UTC)
