"""Build a provisioning DAG: the stages as tasks, the writer lease as setup and teardown.

One factory so every DAG of the product (the 20-minute sync; later a coarser initial-sync DAG for
backfills) has the same tasks, params, retries and e-mails, and differs only in its timetable.

Task graph::

    begin_cycle (setup: waits for the writer lease, opens or resumes the run's cycle)
      → extract → validate[shard] → transform[shard] → plan → load[shard] → commit
      → end_cycle (teardown: closes an uncommitted cycle, releases the lease)
    commit → notify (the cycle's report e-mail; outside the critical section)

``validate``, ``transform`` and ``load`` are mapped over the run's shards (param ``shards``; dynamic
task mapping over ``extract``'s list), so Celery or Kubernetes workers share them; with one shard
each is a single mapped task instance doing the whole cycle.

Retries: transient failures are retried with exponential backoff (30 s, 60 s, 120 s, at most
10 min apart); configuration and authentication errors fail at once (``tasks.engine_errors``).
Every task has an ``execution_timeout``; every failure e-mails the notification address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.timetables.base import Timetable

from entra_provisioning import tasks
from entra_provisioning.notify import task_failure_notifier

OWNER = "identity-platform"
LEASE_WAIT = dt.timedelta(hours=3)
"""How long ``begin_cycle`` waits for another run to give the writer lease back before failing."""
LEASE_POKE_SECONDS = 15

TIMEOUTS = {
    "begin_cycle": dt.timedelta(minutes=10),
    "extract": dt.timedelta(hours=1),
    "validate": dt.timedelta(minutes=30),
    "transform": dt.timedelta(minutes=30),
    "plan": dt.timedelta(hours=1),
    "load": dt.timedelta(hours=2),
    "commit": dt.timedelta(minutes=30),
    "notify": dt.timedelta(minutes=5),
    "end_cycle": dt.timedelta(minutes=5),
}
"""Per task; a 1,000,000-user initial sync takes a few minutes, so these only catch a hang."""

MAX_SHARDS = 32
"""include/provisioning/shards.py MAX_SHARDS (not imported: it brings pandas into DAG parsing)."""
SHARDED = ("validate", "transform", "load")
"""Mapped over the run's shards (include/provisioning/stages.py SHARDED_STAGES)."""

UPN_PATTERN = r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"

PARAMS = {
    "mode": Param(
        "auto",
        type="string",
        enum=["auto", "full", "incremental"],
        title="Mode",
        description=(
            "auto: incremental from the saved delta link, full when there is none or the mapping changed; "
            "full: read every assigned user and the whole org; incremental: changes only."
        ),
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        description="Plan everything and write nothing (neither Salesforce nor the state store).",
    ),
    "approve_deactivations": Param(
        False,
        type="boolean",
        title="Approve held-back deactivations",
        description=(
            "Let this run's deactivations through the accidental-deletion threshold "
            "(after you reviewed the held-back users in the last report)."
        ),
    ),
    "reset_quarantine": Param(
        False,
        type="boolean",
        title="Reset quarantine",
        description="Lift the job's quarantine (after fixing its cause) before this run; automatic runs resume.",
    ),
    "restart_provisioning": Param(
        False,
        type="boolean",
        title="Restart provisioning",
        description=(
            "Entra's 'Restart provisioning': forget the delta link and the escrow, lift the quarantine, "
            "and run a full cycle."
        ),
    ),
    "shards": Param(
        1,
        type="integer",
        minimum=1,
        maximum=MAX_SHARDS,
        title="Shards",
        description=(
            "Split validate, transform and load into this many mapped tasks, so several workers share a "
            "large tenant (CeleryExecutor, KubernetesExecutor). 1 suits LocalExecutor and small tenants."
        ),
    ),
    "user": Param(
        None,
        type=["null", "string"],
        pattern=UPN_PATTERN,
        title="Provision one user",
        description=(
            "A userPrincipalName: provision just this user now (Entra's 'Provision on demand'); "
            "empty for a normal cycle."
        ),
    ),
}


def _default_args() -> dict[str, Any]:
    return {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": task_failure_notifier(),
    }


def _stage(name: str) -> Callable[..., Any]:
    def run(cycle: dict[str, Any], **context: Any) -> Any:
        return tasks.run_stage(name, cycle, context["dag"].dag_id, context["run_id"])

    run.__name__ = name
    run.__doc__ = f"Stage '{name}' of the run's cycle (see include/provisioning/stages.py)."
    return run


