"""Start the sandbox exactly as a user does (``python -m include.sandbox up``), for the tests
and the benchmark commands.

The emulators run in a child process, so callers talk to them over real HTTPS sockets
through the real clients. ``reset()`` restores the fixtures, faults and counters (between
tests), which is far cheaper than a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from include.sandbox.core.envfile import read_env_file

REPO_ROOT = Path(__file__).resolve().parents[2]


class SandboxProcess:
    def __init__(self, tenant: Path, org: Path, workdir: Path, startup_timeout: float = 60.0):
        self.tenant_path, self.org_path = tenant, org
        self.env_file = workdir / "sandbox.env"
        self.log_path = workdir / "sandbox.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "include.sandbox",
                "up",
                "--tenant",
                str(tenant),
                "--org",
                str(org),
                "--graph-port",
                "0",
                "--salesforce-port",
                "0",
                "--ca-dir",
                str(workdir / "ca"),
                "--env-file",
                str(self.env_file),
            ],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + startup_timeout
        while not self.env_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start in {startup_timeout}s:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        self.settings = read_env_file(self.env_file)
        self.graph_url = self.settings["SANDBOX_GRAPH_URL"]
        self.salesforce_url = self.settings["SANDBOX_SALESFORCE_URL"]
        self.ca_bundle = self.settings["SANDBOX_CA_BUNDLE"]
        self.graph = httpx.Client(base_url=self.graph_url, verify=self.ca_bundle, timeout=60)
        self.salesforce = httpx.Client(base_url=self.salesforce_url, verify=self.ca_bundle, timeout=60)
        self.tenant = orjson.loads(tenant.read_bytes())
        self.org = orjson.loads(org.read_bytes())

    def reset(self) -> None:
        """Back to the fixtures as loaded, with no fault rules and zeroed counters."""
        for client, fixture in ((self.graph, self.tenant), (self.salesforce, self.org)):
            client.delete("/_sandbox/faults").raise_for_status()
            client.put("/_sandbox/state", content=orjson.dumps(fixture)).raise_for_status()
            client.delete("/_sandbox/requests").raise_for_status()

    def requests(self, service: str) -> dict[str, Any]:
        client = self.graph if service == "graph" else self.salesforce
        return client.get("/_sandbox/requests").json()

    def env(self) -> dict[str, str]:
        """The process environment a product command needs to reach this sandbox."""
        return {**os.environ, **self.settings}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def generate_tenant(out: Path, users: int, seed: int) -> Path:
    """Generate a tenant and org into ``out`` exactly as a user does (``python -m include.sandbox
    generate``); returns ``out``, holding ``tenant.json`` and ``org.json``."""
    subprocess.run(
        [
            *(sys.executable, "-m", "include.sandbox", "generate"),
            *("--users", str(users), "--seed", str(seed), "--out", str(out)),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return out
