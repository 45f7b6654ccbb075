"""Airflow plugin: the "Provisioning" page (Entra ID → Salesforce monitoring) in the Airflow UI.

``fastapi_apps`` mounts ``entra_provisioning.ui.app`` at ``/provisioning`` in the api-server;
``external_views`` add the nav entry (rendered inside the UI through ``url_route``) and a link from
each run of the provisioning DAG to its cycle (``destination="dag_run"``; the UI fills ``{DAG_ID}``
and ``{RUN_ID}``). Airflow 3 plugin interface:
https://airflow.apache.org/docs/apache-airflow/stable/administration-and-deployment/plugins.html
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from entra_provisioning.ui import URL_PREFIX


class ProvisioningUiPlugin(AirflowPlugin):
    name = "provisioning_ui"
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Provisioning",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "provisioning",
        },
        {
            "name": "Provisioning cycle",
            "href": f"{URL_PREFIX}/?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "provisioning-cycle",
        },
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The page's app, imported when Airflow asks for it (the api-server mounting it, ``airflow
        plugins``), not when the plugin is loaded: every task process loads every plugin (the task
        runner adds plugins' macros to each task's context), and the app brings FastAPI, Airflow's
        API security modules and the engine's state queries, ~3.5 CPU-s a task process."""
        from entra_provisioning.ui.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Provisioning"}]
