"""Without PostgreSQL the tests marked ``postgres`` say so once (skipped with one reason), unless
PostgreSQL is required (CI, or ``PROVISIONING_REQUIRE_POSTGRES=1`` as ``scripts/test.sh`` sets it):
then each fails with that message, without a traceback. Run in a pytest inside this one, against a
port where nothing listens."""

from __future__ import annotations

import socket

import pytest

from tests import postgres

pytest_plugins = ["pytester"]

INNER_TESTS = """
import pytest

@pytest.mark.postgres
def test_needs_postgres_a():
    raise AssertionError("must not run")

@pytest.mark.postgres
def test_needs_postgres_b():
    raise AssertionError("must not run")

def test_needs_nothing():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(postgres, "PG_PORT", port)
    for name in ("CI", postgres.REQUIRE_FLAG):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nmarkers =\n    postgres: needs PostgreSQL\n")
    pytester.makeconftest("from tests.postgres import pytest_report_header, pytest_runtest_setup  # noqa: F401\n")
    pytester.makepyfile(INNER_TESTS)
    return pytester


def test_without_postgresql_its_tests_are_skipped_with_one_reason(inner: pytest.Pytester) -> None:
    result = inner.runpytest_inprocess("-ra")
    result.assert_outcomes(passed=1, skipped=2)
    out = result.stdout.str()
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and skipped[0].startswith("SKIPPED [2]"), out
    assert f"PostgreSQL on 127.0.0.1:{postgres.PG_PORT} (user postgres, database test) is not usable" in skipped[0]
    assert "the tests marked postgres are skipped: start it (README.md" in skipped[0]
    assert "Traceback" not in out and "must not run" not in out
    assert f"postgres: PostgreSQL on 127.0.0.1:{postgres.PG_PORT}" in out  # the header says it up front


@pytest.mark.parametrize("environ", [{"CI": "true"}, {postgres.REQUIRE_FLAG: "1"}], ids=["CI", "flag"])
def test_where_postgresql_is_required_its_tests_fail_loudly(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    result = inner.runpytest_inprocess("-ra")
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    errors = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 2, out
    message = f"PostgreSQL on 127.0.0.1:{postgres.PG_PORT} (user postgres, database test) is not usable"
    sections = out.split("= ERRORS =")[1].split("short test summary info")[0]
    assert sections.count(message) == 2, out  # each test's error says it, without a traceback
    assert sections.count("required here (CI or PROVISIONING_REQUIRE_POSTGRES=1): start it (README.md") == 2, out
    assert "Traceback" not in out and "must not run" not in out


@pytest.mark.parametrize(
    ("environ", "required"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({postgres.REQUIRE_FLAG: "1"}, True),
        ({postgres.REQUIRE_FLAG: "0"}, False),
        ({"CI": "true", postgres.REQUIRE_FLAG: "0"}, True),  # CI never skips them
    ],
)
def test_when_postgresql_is_required(environ: dict[str, str], required: bool) -> None:
    assert postgres.postgres_required(environ) is required
