"""Loading the plugins folder as every task process does (the task runner adds plugins' macros to
each task's context) must not import the Provisioning page's app: FastAPI, Airflow's API security
modules and the engine's state queries cost ~3.5 CPU-s a task (issue 7). The api-server still
gets the app when it asks for it. A fresh interpreter each, as a task process is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.airflow.airflow_env import REPO_ROOT

PROBE = """
import json, sys
from airflow.sdk.plugins_manager import integrate_macros_plugins
integrate_macros_plugins()
loaded = {"ui_plugin": "provisioning_ui" in sys.modules, "app": "entra_provisioning.ui.app" in sys.modules,
          "fastapi": "fastapi" in sys.modules, "pandas": "pandas" in sys.modules}
from airflow import plugins_manager
apps, _ = plugins_manager.get_fastapi_plugins()
loaded["apps"] = [(d["url_prefix"], d["name"], type(d["app"]).__name__) for d in apps]
print(json.dumps(loaded))
"""


def test_a_task_process_loads_the_ui_plugin_without_its_app_and_the_api_server_still_mounts_it() -> None:
    command = [sys.executable, "-c", PROBE]
    done = subprocess.run(command, cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["ui_plugin"], "the plugins folder was not loaded"
    assert not loaded["app"] and not loaded["fastapi"] and not loaded["pandas"], loaded
    assert ["/provisioning", "Provisioning", "FastAPI"] in loaded["apps"]
