"""What the end-to-end tests on a generated tenant share: the sandbox, an engine, the org's users."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from include.provisioning.engine import Engine
from include.provisioning.runtime import build_engine
from tests.sandbox_process import SandboxProcess, generate_tenant

VOLATILE = {"Id", "LastModifiedDate", "SystemModstamp", "LastLoginDate", "CreatedDate", "CommunityNickname"}
"""Salesforce fields that differ between two orgs provisioned alike (ids, timestamps, nicknames)."""


@contextmanager
def generated_sandbox(
    tmp_path_factory: pytest.TempPathFactory, name: str, users: int, seed: int
) -> Iterator[tuple[Path, SandboxProcess]]:
    """A generated tenant (its folder holds ``tenant.json`` and ``org.json``) served by the sandbox."""
    out = generate_tenant(tmp_path_factory.mktemp(f"tenant-{name}"), users, seed=seed)
    process = SandboxProcess(out / "tenant.json", out / "org.json", tmp_path_factory.mktemp(f"sandbox-{name}"))
    try:
        yield out, process
    finally:
        process.stop()


def engine_for(sandbox: SandboxProcess, state: Path) -> Engine:
    """An engine against the sandbox with a SQLite state store at ``state`` (a fresh one per call,
    as each Airflow task builds its own)."""
    return build_engine(sandbox.settings, state_url=f"sqlite:///{state}")


def org_users(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """The org's users by lower-case Username, without the fields in ``VOLATILE``."""
    users = sandbox.salesforce.get("/_sandbox/state").json()["users"]
    return {u["Username"].lower(): {k: v for k, v in u.items() if k not in VOLATILE} for u in users}
