#!/usr/bin/env bash
# Airflow in a browser: `airflow standalone` (api-server with the UI, scheduler, dag-processor,
# triggerer; SQLite and LocalExecutor) wired to the sandbox and the SMTP catcher, so a person can
# watch the provisioning DAG run every 20 minutes, trigger it with params, test the connections
# and start a backfill. Prints the URL and the login; Ctrl-C stops everything.
#   bash scripts/standalone.sh [--users N] [--seed S] [--port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
users=2000
seed=42
port=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    *) echo "usage: bash scripts/standalone.sh [--users N] [--seed S] [--port 8080]" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
# shellcheck source=scripts/demo_services.sh
. scripts/demo_services.sh
dir=$PWD/.standalone
mkdir -p "$dir"
start_sandbox "$dir" "$users" "$seed"
start_mail "$dir"
use_airflow "$dir" "$dir/airflow"
export AIRFLOW__API__PORT=$port
export AIRFLOW__API__BASE_URL="http://localhost:$port/"

# Connections and Variables go into the metadata database, so the UI lists them and a person can
# edit and test them there; environment variables would win over the database and stay hidden.
echo "==> migrating Airflow's metadata database and storing the connections and variables ($AIRFLOW_HOME)"
.venv/bin/airflow db migrate >"$dir/airflow-migrate.log" 2>&1 || { tail -20 "$dir/airflow-migrate.log"; exit 1; }
.venv/bin/python - "$dir" <<'PY'
import json, os, sys
from pathlib import Path
# One import call each (every `airflow` command costs seconds of start-up).
out = Path(sys.argv[1])
conns = {key[len("AIRFLOW_CONN_"):].lower(): json.loads(value) for key, value in os.environ.items() if key.startswith("AIRFLOW_CONN_")}
variables = {key[len("AIRFLOW_VAR_"):].lower(): value for key, value in os.environ.items() if key.startswith("AIRFLOW_VAR_")}
(out / "connections.json").write_text(json.dumps(conns, indent=2))
(out / "variables.json").write_text(json.dumps(variables, indent=2))
PY
.venv/bin/airflow connections import --overwrite "$dir/connections.json" >/dev/null
.venv/bin/airflow variables import --action-on-existing-key overwrite "$dir/variables.json" >/dev/null
rm -f "$dir/connections.json" "$dir/variables.json"  # they hold the secrets; the database has them now
for var in $(compgen -e | grep -E '^AIRFLOW_(CONN|VAR)_' || true); do unset "$var"; done

# A background job of a script starts with SIGINT ignored, and `airflow standalone` stops cleanly
# only on SIGINT (SIGTERM leaves its components running): reset it before exec.
.venv/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  .venv/bin/airflow standalone >"$dir/standalone.log" 2>&1 &
airflow_pid=$!
stop_all() {
  kill -INT "$airflow_pid" 2>/dev/null || true
  wait "$airflow_pid" 2>/dev/null || true
  stop_services
}
trap stop_all EXIT
trap 'exit 130' INT TERM
echo "==> starting airflow standalone (log: .standalone/standalone.log); under a minute on a quiet machine"
for _ in $(seq 1 240); do
  if .venv/bin/python - "$port" <<'PY' 2>/dev/null; then break; fi
import json, sys, urllib.request
body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v2/monitor/health", timeout=2))
sys.exit(0 if all((body.get(k) or {}).get("status") == "healthy" for k in ("metadatabase", "scheduler")) else 1)
PY
  kill -0 "$airflow_pid" 2>/dev/null || { tail -30 "$dir/standalone.log"; echo "error: airflow standalone exited" >&2; exit 1; }
  sleep 0.5
done
password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
login=$(.venv/bin/python -c 'import json,sys; u,p=next(iter(json.load(open(sys.argv[1])).items())); print(f"user {u}, password {p}")' "$password_file")
# The JSON API takes the JWT Airflow's own POST /auth/token issues for that login (as the UI does).
token_body=$(.venv/bin/python -c 'import json,sys; u,p=next(iter(json.load(open(sys.argv[1])).items())); print(json.dumps({"username": u, "password": p}))' "$password_file")
cat <<INFO

Airflow is running at http://localhost:$port  ($login)
  DAG:          entra_salesforce_provisioning (unpaused: its first scheduled run starts now, then every 20 minutes)
  Trigger:      the DAG's "Trigger" button shows the params (mode, dry run, approve deactivations, user)
  Connections:  Admin > Connections: msgraph_default, salesforce_default, provisioning_state, smtp_default (Test button on)
  Backfill:     .venv/bin/airflow backfill create --dag-id entra_salesforce_provisioning --from-date ... --to-date ...
                (in another shell after: . scripts/airflow_env.sh $AIRFLOW_HOME)
  JSON API:     token=\$(curl -s -X POST http://localhost:$port/auth/token -H 'Content-Type: application/json' -d '$token_body' | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
                curl -H "Authorization: Bearer \$token" http://localhost:$port/provisioning/api/overview
  E-mails:      .standalone/mail/  (.venv/bin/python scripts/show_mail.py .standalone/mail)
  Sandbox:      .standalone/sandbox.env (Graph $SANDBOX_GRAPH_URL, Salesforce $SANDBOX_SALESFORCE_URL)
Ctrl-C stops Airflow, the sandbox and the SMTP catcher.
INFO
wait "$airflow_pid"
