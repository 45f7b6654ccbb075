#!/usr/bin/env bash
# The project's Airflow configuration, one place for every command that runs Airflow here
# (demo, standalone, tests, benchmarks). Source it: `. scripts/airflow_env.sh [AIRFLOW_HOME]`.
# Embedded defaults: SQLite metadata DB and LocalExecutor under AIRFLOW_HOME (default .airflow/).
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${1:-${AIRFLOW_HOME:-$repo_root/.airflow}}"
export AIRFLOW__CORE__DAGS_FOLDER="$repo_root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$repo_root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# LocalExecutor pre-forks [core] parallelism workers (32 by default, ~5 GB here): keep it small.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
# The Test button on connections is Disabled by default in Airflow 3.3.
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
# A task that ends skipped or failed is reported only on the supervisor's next check, up to
# [workers] min_heartbeat_interval (5 s) later, and the scheduler sleeps 1 s after an idle loop:
# together ~10 s of a 9-task cycle (measured: scripts/benchmark_airflow.py). Costs ~2 % of a core.
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="${AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-1}"
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="${AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME:-0.2}"
export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL:-5}"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-5}"
# The engine lives in include/ at the repository root (Astro's layout), the DAG glue in plugins/:
# this checkout's, ahead of whatever the virtualenv's .pth names.
export PYTHONPATH="$repo_root:$repo_root/plugins${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$AIRFLOW_HOME"
