"""Airflow glue of the Entra ID → Salesforce provisioning project: hooks and the UI plugin."""
