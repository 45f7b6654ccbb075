"""The sync engine: Entra ID users → Salesforce users, one cycle at a time.

Plain Python without Airflow imports, so it runs and is tested on its own
(``python -m include.provisioning sync``) and Airflow adds scheduling, connections, logs and UI.
One module or package per stage: ``graph`` (extract, roles), ``validate``, ``expressions`` and
``mapping`` and ``scoping`` (transform), ``salesforce`` (org snapshot, profiles, load), ``diff``,
``state`` (snapshot, escrow, log), ``report``; ``cycle`` runs them in order; ``model`` holds the
contracts between them.
"""
