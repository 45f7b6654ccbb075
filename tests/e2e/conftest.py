"""End-to-end fixtures: the engine wired to the running sandbox exactly as the CLI wires it.

The engine is built by ``runtime.build_engine`` from the sandbox's env-file settings — the same
code path as ``python -m include.provisioning sync --env-file ...`` — with a fresh state store per
test (SQLite in a temporary folder unless a test asks for PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from include.provisioning.cycle import CycleResult, Engine, run_cycle
from include.provisioning.model import Mode
from include.provisioning.runtime import build_engine
from tests.sandbox_process import REPO_ROOT, SandboxProcess

VOLATILE = {"LastModifiedDate", "SystemModstamp", "LastLoginDate"}


def org_users(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """Salesforce users by lower-cased Username, as the emulator holds them."""
    state = sandbox.salesforce.get("/_sandbox/state").json()
    return {u["Username"].lower(): {k: v for k, v in u.items() if k not in VOLATILE} for u in state["users"]}


def org_changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per Username, the fields whose value changed (new users: every field), as {field: (old, new)}.
    A field that became null counts too: the sandbox's state leaves null fields out."""
    changes: dict[str, dict[str, Any]] = {}
    for username, user in after.items():
        old = before.get(username, {})
        names = [*user, *(k for k in old if k not in user)]
        diff = {k: (old.get(k), user.get(k)) for k in names if old.get(k) != user.get(k)}
        if diff:
            changes[username] = diff
    for username in before.keys() - after.keys():
        changes[username] = {"<removed>": True}
    return changes


def add_assigned_user(sandbox: SandboxProcess, user_id: str, upn: str, app_role_id: str | None = None) -> None:
    """A new enabled Entra user assigned directly to the app (``app_role_id``, default the app's
    first role)."""
    if app_role_id is None:
        app_role_id = sandbox.graph.get("/_sandbox/state").json()["service_principal"]["appRoles"][0]["id"]
    local = upn.split("@", 1)[0]
    given, _, surname = local.partition(".")
    user = {
        "id": user_id,
        "userPrincipalName": upn,
        "mail": upn,
        "givenName": given.title(),
        "surname": (surname or local).title(),
        "displayName": f"{given.title()} {(surname or local).title()}",
        "mailNickname": local,
        "accountEnabled": True,
    }
    sandbox.graph.post("/_sandbox/users", json=user).raise_for_status()
    assignment = {"principalId": user_id, "principalType": "User", "appRoleId": app_role_id}
    sandbox.graph.post("/_sandbox/appRoleAssignments", json=assignment).raise_for_status()


def run_cli(sandbox: SandboxProcess, state_db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m include.provisioning *args`` against the sandbox and the SQLite store ``state_db``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "include.provisioning",
            *args,
            "--env-file",
            str(sandbox.env_file),
            "--state-url",
            f"sqlite:///{state_db}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ingest_jobs(sandbox: SandboxProcess) -> int:
    counts = sandbox.requests("salesforce")["by_route"]
    return sum(n for route, n in counts.items() if route == "POST /services/data/{version}/jobs/ingest")


@pytest.fixture
def make_engine(sandbox: SandboxProcess, tmp_path: Path) -> Callable[..., Engine]:
    def make(state_url: str | None = None, **env: str) -> Engine:
        return build_engine({**sandbox.settings, **env}, state_url=state_url or f"sqlite:///{tmp_path / 'state.db'}")

    return make


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Iterator[Engine]:
    built = make_engine()
    yield built
    built.state.close()


@pytest.fixture
def cycle(engine: Engine) -> Callable[..., CycleResult]:
    def run(mode: Mode = Mode.AUTO, **kwargs: Any) -> CycleResult:
        return run_cycle(engine, mode, **kwargs)

    return run
