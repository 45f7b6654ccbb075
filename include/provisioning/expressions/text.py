"""Text transformations with .NET's semantics rather than Python's.

* Case mapping is per character (Unicode *simple* case mapping, what .NET's invariant culture
  does): ``ToUpper("straße")`` is ``"STRAßE"``, not Python's ``"STRASSE"``; lengths never
  change, so positions (InStr) stay valid. ``tr``/``az`` cultures map the dotted and dotless i.
* NormalizeDiacritics strips accents from Latin letters only (Entra's table is all Latin):
  Japanese dakuten or Cyrillic й are letters of their own, not accents.
* PCase follows .NET ``ToTitleCase`` over a lower-cased string, with the documented default
  separator categories, or only the characters given.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

_CASED_LIMIT = 0x20000
"""Every cased letter in Unicode lives below this (the last block is Adlam, U+1E900)."""


@cache
def _upper_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(_CASED_LIMIT):
        char = chr(cp)
        upper = char.upper()
        if upper == char:
            continue
        if len(upper) == 1:
            table[cp] = upper
        else:
            # Full mapping expands (ß → SS); the simple mapping is the title case form when that
            # is one character (ᾳ → ᾼ), else the character itself.
            title = char.title()
            if len(title) == 1 and title != char:
                table[cp] = title
    return table


@cache
def _lower_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(_CASED_LIMIT):
        char = chr(cp)
        lower = char.lower()
        if lower != char and len(lower) == 1:
            table[cp] = lower
    table[0x130] = "i"  # İ: the only character whose full lower mapping expands
    return table


_TURKIC_UPPER = {ord("i"): "İ", ord("ı"): "I"}
_TURKIC_LOWER = {ord("I"): "ı", ord("İ"): "i"}
_CULTURE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def check_culture(culture: str) -> str | None:
    """None if ``culture`` is an RFC 4646 name (``en-US``, ``tr-TR``), else the reason."""
    if not _CULTURE_RE.match(culture):
        return f"culture {culture!r} is not a culture name such as 'en-US' or 'tr-TR'"
    return None


def is_turkic(culture: str | None) -> bool:
    return bool(culture) and culture.split("-", 1)[0].lower() in ("tr", "az")  # type: ignore[union-attr]


def to_upper(text: str, culture: str | None = None) -> str:
    if is_turkic(culture):
        text = text.translate(_TURKIC_UPPER)
    if text.isascii():
        return text.upper()
    return text.translate(_upper_table())


def to_lower(text: str, culture: str | None = None) -> str:
    if is_turkic(culture):
        text = text.translate(_TURKIC_LOWER)
    if text.isascii():
        return text.lower()
    return text.translate(_lower_table())


# NormalizeDiacritics: Entra's table, plus every precomposed Latin letter whose canonical
# decomposition is an ASCII letter and combining accents.
_SPECIAL = {
    "æ": "ae",
    "Æ": "AE",
    "ǣ": "ae",
    "Ǣ": "AE",
    "ø": "oe",
    "Ø": "OE",
    "ǿ": "oe",
    "Ǿ": "OE",
    "œ": "oe",
    "Œ": "OE",
    "ß": "ss",
    "ł": "l",
    "Ł": "L",
    "ı": "i",
    "đ": "d",
    "Đ": "D",
}
_COMBINING_AFTER_ASCII = re.compile(r"(?<=[A-Za-z])[\u0300-\u036f]+")


@cache
def _diacritics_table() -> dict[int, str]:
    table: dict[int, str] = {ord(k): v for k, v in _SPECIAL.items()}
    for lo, hi in ((0x00C0, 0x024F), (0x1E00, 0x1EFF)):
        for cp in range(lo, hi + 1):
            if cp in table:
                continue
            decomposed = unicodedata.normalize("NFD", chr(cp))
            base, marks = decomposed[0], decomposed[1:]
            if base.isascii() and base.isalpha() and marks and all("\u0300" <= m <= "\u036f" for m in marks):
                table[cp] = base
    return table


def normalize_diacritics(text: str) -> str:
    if text.isascii():
        return text
    text = text.translate(_diacritics_table())
    # Decomposed input ("e" + U+0301) keeps its marks after translate: drop those on ASCII letters.
    return _COMBINING_AFTER_ASCII.sub("", text)


_SEPARATOR_CATEGORIES = frozenset(
    ("Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So")
)


def _is_default_separator(char: str) -> bool:
    return unicodedata.category(char) in _SEPARATOR_CATEGORIES


def proper_case(text: str, separators: str | None = None) -> str:
    """PCase: first character of each word upper, the rest lower."""
    out: list[str] = []
    start = True
    upper, lower = _upper_table(), _lower_table()
    for char in text:
        is_sep = (char in separators) if separators is not None else _is_default_separator(char)
        if is_sep:
            out.append(char)
            start = True
            continue
        out.append(upper.get(ord(char), char) if start else lower.get(ord(char), char))
        start = False
    return "".join(out)
