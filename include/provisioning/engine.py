"""``Engine``: everything a cycle needs, built once from settings (CLI) or Airflow connections (hooks).

It also owns the two things every stage shares within one process: the Salesforce session
(logged in once, re-used by the stages the CLI runs in one process; each Airflow task logs in
for itself) and the writer lease's holder, renewed at the start of every stage so a holder that
stalls or dies loses the lease instead of blocking writers forever.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from include.provisioning.graph.settings import GraphSettings
from include.provisioning.salesforce.settings import SalesforceSettings
from include.provisioning.settings import DEFAULT_SUITE_PATH, SyncOptions
from include.provisioning.state.lease import DEFAULT_LEASE_TTL

if TYPE_CHECKING:
    from include.provisioning.mapping import MappingTable
    from include.provisioning.salesforce.client import SalesforceSession
    from include.provisioning.state import StateStore

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    """Default progress sink: say nothing."""


@dataclass
class Engine:
    graph: GraphSettings
    salesforce: SalesforceSettings
    state: StateStore
    table: MappingTable
    options: SyncOptions = field(default_factory=SyncOptions)
    suite_path: Path = DEFAULT_SUITE_PATH
    progress: Progress = _quiet
    lease_holder: str | None = None
    """Who holds the writer lease for the cycle this engine runs (None: no lease in use)."""
    lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL
    _session: SalesforceSession | None = field(default=None, repr=False)

    def salesforce_session(self) -> SalesforceSession:
        """Log in on first use; the same session afterwards (it logs in again by itself when
        Salesforce says the session expired)."""
        if self._session is None:
            # Imported here: simple-salesforce, requests and PyJWT are for the stages that talk to
            # Salesforce, not for every task process that builds an engine.
            from include.provisioning.salesforce.client import connect

            self._session = connect(self.salesforce)
        return self._session

    def check_lease(self) -> None:
        """Renew the writer lease (``LeaseLostError`` when another writer has taken it)."""
        if self.lease_holder is not None:
            self.state.renew_lease(self.lease_holder, ttl=self.lease_ttl)
