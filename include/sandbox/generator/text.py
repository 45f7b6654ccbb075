"""ASCII folding of names into UPN parts.

UPNs must be ASCII, and admins fold names the way Entra's ``NormalizeDiacritics`` does: strip
combining marks (é → e, ü → u) rather than the German ü → ue convention. Letters that are not
a base letter plus a mark (ß, æ, ø, ł, đ, þ, ð, œ) do not decompose, so they need an explicit
table or they would silently vanish.
"""

from __future__ import annotations

import re
import unicodedata

_NO_DECOMPOSITION = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "Ø": "O",
        "ø": "o",
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Þ": "Th",
        "þ": "th",
        "Ð": "D",
        "ð": "d",
        "ı": "i",
    }
)
_NOT_UPN_PART = re.compile(r"[^a-z-]+")
_DASHES = re.compile(r"-{2,}")


def ascii_fold(text: str) -> str:
    """Remove diacritics; characters with no ASCII base (CJK, Cyrillic...) are dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_NO_DECOMPOSITION))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def upn_part(name: str) -> str:
    """One name as it appears in ``first.last@domain``: lower-case ASCII letters and hyphens.

    Spaces and apostrophes are dropped ("van 't Hof" → "vanthof", "O'Brien" → "obrien").
    Digits are dropped too, so a folded base never ends in a digit and the ``<n>`` suffix the
    generator appends for duplicates can never collide with another person's base.
    """
    folded = _NOT_UPN_PART.sub("", ascii_fold(name).lower())
    return _DASHES.sub("-", folded).strip("-")