def _sharded_stage(name: str) -> Callable[..., Any]:
    def run(cycle: dict[str, Any], shard: dict[str, int], **context: Any) -> Any:
        # The grid's label of this mapped instance (map_index_template renders the running context).
        get_current_context()["shard_label"] = f"shard {shard['index'] + 1} of {shard['count']}"
        return tasks.run_stage(name, cycle, context["dag"].dag_id, context["run_id"], shard=shard)

    run.__name__ = name
    run.__doc__ = f"Stage '{name}' of the run's cycle for one shard (see include/provisioning/shards.py)."
    return run


def provisioning_dag(
    dag_id: str,
    *,
    schedule: Timetable,
    start_date: dt.datetime,
    doc_md: str,
    description: str,
    tags: list[str],
    slices: bool = False,
) -> DAG:
    """The provisioning DAG with ``schedule`` (a data-interval timetable: real intervals).

    ``slices``: each run provisions the users whose assignment was created in its data interval
    (``include/provisioning/slices.py``); the DAG is meant for ``airflow backfill create``, and its
    scheduled runs skip (a backfill's runs and manual runs do the work)."""
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(hours=6),
        default_args=_default_args(),
        params=PARAMS,
        tags=tags,
        doc_md=doc_md,
        render_template_as_native_obj=False,
    ) as dag:

        @task.sensor(
            task_id="begin_cycle",
            mode="reschedule",
            poke_interval=LEASE_POKE_SECONDS,
            timeout=LEASE_WAIT.total_seconds(),
            execution_timeout=TIMEOUTS["begin_cycle"],
        )
        def begin_cycle(**context: Any) -> Any:
            """Wait for the writer lease; open or resume this run's cycle."""
            run = context["dag_run"]
            interval = (run.data_interval_start, run.data_interval_end) if slices else None
            return tasks.begin_cycle(
                context["dag"].dag_id,
                context["run_id"],
                context["params"],
                run.conf,
                str(getattr(run.run_type, "value", run.run_type)),  # DagRunType: "scheduled", "backfill", ...
                interval=interval,
            )

        cycle = begin_cycle()
        shards = task(task_id="extract", execution_timeout=TIMEOUTS["extract"])(_stage("extract"))(cycle)
        # extract returns the run's shards, which the per-user stages are mapped over
        previous: Any = shards
        for name in ("validate", "transform", "plan", "load"):
            if name in SHARDED:
                stage = (
                    task(task_id=name, execution_timeout=TIMEOUTS[name], map_index_template="{{ shard_label }}")(
                        _sharded_stage(name)
                    )
                    .partial(cycle=cycle)
                    .expand(shard=shards)
                )
            else:
                stage = task(task_id=name, execution_timeout=TIMEOUTS[name])(_stage(name))(cycle)
            previous >> stage
            previous = stage

        # ``commit`` also runs when a stopped cycle skipped the later stages (none_failed), and
        # Airflow wants every direct follower of a setup task to be all_success: so it reads the
        # cycle from XCom itself instead of taking begin_cycle's output as an argument.
        @task(task_id="commit", trigger_rule="none_failed", execution_timeout=TIMEOUTS["commit"])
        def commit(**context: Any) -> dict[str, Any]:
            """Count outcomes and commit the cycle; keep its report under the run's path."""
            cycle = context["ti"].xcom_pull(task_ids="begin_cycle")
            return tasks.commit_cycle(cycle, context["dag"].dag_id, context["run_id"])

        @task(task_id="notify", execution_timeout=TIMEOUTS["notify"])
        def notify(cycle: dict[str, Any], summary: dict[str, Any], **context: Any) -> str:
            """E-mail the report (and a quarantine notice) to the notification address when needed."""
            return tasks.notify(cycle, summary, context["dag"].dag_id, context["run_id"])

        @task(task_id="end_cycle", execution_timeout=TIMEOUTS["end_cycle"], retries=5)
        def end_cycle(cycle: dict[str, Any], **context: Any) -> str:
            """Close an uncommitted cycle and release the writer lease."""
            return tasks.end_cycle(cycle, context["dag"].dag_id, context["run_id"])

        summary = commit()
        previous >> summary
        notify(cycle, summary)
        summary >> end_cycle(cycle).as_teardown(setups=cycle)
    return dag
