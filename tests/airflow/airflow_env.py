"""The project's Airflow environment (``scripts/airflow_env.sh``) for tests, read from the script
itself so tests and the documented commands cannot drift apart."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def airflow_environment(airflow_home: Path) -> dict[str, str]:
    """The variables ``scripts/airflow_env.sh`` exports for ``airflow_home`` (only those it sets)."""
    script = f'. "{REPO_ROOT}/scripts/airflow_env.sh" "{airflow_home}" >/dev/null; env -0'
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"}).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("AIRFLOW") or k == "PYTHONPATH"}
