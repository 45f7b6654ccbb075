"""The DAG file imports cleanly and has the shape the README describes (ids, timetable, params, tasks)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable

from tests.airflow.airflow_env import REPO_ROOT

DAG_ID = "entra_salesforce_provisioning"
STAGES = ["extract", "validate", "transform", "plan", "load"]


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag: DagBag):  # type: ignore[no-untyped-def]
    return dagbag.dags[DAG_ID]


def test_dag_files_import_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_schedule_has_real_20_minute_data_intervals(dag) -> None:  # type: ignore[no-untyped-def]
    # The scheduler's side of the DAG's timetable (what a plain cron string would make zero-length).
    from airflow.timetables.interval import CronDataIntervalTimetable as SchedulerTimetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "*/20 * * * *"
    scheduler_side = SchedulerTimetable(dag.timetable.expression, timezone="UTC")
    interval = scheduler_side.infer_manual_data_interval(run_after=pendulum.datetime(2026, 11, 30, 7, 41, tz="UTC"))
    assert interval.end - interval.start == dt.timedelta(minutes=20)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md and "provisioning" in dag.doc_md.lower()
    assert set(dag.tags) >= {"provisioning", "salesforce"}
    assert dag.owner == "identity-platform"


def test_tasks_are_the_stages_in_order_between_setup_and_teardown(dag) -> None:  # type: ignore[no-untyped-def]
    chain = ["begin_cycle", *STAGES, "commit"]
    for upstream, downstream in itertools.pairwise(chain):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    begin, end = dag.get_task("begin_cycle"), dag.get_task("end_cycle")
    assert begin.is_setup and begin.mode == "reschedule"
    assert end.is_teardown and "begin_cycle" in end.upstream_task_ids and "commit" in end.upstream_task_ids
    assert "notify" in dag.get_task("commit").downstream_task_ids
    assert "end_cycle" not in dag.get_task("notify").downstream_task_ids  # the e-mail is outside the lease
    assert dag.get_task("commit").trigger_rule == "none_failed"


def test_the_per_user_stages_are_mapped_over_extracts_shards(dag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from entra_provisioning.dag_factory import MAX_SHARDS, SHARDED

    from include.provisioning import shards, stages

    assert set(SHARDED) == set(stages.SHARDED_STAGES) and MAX_SHARDS == shards.MAX_SHARDS
    for name in STAGES:
        task = dag.get_task(name)
        assert isinstance(task, MappedOperator) is (name in SHARDED), name
        if name in SHARDED:
            assert task.map_index_template == "{{ shard_label }}"
            assert [op.task_id for op in task.iter_mapped_dependencies()] == ["extract"]
    assert dag.params.get_param("shards").schema["maximum"] == MAX_SHARDS


def test_every_task_has_a_timeout_retries_with_backoff_and_a_failure_email(dag) -> None:  # type: ignore[no-untyped-def]
    for task in dag.tasks:
        assert task.execution_timeout is not None and task.execution_timeout <= dt.timedelta(hours=2), task.task_id
        assert task.on_failure_callback, task.task_id
        if task.task_id != "begin_cycle":
            assert task.retries >= 3, task.task_id
            assert task.retry_exponential_backoff > 1, task.task_id
            assert task.max_retry_delay is not None, task.task_id


def test_params_are_validated_and_described(dag) -> None:  # type: ignore[no-untyped-def]
    params = dag.params
    assert params["mode"] == "auto" and params["dry_run"] is False and params["approve_deactivations"] is False
    assert params["user"] is None
    for name in ("mode", "dry_run", "approve_deactivations", "user"):
        assert params.get_param(name).description, name
    good = copy.deepcopy(params)
    good.update({"mode": "full", "user": "adele.vance@contoso.example"})
    good.validate()
    for bad in ({"mode": "everything"}, {"dry_run": "yes"}, {"user": "not an address"}, {"shards": 0}, {"shards": 99}):
        candidate = copy.deepcopy(params)
        with pytest.raises(Exception, match=r"Invalid input|is not|does not match"):
            candidate.update(bad)
            candidate.validate()


INITIAL_SYNC = "entra_salesforce_initial_sync"


def test_the_initial_sync_dag_has_the_same_tasks_and_monthly_intervals(dagbag: DagBag, dag) -> None:  # type: ignore[no-untyped-def]
    from airflow.timetables.interval import CronDataIntervalTimetable as SchedulerTimetable

    initial = dagbag.dags[INITIAL_SYNC]
    assert sorted(initial.task_dict) == sorted(dag.task_dict)
    assert set(initial.params.keys()) == set(dag.params.keys())
    scheduler_side = SchedulerTimetable(initial.timetable.expression, timezone="UTC")
    interval = scheduler_side.infer_manual_data_interval(run_after=pendulum.datetime(2026, 3, 14, tz="UTC"))
    assert (interval.start, interval.end) == (
        pendulum.datetime(2026, 2, 1, tz="UTC"),
        pendulum.datetime(2026, 3, 1, tz="UTC"),
    )
    assert "airflow backfill create --dag-id entra_salesforce_initial_sync" in initial.doc_md


def test_a_slicing_runs_window_is_its_data_interval_and_scheduled_runs_skip() -> None:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from entra_provisioning.tasks import assignment_window

    start, end = dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    window = assignment_window((start, end), "backfill")
    assert (window.start, window.end) == (start, end)
    assert assignment_window(None, "scheduled") is None  # the 20-minute DAG does not slice
    with pytest.raises(AirflowSkipException, match="airflow backfill create"):
        assignment_window((start, end), "scheduled")
    with pytest.raises(AirflowFailException, match="no data interval"):
        assignment_window((end, end), "manual")


def test_an_unknown_user_fails_the_task_at_once_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # The ``user`` param (provision on demand) naming a user Entra ID does not have: the extract
    # raises UnknownUserError, a configuration error, which fails the task without retries.
    from airflow.sdk.exceptions import AirflowFailException
    from entra_provisioning import tasks

    from include.provisioning.errors import UnknownUserError

    counted: list[BaseException] = []
    recorded: list[tuple[str, str | None, str | None]] = []
    monkeypatch.setattr(tasks, "_count_auth_failure", lambda exc, *args: counted.append(exc))
    monkeypatch.setattr(tasks, "_record_on_cycle", lambda exc, *args: recorded.append((str(exc), *args)))
    with pytest.raises(AirflowFailException) as failed, tasks.engine_errors("extract", "dag", "run", "c-1"):
        raise UnknownUserError("nobody@nowhere.example")
    message = str(failed.value)
    assert message.startswith("extract: configuration problem, not retried: ")
    assert "Entra ID has no user nobody@nowhere.example" in message
    assert "not assigned" not in message
    # The engine's own message is what the run's cycle keeps for the Provisioning page.
    assert recorded == [(str(UnknownUserError("nobody@nowhere.example")), "c-1", "configuration")]


def test_a_stage_failure_is_recorded_on_the_cycle_with_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException
    from entra_provisioning import tasks

    from include.provisioning.errors import MissingArtifactError

    recorded: list[tuple[str, str | None, str | None]] = []
    monkeypatch.setattr(tasks, "_record_on_cycle", lambda exc, *args: recorded.append((str(exc), *args)))
    with pytest.raises(TimeoutError), tasks.engine_errors("load", "dag", "run", "c-1"):
        raise TimeoutError("Salesforce did not answer")  # retried by Airflow: its kind is the engine's
    with pytest.raises(AirflowFailException), tasks.engine_errors("load", "dag", "run", "c-1"):
        raise AirflowNotFoundException("The conn_id `salesforce_default` isn't defined")
    with pytest.raises(AirflowSkipException), tasks.engine_errors("load", "dag", "run", "c-1"):
        raise MissingArtifactError("plan")  # a skip, not a failure: nothing recorded
    assert recorded == [
        ("Salesforce did not answer", "c-1", None),
        ("The conn_id `salesforce_default` isn't defined", "c-1", "configuration"),
    ]
