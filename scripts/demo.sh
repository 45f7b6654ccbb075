#!/usr/bin/env bash
# The main command: set up the environment, generate a tenant, start the sandbox emulators and
# drive them end to end through the real clients, then print what happened and where to look.
# (Until the sync engine and the DAG exist, the "end to end" part is the sandbox tour.)
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

echo "==> driving the sandbox through the real clients"
.venv/bin/python scripts/sandbox_tour.py --env-file .demo/sandbox.env

echo
echo "Where to look:"
echo "  settings for the product:  .demo/sandbox.env  (load with: set -a; . .demo/sandbox.env; set +a)"
echo "  generated fixtures:        .demo/tenant/tenant.json, .demo/tenant/org.json"
echo "  emulator log:              .demo/sandbox.log"
if [ "$keep" = 1 ]; then
  echo "  the sandbox keeps running (pid $sandbox_pid); stop it with: kill $sandbox_pid"
fi
