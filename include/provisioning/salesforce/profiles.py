"""Profile names (the app role a user holds in Entra) → Salesforce ProfileIds.

Entra's Salesforce connector sends the role's *value*, which names a Profile; Salesforce wants
the Profile's Id. The match ignores case (Salesforce's own lookups of names do) but nothing
else: a role "Standard User " with a trailing space is not "Standard User", and silently
trimming it would hide a misconfigured app role. When two profiles differ only in case the
exact spelling wins; if none is exact the name is ambiguous and the row fails.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

PROFILE_NAME = "ProfileName"
PROFILE_ID = "ProfileId"
KNOWN_SHOWN = 25
"""Profile names listed in an error message; more are summarised as "... and N more"."""


def _known(names: list[str]) -> str:
    shown = ", ".join(names[:KNOWN_SHOWN])
    return shown if len(names) <= KNOWN_SHOWN else f"{shown}, ... and {len(names) - KNOWN_SHOWN} more"


def resolve_profiles(mapped: pd.DataFrame, profiles: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Replace the ``ProfileName`` column by ``ProfileId``.

    Returns the frame without the rows that failed, and ``{entra id: [reason]}`` for those:
    an empty profile name, or a name no Profile has. A frame without ``ProfileName`` (a mapping
    that does not set the profile) comes back unchanged.
    """
    if PROFILE_NAME not in mapped.columns:
        return mapped, {}
    by_folded: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for profile_id, name in zip(profiles["Id"], profiles["Name"], strict=True):
        if name is not None and not pd.isna(name):
            by_folded[str(name).casefold()].append((str(name), str(profile_id)))
    known = _known(sorted({name for pairs in by_folded.values() for name, _ in pairs}, key=lambda n: (n.casefold(), n)))

    if PROFILE_ID in mapped.columns:
        raise ValueError(f"the mapped frame has both {PROFILE_NAME} and {PROFILE_ID}; map only one of them")
    names = mapped[PROFILE_NAME]
    present = names.dropna()
    resolved = {name: _lookup(str(name), by_folded) for name in pd.unique(present[present != ""])}
    ids = names.map(resolved).astype(object)
    ids = ids.where(ids.notna(), None)
    errors: dict[str, list[str]] = {}
    failing = ids.isna()
    for entra_id, raw in zip(mapped.loc[failing, "id"], names[failing], strict=True):
        errors[str(entra_id)] = [_reason(raw, by_folded, known)]

    result = mapped.copy()
    position = result.columns.get_loc(PROFILE_NAME)
    result = result.drop(columns=[PROFILE_NAME])
    result.insert(position, PROFILE_ID, ids)
    if errors:
        result = result[~failing]
    return result, errors


def _reason(raw: object, by_folded: dict[str, list[tuple[str, str]]], known: str) -> str:
    if raw is None or (not isinstance(raw, str) and pd.isna(raw)) or raw == "":
        return "no Salesforce profile: the user's app role gives no profile name"
    name = str(raw)
    candidates = by_folded.get(name.casefold(), [])
    if len(candidates) > 1:
        spelled = ", ".join(repr(n) for n, _ in candidates)
        return f"profile {name!r} is ambiguous in Salesforce (its spellings differ only in case: {spelled})"
    return f"profile {name!r} does not exist in Salesforce (known: {known})"


def _lookup(name: str, by_folded: dict[str, list[tuple[str, str]]]) -> str | None:
    candidates = by_folded.get(name.casefold(), [])
    if len(candidates) == 1:
        return candidates[0][1]
    exact = [profile_id for spelled, profile_id in candidates if spelled == name]
    return exact[0] if len(exact) == 1 else None
