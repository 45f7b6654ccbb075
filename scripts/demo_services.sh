#!/usr/bin/env bash
# Shared by the main command (scripts/demo.sh) and scripts/standalone.sh: start the sandbox with a
# generated tenant and the local SMTP catcher, and point Airflow at them. Source it, then call:
#   start_sandbox DIR USERS SEED   generate a tenant into DIR/tenant (cached by size and seed) and
#                                   start both emulators; settings in DIR/sandbox.env
#   start_mail DIR                  the SMTP catcher; messages in DIR/mail, settings in DIR/smtp.env
#   use_airflow DIR AIRFLOW_HOME    the project's Airflow configuration plus both env files, the
#                                   state store DIR/state.db and a CA bundle that trusts the sandbox
#   stop_services                   stop what start_* started
_services_pids=()

_wait_for_file() {  # FILE PID LOG WHAT
  for _ in $(seq 1 600); do
    [ -f "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; echo "error: $4 did not start (log: $3)" >&2; return 1; }
    sleep 0.1
  done
  echo "error: $4 did not start within 60 s (log: $3)" >&2
  return 1
}

start_sandbox() {
  local dir=$1 users=$2 seed=$3
  mkdir -p "$dir"
  if [ ! -f "$dir/tenant/.generated-$users-$seed" ]; then
    echo "==> generating a tenant of $users users (seed $seed) into $dir/tenant"
    rm -rf "$dir/tenant"
    .venv/bin/python -m include.sandbox generate --users "$users" --seed "$seed" --out "$dir/tenant"
    touch "$dir/tenant/.generated-$users-$seed"
  fi
  rm -f "$dir/sandbox.env"
  echo "==> starting the sandbox: HTTPS emulators of Microsoft Graph and Salesforce (log: $dir/sandbox.log)"
  .venv/bin/python -m include.sandbox up --tenant "$dir/tenant/tenant.json" --org "$dir/tenant/org.json" \
    --graph-port 0 --salesforce-port 0 --ca-dir .sandbox/ca --env-file "$dir/sandbox.env" >"$dir/sandbox.log" 2>&1 &
  _services_pids+=($!)
  _wait_for_file "$dir/sandbox.env" "$!" "$dir/sandbox.log" "the sandbox"
  sed -n '1,20p' "$dir/sandbox.log"
}

start_mail() {
  local dir=$1
  rm -rf "$dir/mail" "$dir/smtp.env"
  echo "==> starting the SMTP catcher (messages: $dir/mail)"
  .venv/bin/python scripts/smtp_catcher.py --port 0 --dir "$dir/mail" --env-file "$dir/smtp.env" >"$dir/smtp.log" 2>&1 &
  _services_pids+=($!)
  _wait_for_file "$dir/smtp.env" "$!" "$dir/smtp.log" "the SMTP catcher"
}

use_airflow() {
  local dir=$1 home=$2
  # shellcheck source=scripts/airflow_env.sh
  . scripts/airflow_env.sh "$home"
  # `airflow standalone` starts its components as `airflow ...` by name.
  export PATH="$PWD/.venv/bin:$PATH"
  set -a
  # shellcheck disable=SC1091
  . "$dir/sandbox.env"
  # shellcheck disable=SC1091
  . "$dir/smtp.env"
  set +a
  AIRFLOW_CONN_PROVISIONING_STATE=$(printf '{"conn_type": "provisioning_state", "port": 0, "extra": {"sqlite_path": "%s"}}' "$dir/state.db")
  export AIRFLOW_CONN_PROVISIONING_STATE
  # The Salesforce provider's Test button verifies TLS with what requests trusts: add the sandbox CA.
  REQUESTS_CA_BUNDLE=$(.venv/bin/python -c 'import sys; from pathlib import Path; from include.sandbox.core.envfile import write_trust_bundle; print(write_trust_bundle(Path(sys.argv[1])))' "$SANDBOX_CA_BUNDLE")
  export REQUESTS_CA_BUNDLE
}

stop_services() {
  local pid
  for pid in "${_services_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${_services_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  _services_pids=()
}
