"""The PostgreSQL server the tests marked ``postgres`` need, and what happens without it.

They use 127.0.0.1:5432, user ``postgres`` without a password (trust authentication), and create
their own throwaway databases from the database ``test``. When that server does not answer:

- by default each of them is skipped with one and the same reason (``-ra`` prints it once, with
  the count), saying what is missing and how to provide it;
- when PostgreSQL is required (``CI`` set, or ``PROVISIONING_REQUIRE_POSTGRES=1``, which
  ``scripts/test.sh`` sets unless told otherwise) each of them fails with that message instead,
  so a CI run never passes without them.

``tests/conftest.py`` imports the two hooks below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psycopg2
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_DATABASE = "test"
REQUIRE_FLAG = "PROVISIONING_REQUIRE_POSTGRES"

_PROBLEM = pytest.StashKey[str]()
"""Why PostgreSQL is unusable ("" when it answers): checked once per test session."""


def postgres_required(environ: Mapping[str, str]) -> bool:
    """PostgreSQL tests must run (and fail without it) in CI and when ``REQUIRE_FLAG`` is set."""

    def truthy(name: str) -> bool:
        return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")

    return truthy("CI") or truthy(REQUIRE_FLAG)


def postgres_problem() -> str:
    """Why the tests' PostgreSQL cannot be used, or "" when it answers."""
    try:
        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_DATABASE, connect_timeout=3)
    except psycopg2.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL on {PG_HOST}:{PG_PORT} (user {PG_USER}, database {PG_DATABASE}) is not usable: {reason}"
    conn.close()
    return ""


def _problem(config: pytest.Config) -> str:
    if _PROBLEM not in config.stash:
        config.stash[_PROBLEM] = postgres_problem()
    return config.stash[_PROBLEM]


def _advice(required: bool) -> str:
    how = 'start it (README.md, "What the tests need")'
    if required:
        return f"required here (CI or {REQUIRE_FLAG}=1): {how}, or outside CI set {REQUIRE_FLAG}=0 to skip these tests"
    return f"the tests marked postgres are skipped: {how} to run them"


def pytest_report_header(config: pytest.Config) -> str:
    problem = _problem(config)
    if not problem:
        return f"postgres: {PG_HOST}:{PG_PORT} answers (tests marked postgres run)"
    return f"postgres: {problem}; {_advice(postgres_required(os.environ))}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") is None:
        return
    problem = _problem(item.config)
    if not problem:
        return
    required = postgres_required(os.environ)
    message = f"{problem}; {_advice(required)}"
    if required:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
