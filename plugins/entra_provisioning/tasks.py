"""What each task of the provisioning DAG does: Airflow in, the engine's front door, Airflow out.

The DAG file only wires these together. Every function here translates between Airflow (the task
context, XCom, exceptions) and ``include.provisioning.api``; the policy lives in the engine.

Errors (the engine's tree, ``include/provisioning/errors.py``):
    a configuration or authentication error, or an undefined connection, fails the task at once
    with ``AirflowFailException`` (retrying cannot help); anything else is raised as it is, and
    Airflow retries it with exponential backoff; a stage whose input is missing for this cycle, or
    that finds the cycle stopped, is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from include.provisioning.errors import (
    ConfigurationError,
    JobQuarantinedError,
    LeaseBusyError,
    LeaseLostError,
    MissingArtifactError,
    is_configuration_error,
)

if TYPE_CHECKING:
    from include.provisioning.shards import Shard
    from include.provisioning.workspace import Workspace

# The engine (pandas, the Graph and Salesforce clients) is imported inside the task functions:
# the DAG processor parses this module every few seconds and needs none of it.

log = logging.getLogger(__name__)

REPORT_FILES = {"html": "report.html", "text": "report.txt"}


def _count_auth_failure(exc: BaseException, dag_id: str | None, run_id: str | None) -> None:
    """Entra quarantines a job whose credentials keep failing: count this run, and say it once."""
    from entra_provisioning import runtime
    from entra_provisioning.notify import airflow_run_url, send_quarantine_notice
    from include.provisioning import api

    try:
        engine = runtime.build_engine()
    except Exception:  # the state store itself may be what is misconfigured
        log.warning("could not count this authentication failure towards the quarantine", exc_info=True)
        return
    try:
        verdict = api.record_failure(engine, exc)
        if verdict is None:
            return
        log.warning("%d consecutive run(s) failed to authenticate", verdict.auth_failures)
        to = runtime.notification_address()
        if verdict.notify and verdict.quarantine is not None:
            log.warning("%s", verdict.quarantine.describe())
            if to:
                url = airflow_run_url(dag_id, run_id) if dag_id and run_id else None
                send_quarantine_notice(verdict.quarantine, to=to, run_url=url)
                engine.state.job_quarantine_notified(verdict.quarantine.reason_code)
    finally:
        engine.state.close()


@contextmanager
def engine_errors(what: str, dag_id: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Turn the engine's terminal errors into Airflow's "fail now" and missing inputs into a skip;
    an authentication failure also counts towards the job's quarantine."""
    try:
        yield
    except (ConfigurationError, AirflowNotFoundException) as exc:
        if isinstance(exc, ConfigurationError):
            _count_auth_failure(exc, dag_id, run_id)
        raise AirflowFailException(f"{what}: configuration problem, not retried: {exc}") from exc
    except LeaseLostError as exc:
        raise AirflowFailException(
            f"{what}: this run lost the writer lease ({exc}); another run may be writing. "
            "Clear the run to start over: it resumes or reopens its cycle under the lease."
        ) from exc
    except MissingArtifactError as exc:
        raise AirflowSkipException(
            f"{what}: an earlier stage's output is missing for this cycle ({exc}). The run's cycle was "
            "committed or replaced; clear from 'extract' to run a new cycle."
        ) from exc
    except Exception as exc:
        if is_configuration_error(exc):
            _count_auth_failure(exc, dag_id, run_id)
            raise AirflowFailException(f"{what}: configuration problem, not retried: {exc}") from exc
        raise


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """The run's params as ``stages.start`` takes them. ``shards`` goes through the one number
    parser (1 to ``MAX_SHARDS``; the Param's schema says the same, but a run triggered through
    the API with ``"shards": 0`` must not silently become one shard). Raises ``SettingsError``."""
    from include.provisioning.model import Mode
    from include.provisioning.settings import NumberRange, parse_number
    from include.provisioning.shards import MAX_SHARDS

    shard_count = NumberRange(whole=True, minimum=1, maximum=MAX_SHARDS)
    shards = params.get("shards")
    user = (params.get("user") or "").strip() or None
    return {
        "mode": Mode(params.get("mode") or Mode.AUTO.value),
        "dry_run": bool(params.get("dry_run")),
        "focus_upn": user,
        "approve_deactivations": bool(params.get("approve_deactivations")),
        "lift_quarantine": bool(params.get("reset_quarantine")),
        "restart": bool(params.get("restart_provisioning")),
        "shards": 1 if shards is None else int(parse_number(shards, "param shards", shard_count)),
    }


