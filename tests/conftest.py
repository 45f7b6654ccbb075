"""Shared fixtures: one sandbox process per test session, reset before each test that uses it; and
what the tests marked ``postgres`` do without their PostgreSQL server (``tests/postgres.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import pytest_report_header, pytest_runtest_setup
from tests.sandbox_process import FIXTURES, SandboxProcess

__all__ = ["pytest_report_header", "pytest_runtest_setup"]  # hooks: pytest finds them here


@pytest.fixture(scope="session")
def sandbox_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    workdir = tmp_path_factory.mktemp("sandbox")
    process = SandboxProcess(FIXTURES / "example-tenant.json", FIXTURES / "example-org.json", workdir)
    yield process
    process.stop()


@pytest.fixture
def sandbox(sandbox_session: SandboxProcess) -> SandboxProcess:
    """The running sandbox, restored to the example fixtures with no faults."""
    sandbox_session.reset()
    return sandbox_session
