"""Entra ID → Salesforce user provisioning, every 20 minutes (the product's main DAG).

Thin wiring: the tasks come from ``plugins/entra_provisioning/dag_factory.py``, the work from the
engine in ``include/provisioning/``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable
from entra_provisioning.dag_factory import provisioning_dag

DOC_MD = """
### Entra ID → Salesforce user provisioning

Every 20 minutes this DAG reconciles Salesforce users with the users assigned to the Salesforce
enterprise app in Microsoft Entra ID: creates, updates, deactivations and reactivations, the app role
becoming the Profile, as Entra's automatic provisioning does.

| task | what it does |
| --- | --- |
| `begin_cycle` | waits (reschedule mode) for the writer lease in the state store, opens or resumes this run's cycle |
| `extract` | assigned users from Microsoft Graph (delta when possible) → `users.parquet` |
| `validate` | Great Expectations suite; bad rows quarantined with reasons; GX result + Data Docs under the run's path |
| `transform` | the mapping table (Entra's expression language) → Salesforce `User` fields |
| `plan` | diff against the org (full) or the snapshot (incremental); the accidental-deletion threshold |
| `load` | Bulk API 2.0 jobs; resumes its own jobs when re-run |
| `commit` | one transaction: provisioning log, snapshot, escrow, quarantine, delta link |
| `notify` | e-mails the report to `provisioning_notification_email` when anything failed or was held back |
| `end_cycle` | teardown: closes an uncommitted cycle, releases the lease |

**Params**: `mode` (auto | full | incremental), `dry_run`, `approve_deactivations`, `user` (provision one
user on demand). **Connections**: `msgraph_default`, `salesforce_default`, `provisioning_state`,
`smtp_default`. **Variables**: `provisioning_notification_email`, `entra_service_principal_id`,
`provisioning_*` thresholds.

Clearing any task re-runs it and converges: the run resumes its uncommitted cycle under the lease;
a committed cycle is final (clear from `extract` to run a new one).
"""

dag = provisioning_dag(
    "entra_salesforce_provisioning",
    schedule=CronDataIntervalTimetable("*/20 * * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    doc_md=DOC_MD,
    description="Provision Salesforce users from Microsoft Entra ID every 20 minutes",
    tags=["provisioning", "entra-id", "salesforce"],
)