KNOWN_PARAMS = (
    "mode",
    "dry_run",
    "approve_deactivations",
    "user",
    "reset_quarantine",
    "restart_provisioning",
    "shards",
)
AUTOMATIC_RUN_TYPES = ("scheduled", "backfill")
"""Runs nobody asked for just now: Entra's quarantine holds these back; a manual run goes ahead."""


def check_conf(conf: dict[str, Any] | None) -> None:
    """Refuse a run whose conf names a param the DAG does not have: Airflow accepts unknown keys,
    and a typo (``dryrun``) would otherwise run a real, writing cycle."""
    unknown = sorted(set(conf or {}) - set(KNOWN_PARAMS))
    if unknown:
        raise AirflowFailException(
            f"unknown param(s) {', '.join(map(repr, unknown))} in the run's conf; the DAG's params are "
            f"{', '.join(KNOWN_PARAMS)}. Nothing was done: trigger again with the right names."
        )


def assignment_window(interval: tuple[dt.datetime | None, dt.datetime | None] | None, run_type: str) -> Any:
    """The slice of a slicing DAG's run: its data interval (``slices.AssignmentWindow``); None for
    a DAG that does not slice. Raises ``AirflowSkipException`` for a scheduled run (the DAG is
    run by backfill) and ``AirflowFailException`` for a run without a data interval."""
    if interval is None:
        return None
    from include.provisioning.slices import AssignmentWindow

    if run_type == "scheduled":
        raise AirflowSkipException(
            "this DAG provisions a tenant's history slice by slice through a backfill "
            "(airflow backfill create --dag-id <this DAG> --from-date ... --to-date ...); scheduled runs do nothing"
        )
    start, end = interval
    if start is None or end is None or start >= end:
        raise AirflowFailException(
            f"this run has no data interval ({start} to {end}); slices need one: run the DAG by backfill "
            "or trigger it with a logical date"
        )
    return AssignmentWindow(start, end)


def begin_cycle(
    dag_id: str,
    run_id: str,
    params: dict[str, Any],
    conf: dict[str, Any] | None = None,
    run_type: str = "manual",
    *,
    interval: tuple[dt.datetime | None, dt.datetime | None] | None = None,
) -> PokeReturnValue:
    """Setup (a sensor in reschedule mode): wait for the writer lease, then open or resume this
    run's cycle; ``interval`` (a slicing DAG's data interval) makes it one slice of the tenant.
    XCom: ``{"cycle_id", "mode", "workspace", "dry_run", "user", "shards"}`` — no records, no secrets.
    Raises ``AirflowFailException`` for a conf key that is not a param."""
    check_conf(conf)
    window = assignment_window(interval, run_type)
    from entra_provisioning import runtime
    from include.provisioning import api
    from include.provisioning.workspace import Workspace

    key = runtime.run_key(dag_id, run_id)
    with engine_errors("begin_cycle", dag_id, run_id):
        chosen = _params(params)  # a bad param is a configuration error: failed, not retried
        engine = runtime.build_engine()
        try:
            base = runtime.run_path(dag_id, run_id)
            context, ws = api.open_cycle(
                engine,
                lambda cycle_id: Workspace(base / cycle_id),
                holder=key,
                run_key=key,
                automatic=run_type in AUTOMATIC_RUN_TYPES,
                window=window,
                **chosen,
            )
        except LeaseBusyError as exc:
            log.info("waiting for the writer lease: %s", exc)
            return PokeReturnValue(is_done=False)
        except JobQuarantinedError as exc:
            raise AirflowSkipException(
                f"skipped: the provisioning job is {exc} (a manual run with reset_quarantine lifts it)"
            ) from exc
        finally:
            engine.state.close()
    log.info("cycle %s (%s) under the writer lease; stage outputs in %s", context.cycle_id, context.mode, ws.root)
    for note in context.notes:
        log.info("note: %s", note)
    return PokeReturnValue(
        is_done=True,
        xcom_value={
            "cycle_id": context.cycle_id,
            "mode": context.mode.value,
            "workspace": str(ws.root),
            "dry_run": context.dry_run,
            "user": context.focus_upn,
            "shards": context.shards,
        },
    )


