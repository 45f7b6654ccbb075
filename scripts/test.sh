#!/usr/bin/env bash
# The test command: set up the environment from nothing, lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> pytest"
# The whole suite includes the PostgreSQL tests (127.0.0.1:5432, see tests/postgres.py): without the
# server they fail with one clear message each instead of being skipped. Outside CI,
# PROVISIONING_REQUIRE_POSTGRES=0 skips them (CI, where CI is set, never does).
export PROVISIONING_REQUIRE_POSTGRES="${PROVISIONING_REQUIRE_POSTGRES:-1}"
exec .venv/bin/python -m pytest "$@"
