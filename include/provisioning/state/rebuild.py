"""What a complete full cycle observed, so its commit replaces (not merges) the memory incremental
cycles rely on (issue 8, case 5; docs/decisions.md "A full cycle rebuilds the state").

An incremental cycle trusts four things the state store remembers: the delta link (where Graph's
changes start), the snapshot (links Entra id -> Salesforce id, the values applied, the roles each
user had), the "seen" users (evaluated, no link, with their roles) and escrow (who waits for a
retry). A full cycle reads every assigned and known user from Graph and every user from the org,
so after it the store must hold exactly what a fresh store would hold after the same cycle: no
link to a Salesforce user the org no longer has (a refreshed sandbox, a restored backup), no
roles older than the ones just read, no escrow entry for a user the cycle did not look at.

Users the cycle held out of its plan (quarantined, waiting for their escrow retry, deactivation
held back by the threshold) keep their snapshot row only when the org still has the Salesforce
user it links to (``held_links``), with the roles just read; every other row not written by the
commit is deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SALESFORCE_ID_KEY = 15
"""Salesforce ids compare on their first 15 characters (the 18-character form adds a
case-insensitive checksum; "What are Salesforce IDs composed of?", Salesforce Help)."""


@dataclass(frozen=True)
class FullObservation:
    """What a complete full cycle (not a slice, one user, a dry run or a stopped cycle) saw
    besides its plan; ``StateStore.commit_cycle`` rebuilds the incremental memory from it."""

    held_links: Mapping[str, str] = field(default_factory=dict)
    """Entra id -> the 18-character Salesforce Id, for users held out of the plan whose
    snapshot link the org confirmed (see ``held_links``)."""
    evaluated: frozenset[str] = frozenset()
    """Entra ids of every user the cycle extracted (the USERS frame and the quarantined)."""

    def to_json(self) -> dict[str, object]:
        """The links only: ``evaluated`` is known again from the USERS frame at commit."""
        return {"held_links": dict(self.held_links)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FullObservation:
        links = data.get("held_links") or {}
        if not isinstance(links, Mapping):
            raise ValueError(f"full observation: held_links must be an object, not {type(links).__name__}")
        return cls({str(k): str(v) for k, v in links.items()})


def held_links(
    held: Collection[str], snapshot_links: Iterable[tuple[str, str | None]], org_ids: Iterable[str]
) -> dict[str, str]:
    """The snapshot links of ``held`` users that point at a user the org has.

    ``snapshot_links``: (Entra id, Salesforce id) pairs as the snapshot holds them;
    ``org_ids``: every Salesforce user Id the full cycle read from the org (15 or 18 characters).
    Returns Entra id -> the org's Id for that user."""
    by_key = {str(sf_id)[:SALESFORCE_ID_KEY]: str(sf_id) for sf_id in org_ids if sf_id}
    found: dict[str, str] = {}
    for entra_id, sf_id in snapshot_links:
        if entra_id in held and sf_id:
            org_id = by_key.get(str(sf_id)[:SALESFORCE_ID_KEY])
            if org_id is not None:
                found[entra_id] = org_id
    return found


def stale_rows(stored: Iterable[str], kept: Collection[str]) -> list[str]:
    """Entra ids of snapshot rows the full cycle neither wrote nor confirmed, sorted."""
    return sorted(entra_id for entra_id in stored if entra_id not in kept)


def not_evaluated(escrowed: Iterable[str], evaluated: Collection[str]) -> list[str]:
    """Escrowed users the full cycle did not extract at all (neither assigned nor remembered any
    more): a fresh store would not know them, so their entries go."""
    return sorted(entra_id for entra_id in escrowed if entra_id not in evaluated)


def held_roles(links: Mapping[str, str], roles: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The roles just read for held users whose link stays (users quarantined for their roles are
    not in the USERS frame; their stored roles are left as they are)."""
    return {entra_id: list(roles[entra_id]) for entra_id in links if entra_id in roles}