def run_stage(name: str, cycle: dict[str, Any], dag_id: str, run_id: str, shard: dict[str, int] | None = None) -> Any:
    """One stage of the run's cycle (of one ``shard``, ``{"index", "count"}``, for a sharded stage).

    XCom: the stage's counts; ``extract`` returns the run's shards instead (``[{"index", "count"}]``,
    what the sharded stages are mapped over) and logs its counts."""
    from entra_provisioning import runtime
    from include.provisioning import api
    from include.provisioning.shards import Shard
    from include.provisioning.stages import StageOutcome

    part = Shard(shard["index"], shard["count"]) if shard is not None else None
    what = name if part is None or part.whole else f"{name} ({part.describe()})"
    with engine_errors(what, dag_id, run_id):
        engine = runtime.build_engine(lease_holder=runtime.run_key(dag_id, run_id))
        try:
            ws = runtime.workspace(cycle["workspace"])
            options: dict[str, Any] = {"shard": part} if part is not None else {}
            if name == "validate":
                options["write_docs"] = _gx_writer(ws, part or Shard())
            outcome = api.run_stage(engine, name, ws, **options)
        finally:
            engine.state.close()
    assert isinstance(outcome, StageOutcome)
    if outcome.skipped:
        raise AirflowSkipException(f"{what}: {outcome.reason}")
    if outcome.reason:
        log.warning("%s: %s", what, outcome.reason)
    log.info("%s of cycle %s: %s", what, outcome.cycle_id, outcome.counts)
    if name == "extract":
        count = int(cycle.get("shards") or 1)
        return [{"index": each.index, "count": each.count} for each in Shard.all(count)]
    return {"status": outcome.status, "reason": outcome.reason, **outcome.counts}


def _gx_writer(ws: Workspace, shard: Shard) -> Any:
    """Keep Great Expectations' own result and Data Docs page under the run's path (one folder
    per shard: ``great_expectations``, or ``great_expectations.1of4``...)."""
    from include.provisioning.validation_docs import write_validation_artifacts

    def write(validation: Any) -> None:
        try:
            written = write_validation_artifacts(validation, ws.path(shard.name("great_expectations")))
        except Exception:  # the quarantine matters more than the page: keep going, say so
            log.warning("could not keep the Great Expectations result for this run", exc_info=True)
            return
        for kind, path in written.items():
            log.info("Great Expectations %s: %s", kind.replace("_", " "), path)

    return write


