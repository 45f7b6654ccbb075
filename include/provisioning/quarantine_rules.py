"""When the provisioning job is quarantined, as Entra decides it (Microsoft Learn, "Application
provisioning in quarantine status" and "How provisioning works": escrow and quarantine):

- ``EncounteredEscrowProportionThreshold``: a cycle's failed writes reach ``quarantine_min_failures``
  (5,000) and are more than ``quarantine_failure_share`` (40 %) of its writes or more than
  ``quarantine_failure_count`` (40,000);
- ``AuthenticationFailed`` (Entra: credentials no longer valid): ``quarantine_auth_failures`` (2)
  consecutive runs failed to authenticate.

Automatic runs then wait ``quarantine_backoff_hours`` (24, Entra's "once a day").
"""

from __future__ import annotations

from dataclasses import dataclass

from include.provisioning.model import CycleSummary
from include.provisioning.settings import SyncOptions
from include.provisioning.shares import percent, percent_of

ESCROW_THRESHOLD = "EncounteredEscrowProportionThreshold"
AUTHENTICATION = "AuthenticationFailed"


@dataclass(frozen=True)
class Verdict:
    code: str
    reason: str


def after_cycle(summary: CycleSummary, failed: int, written: int, options: SyncOptions) -> Verdict | None:
    """The quarantine a cycle with ``failed`` of ``written`` writes failing calls for, or None."""
    if failed < options.quarantine_min_failures or written == 0:
        return None
    share = failed / written
    if share > options.quarantine_failure_share or failed > options.quarantine_failure_count:
        return Verdict(
            ESCROW_THRESHOLD,
            f"cycle {summary.cycle_id}: {failed:,} of {written:,} writes failed "
            f"({percent_of(share, options.quarantine_failure_share)}; quarantine above "
            f"{percent(options.quarantine_failure_share)} or {options.quarantine_failure_count:,} failures, from "
            f"{options.quarantine_min_failures:,})",
        )
    return None


def after_auth_failure(consecutive: int, message: str, options: SyncOptions) -> Verdict | None:
    """The quarantine ``consecutive`` runs failing to authenticate call for, or None."""
    if consecutive < options.quarantine_auth_failures:
        return None
    return Verdict(AUTHENTICATION, f"{consecutive} consecutive runs could not authenticate: {message}")
