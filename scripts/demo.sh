#!/usr/bin/env bash
# The main command: set up the environment, generate a tenant, start the sandbox emulators, run
# the sync engine end to end (an initial full cycle, a few changes in Entra, an incremental cycle),
# then print what happened and where to look. (The Airflow DAG will take the engine's place here.)
#   bash scripts/demo.sh [--users N] [--seed S] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
users=2000
seed=42
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: bash scripts/demo.sh [--users N] [--seed S] [--keep]" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
mkdir -p .demo
rm -f .demo/sandbox.env
echo "==> generating a tenant of $users users (seed $seed) into .demo/tenant"
.venv/bin/python -m include.sandbox generate --users "$users" --seed "$seed" --out .demo/tenant

echo "==> starting the sandbox (log: .demo/sandbox.log)"
.venv/bin/python -m include.sandbox up --tenant .demo/tenant/tenant.json --org .demo/tenant/org.json \
  --graph-port 0 --salesforce-port 0 --ca-dir .sandbox/ca --env-file .demo/sandbox.env >.demo/sandbox.log 2>&1 &
sandbox_pid=$!
stop_sandbox() { kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null || true; }
if [ "$keep" = 0 ]; then trap stop_sandbox EXIT; fi
for _ in $(seq 1 600); do
  [ -f .demo/sandbox.env ] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat .demo/sandbox.log; echo "error: the sandbox did not start" >&2; exit 1; }
  sleep 0.1
done
[ -f .demo/sandbox.env ] || { echo "error: the sandbox did not start within 60 s" >&2; exit 1; }
cat .demo/sandbox.log

export PROVISIONING_STATE_URL="sqlite:///$PWD/.demo/state.db"
rm -f .demo/state.db .demo/state.db-wal .demo/state.db-shm
sync() { .venv/bin/python -m include.provisioning sync --env-file .demo/sandbox.env --report-dir .demo/reports "$@"; }

echo "==> checking the configuration and both logins"
.venv/bin/python -m include.provisioning validate-config --env-file .demo/sandbox.env --connect

echo "==> cycle 1: initial sync (full)"
sync --summary-json .demo/cycle1.json || echo "(cycle 1 exited with $?)"

echo "==> changes in Entra between cycles"
.venv/bin/python scripts/demo_changes.py --env-file .demo/sandbox.env

echo "==> cycle 2: incremental"
sync --summary-json .demo/cycle2.json || echo "(cycle 2 exited with $?)"

echo
echo "Where to look:"
echo "  settings for the product:  .demo/sandbox.env  (load with: set -a; . .demo/sandbox.env; set +a)"
echo "  generated fixtures:        .demo/tenant/tenant.json, .demo/tenant/org.json"
echo "  emulator log:              .demo/sandbox.log"
echo "  state store (SQLite):      .demo/state.db  (snapshot, escrow, provisioning log; sqlite3 .demo/state.db)"
echo "  cycle summaries (JSON):    .demo/cycle1.json, .demo/cycle2.json"
echo "  failure reports:           .demo/reports/ (HTML + CSV, one pair per cycle with failures)"
if [ "$keep" = 1 ]; then
  echo "  the sandbox keeps running (pid $sandbox_pid); stop it with: kill $sandbox_pid"
fi
