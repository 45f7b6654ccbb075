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
from entra_provisioning.ui.app import URL_PREFIX, app


class ProvisioningUiPlugin(AirflowPlugin):
    name = "provisioning_ui"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "Provisioning"}]
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