def commit_cycle(cycle: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """Commit the cycle (idempotent), keep the report in the run's path; XCom: the summary counts.

    A dry run logs the planned actions' table and keeps the whole plan as ``api.PLAN_CSV`` in the
    run's path (XCom: ``planned_actions``, ``plan_csv``)."""
    from entra_provisioning import runtime
    from entra_provisioning.notify import airflow_run_url
    from include.provisioning import api
    from include.provisioning.report import EscrowBacklog, format_summary
    from include.provisioning.stages import CycleResult

    with engine_errors("commit", dag_id, run_id):
        engine = runtime.build_engine(lease_holder=runtime.run_key(dag_id, run_id))
        try:
            ws = runtime.workspace(cycle["workspace"])
            result = api.run_stage(engine, "commit", ws)
        finally:
            engine.state.close()
    assert isinstance(result, CycleResult)
    summary = result.summary
    dry_run = bool(cycle.get("dry_run"))
    for line in format_summary(summary, dry_run=dry_run, backlog=result.backlog).splitlines():
        log.info("%s", line)
    planned: dict[str, Any] = {}
    if dry_run:  # the same table as the command line's, and the whole plan as a CSV artifact
        preview = api.plan_preview(result)
        log.info("planned changes (dry run, nothing written): %d action(s)", len(preview.rows))
        for line in preview.table:
            log.info("  %s", line)
        path = ws.write_bytes(api.PLAN_CSV, preview.csv_bytes)
        log.info("plan CSV: %s (one row per planned action)", path)
        planned = {"planned_actions": len(preview.rows), "plan_csv": str(path)}
    steps: list[dict[str, str]] = []
    if cycle.get("user"):  # provision on demand: Entra's steps, in the log and in XCom
        from include.provisioning.on_demand import describe

        for step in describe(cycle["user"], result, dry_run=dry_run).steps:
            log.info("[%s] %s: %s", step.status, step.name, step.detail)
            steps.append({"name": step.name, "status": step.status, "detail": step.detail})
    report = result.report.with_run_url(airflow_run_url(dag_id, run_id)) if result.report else None
    if report is not None:
        ws.write_bytes(REPORT_FILES["html"], report.html.encode())
        ws.write_bytes(REPORT_FILES["text"], report.text.encode())
        ws.write_bytes(report.attachment_name, report.attachment_bytes)
        ws.write_json(
            "report",
            {"subject": report.subject, "attachment": report.attachment_name, "records": report.rows},
        )
        log.info("report: %s (%d records) in %s", report.subject, report.rows, ws.root)
    return {
        "cycle_id": summary.cycle_id,
        "status": str(summary.status),
        "mode": str(summary.mode),
        "reason": summary.reason,
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "deactivated": summary.deactivated,
        "quarantined": summary.quarantined,
        "escrowed": summary.escrowed,
        "held_back": summary.held_back,
        "in_scope": summary.in_scope,
        "reactivated": summary.reactivated,  # of "updated", so not part of the sum
        "needs_attention": report is not None,
        **(result.backlog or EscrowBacklog()).to_json(),  # escrow_waiting, escrow_next_attempt_at
        "job_quarantine": _quarantine_xcom(result),
        **planned,
        **({"user": cycle["user"], "steps": steps} if cycle.get("user") else {}),
    }


def _quarantine_xcom(result: Any) -> dict[str, Any] | None:
    quarantine = result.job_quarantine
    if quarantine is None or not quarantine.active:
        return None
    return {
        "reason_code": quarantine.reason_code,
        "reason": quarantine.reason,
        "next_attempt_at": quarantine.next_attempt_at.isoformat() if quarantine.next_attempt_at else None,
        "notify": result.quarantine_notice,
    }


def notify(cycle: dict[str, Any], summary: dict[str, Any], dag_id: str = "", run_id: str = "") -> str:
    """E-mail the cycle's report to the notification address when it needs attention; skipped
    (with the reason) when all is well or no address is set."""
    from entra_provisioning import runtime
    from entra_provisioning.notify import send_report_files

    if cycle.get("dry_run"):
        raise AirflowSkipException("dry run: no e-mail (the report is under the run's path and in the task log)")
    if not summary.get("needs_attention"):
        raise AirflowSkipException("nothing failed, was quarantined or held back: no e-mail")
    to = runtime.notification_address()
    if to is None:
        raise AirflowSkipException(
            f"the cycle needs attention but Variable {runtime.NOTIFICATION_VARIABLE} is not set: no e-mail"
        )
    quarantine = summary.get("job_quarantine")
    if quarantine and quarantine.get("notify"):
        _send_quarantine_notice(to, dag_id, run_id)
    ws = runtime.workspace(cycle["workspace"])
    meta = ws.read_json("report")
    send_report_files(
        to=to,
        subject=meta["subject"],
        html=ws.read_bytes(REPORT_FILES["html"]).decode(),
        text=ws.read_bytes(REPORT_FILES["text"]).decode(),
        attachment_name=meta["attachment"],
        attachment=ws.read_bytes(meta["attachment"]),
        cycle_id=cycle["cycle_id"],
    )
    log.info("sent %r to %s", meta["subject"], to)
    return to


def _send_quarantine_notice(to: str, dag_id: str, run_id: str) -> None:
    """The one e-mail that says this cycle quarantined the job (Entra: once per reason)."""
    from entra_provisioning import runtime
    from entra_provisioning.notify import airflow_run_url, send_quarantine_notice

    engine = runtime.build_engine()
    try:
        quarantine = engine.state.job_quarantine()
        if quarantine.active and quarantine.notified_code != quarantine.reason_code:
            send_quarantine_notice(quarantine, to=to, run_url=airflow_run_url(dag_id, run_id) if run_id else None)
            engine.state.job_quarantine_notified(str(quarantine.reason_code))
            log.info("quarantine notice sent to %s", to)
    finally:
        engine.state.close()


def end_cycle(cycle: dict[str, Any] | None, dag_id: str, run_id: str) -> str:
    """Teardown: close a cycle this run did not commit (its Bulk jobs stay recorded for the next
    cycle to settle) and give the writer lease back. Runs whatever happened in between."""
    from entra_provisioning import runtime
    from include.provisioning import api

    key = runtime.run_key(dag_id, run_id)
    with engine_errors("end_cycle"):
        engine = runtime.build_engine()
        try:
            done = api.close_cycle(
                engine,
                holder=key,
                cycle_id=(cycle or {}).get("cycle_id"),
                reason=f"Airflow run {run_id} ended before the cycle was committed (see the failed task)",
            )
        finally:
            engine.state.close()
    log.info("%s", done)
    return done
