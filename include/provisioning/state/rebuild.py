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
user it links to (``held_rows``), with the values the org holds and the roles just read; every
other row not written by the commit is deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from include.provisioning.model import salesforce_id_key
from include.provisioning.state.codec import plain, to_bool


@dataclass(frozen=True)
class HeldRow:
    """A held user's confirmed link and what the org holds for the fields the product manages."""

    sf_id: str
    """The 18-character Salesforce Id, as the org gave it."""
    fields: Mapping[str, Any]
    """Field name -> value as read from the org (Bulk's strings; nulls None), ``IsActive`` included."""

    @property
    def is_active(self) -> bool:
        return to_bool(self.fields.get("IsActive"), default=True)


@dataclass(frozen=True)
class FullObservation:
    """What a complete full cycle (not a slice, one user, a dry run or a stopped cycle) saw
    besides its plan; ``StateStore.commit_cycle`` rebuilds the incremental memory from it."""

    held: Mapping[str, HeldRow] = field(default_factory=dict)
    """Entra id -> the org's row, for users held out of the plan whose snapshot link the org
    confirmed (see ``held_rows``)."""
    evaluated: frozenset[str] = frozenset()
    """Entra ids of every user the cycle extracted (the USERS frame and the quarantined)."""

    def to_json(self) -> dict[str, object]:
        """The held rows only: ``evaluated`` is known again from the USERS frame at commit."""
        return {"held": {k: {"sf_id": v.sf_id, "fields": dict(v.fields)} for k, v in self.held.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FullObservation:
        held = data.get("held") or {}
        if not isinstance(held, Mapping):
            raise ValueError(f"full observation: held must be an object, not {type(held).__name__}")
        return cls({str(k): HeldRow(str(v["sf_id"]), dict(v.get("fields") or {})) for k, v in held.items()})


def held_rows(
    held: Collection[str], snapshot_links: Iterable[tuple[str, str | None]], org: pd.DataFrame
) -> dict[str, HeldRow]:
    """The snapshot links of ``held`` users that point at a user the org has, with that user's
    values.

    ``snapshot_links``: (Entra id, Salesforce id) pairs as the snapshot holds them; ``org``: the
    ORG frame (``Id`` plus the managed fields) the full cycle read; only its rows of held users
    are turned into records (the org may hold a million users)."""
    wanted: dict[str, str] = {}
    for entra_id, sf_id in snapshot_links:
        if entra_id in held and isinstance(sf_id, str) and sf_id:
            wanted[salesforce_id_key(sf_id)] = entra_id
    if not wanted or org.empty:
        return {}
    keys = org["Id"].astype(object).map(lambda value: salesforce_id_key(str(value)))
    found: dict[str, HeldRow] = {}
    for record in org[keys.isin(wanted).to_numpy()].to_dict("records"):
        org_id = str(record.pop("Id"))
        fields = {str(name): plain(value) for name, value in record.items()}
        found[wanted[salesforce_id_key(org_id)]] = HeldRow(org_id, fields)
    return found


def stale_rows(stored: Iterable[str], kept: Collection[str]) -> list[str]:
    """Entra ids of snapshot rows the full cycle neither wrote nor confirmed, sorted."""
    return sorted(entra_id for entra_id in stored if entra_id not in kept)


def not_evaluated(escrowed: Iterable[str], evaluated: Collection[str]) -> list[str]:
    """Escrowed users the full cycle did not extract at all (neither assigned nor remembered any
    more): a fresh store would not know them, so their entries go."""
    return sorted(entra_id for entra_id in escrowed if entra_id not in evaluated)


def held_roles(held: Mapping[str, HeldRow], roles: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The roles just read for held users whose link stays (users quarantined for their roles are
    not in the USERS frame; their stored roles are left as they are)."""
    return {entra_id: list(roles[entra_id]) for entra_id in held if entra_id in roles}
