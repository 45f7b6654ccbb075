"""Identifiers in the real services' shapes, drawn from a seeded RNG so files repeat byte for byte.

Salesforce ids are 15 case-sensitive characters (3-char key prefix, 2-char pod, a reserved
digit, 9 base-62 digits) plus a 3-character suffix that makes them case-insensitively unique:
for each 5-character chunk, bit ``i`` is set when character ``i`` is an upper-case letter, and
the 5-bit value indexes ``A..Z0..5``. Engines that compare ids case-insensitively, and the
emulator's id validation, rely on that suffix being right.
"""

from __future__ import annotations

import base64
import random
import uuid

from include.sandbox.salesforce.validation import id_suffix

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VARIANT = "89ab"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~"


def salesforce_checksum(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character Salesforce id (the emulator's own rule)."""
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 significant characters, got {id15!r}")
    return id_suffix(id15)


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    if number:
        raise ValueError(f"number does not fit in {width} base-62 digits")
    return "".join(reversed(digits))


class SalesforceIds:
    """Sequential record ids per key prefix, all on one pod, like a real org's."""

    def __init__(self, rng: random.Random) -> None:
        self.pod = rng.choice("0123456789") + rng.choice(_BASE62)
        self._next: dict[str, int] = {}
        self._rng = rng

    def new(self, prefix: str) -> str:
        if prefix not in self._next:
            # Start deep in the 9-digit range so ids mix digits, upper and lower case letters.
            self._next[prefix] = self._rng.randrange(62**6, 62**7)
        number = self._next[prefix]
        self._next[prefix] = number + self._rng.randrange(1, 40)
        id15 = f"{prefix}{self.pod}0{base62(number, 9)}"
        return id15 + salesforce_checksum(id15)


def guid(rng: random.Random) -> str:
    """A version-4 GUID string (Entra object ids, app ids, role ids)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def app_role_assignment_id(rng: random.Random, principal_id: str) -> str:
    """Graph's opaque assignment id: base64url of the principal's GUID bytes, then 16 more bytes.

    Real ids (e.g. ``41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE``) are 43 characters and start
    with the principal's object id in little-endian byte order.
    """
    raw = uuid.UUID(principal_id).bytes_le + rng.getrandbits(128).to_bytes(16, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def secret(rng: random.Random, length: int, alphabet: str = _SECRET_ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def entra_client_secret(rng: random.Random) -> str:
    """Entra client secrets look like ``abc8Q~`` followed by 34 characters."""
    return secret(rng, 3) + "8Q~" + secret(rng, 34)


def consumer_key(rng: random.Random) -> str:
    """Connected-app consumer keys start with ``3MVG9`` and run to 85 characters."""
    return "3MVG9" + secret(rng, 80, _BASE62 + "._")
