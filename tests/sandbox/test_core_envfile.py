"""The env file that points the product at a sandbox: shell-compatible and lossless."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from include.sandbox.core.envfile import read_env_file, sandbox_settings, write_env_file
from tests.sandbox_process import FIXTURES


def _settings() -> dict[str, str]:
    tenant = json.loads((FIXTURES / "example-tenant.json").read_text())
    org = json.loads((FIXTURES / "example-org.json").read_text())
    return sandbox_settings(tenant, org, "https://127.0.0.1:1111", "https://127.0.0.1:2222", Path("/tmp/ca.pem"))


def test_connections_carry_what_the_clients_need() -> None:
    settings = _settings()
    graph = json.loads(settings["AIRFLOW_CONN_MSGRAPH_DEFAULT"])
    assert graph["login"] == "00000000-0000-0000-0000-00000000232a"
    assert graph["extra"]["authority"] == "https://127.0.0.1:1111"
    assert graph["extra"]["tenant_id"] == "00000000-0000-0000-0000-000000002328"
    assert graph["extra"]["verify"] == "/tmp/ca.pem"
    salesforce = json.loads(settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    assert salesforce["extra"]["domain"] == "127.0.0.1:2222/login"
    assert salesforce["extra"]["consumer_key"] == "sandbox-consumer-key"
    assert salesforce["extra"]["security_token"] == "SANDBOXTOKEN"
    assert settings["AIRFLOW_VAR_ENTRA_SERVICE_PRINCIPAL_ID"] == "00000000-0000-0000-0000-000000002329"


def test_env_file_round_trips_and_a_shell_reads_the_same_values(tmp_path: Path) -> None:
    settings = {**_settings(), "TRICKY": 'it\'s "quoted" $HOME `x` \\ done'}
    path = tmp_path / "sandbox.env"
    write_env_file(path, settings)
    assert read_env_file(path) == settings
    shell = subprocess.run(
        ["bash", "-c", f'set -a; . "{path}"; printf "%s" "$TRICKY"'], capture_output=True, text=True, check=True
    )
    assert shell.stdout == settings["TRICKY"]
