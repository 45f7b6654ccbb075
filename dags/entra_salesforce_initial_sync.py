"""A tenant's initial sync as an Airflow backfill, one month of assignments per run.

Thin wiring: the same tasks as the 20-minute DAG (``plugins/entra_provisioning/dag_factory.py``),
each run restricted to the users whose assignment to the app was created in its data interval
(``include/provisioning/slices.py``).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable
from entra_provisioning.dag_factory import provisioning_dag

DOC_MD = """
### Entra ID → Salesforce initial sync, by backfill

Provisions a tenant's history month by month, so a large first sync is a row of runs in the grid
that a person can watch, retry and re-run, instead of one long cycle:

```
airflow backfill create --dag-id entra_salesforce_initial_sync \\
    --from-date 2018-01-01 --to-date 2026-11-30 --max-active-runs 1
```

Each run takes the users whose assignment (direct, or their group's) was created in its month, plus
older assigned users no cycle has evaluated yet (so the first month takes everything older). A run
never deactivates anyone outside its slice and saves no delta link; re-running a month changes
nothing. Runs wait for the writer lease, so they never overlap the 20-minute DAG's cycles; with
`--max-active-runs 1` they run in order. Scheduled runs of this DAG skip: it is run by backfill.

Afterwards the 20-minute DAG `entra_salesforce_provisioning` starts with a full cycle (no delta link
was saved) that finds the users in place and deactivates anyone no longer assigned.
"""

dag = provisioning_dag(
    "entra_salesforce_initial_sync",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    doc_md=DOC_MD,
    description="Initial sync of a tenant's Salesforce users, one month of Entra assignments per backfill run",
    tags=["provisioning", "entra-id", "salesforce", "initial-sync"],
    slices=True,
)
