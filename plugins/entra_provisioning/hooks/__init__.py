"""Airflow hooks of the provisioning project: Airflow connections in, the engine's settings out.

- ``graph.MsGraphHook``: connection type ``msgraph`` → ``GraphSettings``; Test button reads the
  service principal through the engine's Graph client.
- ``salesforce.salesforce_settings``: the ``salesforce`` connection (the Salesforce provider's type
  and Test button) → ``SalesforceSettings``.
- ``state.ProvisioningStateHook``: connection type ``provisioning_state`` → the engine's
  ``StateStore``; Test button opens the store.
- ``connection``: the one translation from an Airflow ``Connection`` to the engine's
  ``ConnectionSettings``, so the engine parses every field itself, once.

The connection types and their form fields are declared by the local provider package in
``providers/entra-provisioning`` (Airflow registers connection types from providers only).
Modules here use absolute imports: ``.airflowignore`` keeps Airflow's plugin scan from importing
them as top-level plugin modules.
"""
