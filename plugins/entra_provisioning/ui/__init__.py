"""The "Provisioning" page in the Airflow UI: a FastAPI app (``app.py``) over read-only queries of
the engine's state store (``queries.py``, ``log_query.py``), with actions that run the DAG through
Airflow's REST API as the signed-in user (``actions.py``). Registered by ``plugins/provisioning_ui.py``."""

URL_PREFIX = "/provisioning"
"""Where Airflow's api-server mounts the page's app (``plugins/provisioning_ui.py``)."""
