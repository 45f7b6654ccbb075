"""Command line over the engine: ``python -m include.provisioning``.

The commands are fixed (acceptance checks script them):

    sync [--mode auto|full|incremental] [--dry-run [--plan-csv PATH]]
    restart-provisioning --yes
    provision-user <upn>
    validate-config

They read the same connection settings as Airflow (``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``), from
the environment or from ``--env-file`` (the sandbox's ``up --env-file`` output works unchanged).
Every command goes through the engine's front door (``include.provisioning.api``), the same entry
points the Airflow DAG uses. Progress goes to stderr, results to stdout; the exit status is
non-zero when a cycle failed (1), for bad usage or configuration (2, also ``provision-user`` naming
a user Entra ID does not have), when it stopped before writing (3), and when another run holds the
writer lease (4). A dry run that planned its changes exits 0: it did not stop, it wrote nothing by
design (its summary says "dry run"); a dry run that validation stopped exits 3, as the cycle would.
``restart-provisioning`` (Entra's "Restart provisioning": clear the delta link, the escrow and the
job's quarantine, then run a full cycle) exits as ``sync`` does; without ``--yes`` it changes
nothing and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from include.provisioning.gc_pause import collector_paused
from include.provisioning.model import CycleStatus, Mode
from include.provisioning.settings import DEFAULT_MAPPING_PATH, DEFAULT_SUITE_PATH, read_env_file

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_STOPPED, EXIT_BUSY = 0, 1, 2, 3, 4


def _progress_printer(quiet: bool):  # type: ignore[no-untyped-def]
    started = time.monotonic()

    def emit(message: str) -> None:
        if not quiet:
            print(f"{time.monotonic() - started:7.2f}s  {message}", file=sys.stderr, flush=True)

    return emit


def _environ(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.env_file:
        env.update(read_env_file(args.env_file))
    return env


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from include.provisioning.runtime import build_engine

    return build_engine(
        _environ(args),
        mapping_path=args.mapping,
        suite_path=args.suite,
        state_url=args.state_url,
        progress=_progress_printer(args.quiet),
    )


def _write_report(report_dir: Path, cycle_id: str, report) -> list[Path]:  # type: ignore[no-untyped-def]
    report_dir.mkdir(parents=True, exist_ok=True)
    html, csv = report_dir / f"{cycle_id}.html", report_dir / f"{cycle_id}.csv"
    html.write_text(report.html, encoding="utf-8")
    csv.write_bytes(report.csv_bytes)
    return [html, csv]


def summary_dict(summary, *, dry_run: bool = False) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The summary as plain JSON types, with ``in_scope`` spelled out (machines read this); a dry
    run that planned its changes has the status ``dry_run``, not ``stopped``."""
    from include.provisioning.report import planned_dry_run

    data = dataclasses.asdict(summary)
    data["in_scope"] = summary.in_scope
    for key in ("started_at", "finished_at"):
        data[key] = data[key].isoformat() if data[key] else None
    status = "dry_run" if planned_dry_run(summary, dry_run=dry_run) else str(summary.status)
    data["mode"], data["status"], data["dry_run"] = str(summary.mode), status, dry_run
    return data


def _show_plan(result, path: Path | None, report_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A dry run's plan: the first planned actions as a table, and all of them in a CSV at
    ``path`` (default ``<report dir>/<cycle id>-plan.csv``), whose path is printed."""
    from include.provisioning import api

    preview = api.plan_preview(result)
    print(f"Planned changes (dry run, nothing written): {len(preview.rows):,} action(s)")
    for line in preview.table:
        print(f"  {line}")
    path = path or report_dir / f"{result.summary.cycle_id}-plan.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(preview.csv_bytes)
    print(f"Plan CSV: {path} ({len(preview.rows):,} row(s), one per planned action)")


def _sync(args: argparse.Namespace) -> int:
    from include.provisioning import api

    if args.plan_csv is not None and not args.dry_run:
        print("error: --plan-csv goes with --dry-run (a real cycle's outcome is in its report)", file=sys.stderr)
        return EXIT_CONFIG
    engine = _engine(args)
    result = api.sync(
        engine,
        Mode(args.mode),
        dry_run=args.dry_run,
        force=args.force,
        approve_deactivations=args.approve_deactivations,
    )
    return _cycle_outcome(args, result, dry_run=args.dry_run)


def _restart_provisioning(args: argparse.Namespace) -> int:
    from include.provisioning import api

    if not args.yes:
        print(
            "error: restart-provisioning clears the delta link, the escrow (failed records are no longer "
            "retried) and the job's quarantine, then runs a full cycle; add --yes to do it",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    engine = _engine(args)
    outcome = api.restart_and_sync(engine, force=args.force, approve_deactivations=args.approve_deactivations)
    print(f"Restart provisioning: {outcome.cleared}")
    return _cycle_outcome(args, outcome.result)


def _cycle_outcome(args: argparse.Namespace, result, *, dry_run: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Print a cycle's notes, summary and report paths; its exit status (see the module notes)."""
    from include.provisioning.report import format_summary, planned_dry_run

    for note in result.notes:
        print(f"note: {note}")
    if dry_run:
        _show_plan(result, args.plan_csv, args.report_dir)
    print(format_summary(result.summary, dry_run=dry_run, backlog=result.backlog))
    if args.summary_json:
        data = summary_dict(result.summary, dry_run=dry_run)
        args.summary_json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    if result.report is not None and not dry_run:
        paths = _write_report(args.report_dir, result.summary.cycle_id, result.report)
        print(f"Failure report: {paths[0]} (CSV: {paths[1]})")
    if result.summary.status is CycleStatus.SUCCEEDED or planned_dry_run(result.summary, dry_run=dry_run):
        return EXIT_OK
    return EXIT_STOPPED if result.summary.status is CycleStatus.STOPPED else EXIT_FAILED


def _provision_user(args: argparse.Namespace) -> int:
    from include.provisioning import api

    engine = _engine(args)
    outcome = api.provision_user(engine, args.upn, dry_run=args.dry_run)
    for step in outcome.steps:
        print(f"[{step.status:>7}] {step.name}: {step.detail}")
    if outcome.unknown_user:
        print(f"error: Entra ID has no user {args.upn}; check the userPrincipalName", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _validate_config(args: argparse.Namespace) -> int:
    from include.provisioning import api

    check = api.check_config(_environ(args), args.mapping, args.suite, connect=args.connect)
    problems = check.problems
    for line in check.info:
        print(line)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print("configuration is valid" if not problems else f"{len(problems)} problem(s) found")
    return EXIT_OK if not problems else EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", type=Path, help="KEY=VALUE settings (e.g. the sandbox's env file)")
    common.add_argument("--mapping", type=Path, default=DEFAULT_MAPPING_PATH, help="mapping table (YAML)")
    common.add_argument("--suite", type=Path, default=DEFAULT_SUITE_PATH, help="expectation suite (JSON)")
    common.add_argument(
        "--state-url",
        help="SQLAlchemy URL of the state store (default: AIRFLOW_CONN_PROVISIONING_STATE or .state/provisioning.db)",
    )
    common.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    parser = argparse.ArgumentParser(
        prog="python -m include.provisioning", description="Entra ID -> Salesforce user provisioning"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cycle = argparse.ArgumentParser(add_help=False)
    cycle.add_argument(
        "--force", action="store_true", help="take the writer lease and the cycle over from a run you know is dead"
    )
    cycle.add_argument(
        "--approve-deactivations",
        action="store_true",
        help="let this cycle's deactivations through the accidental-deletion threshold (after review)",
    )
    cycle.add_argument("--summary-json", type=Path, help="also write the cycle summary as JSON here")
    cycle.add_argument(
        "--report-dir", type=Path, default=Path(".state/reports"), help="where failure reports (and dry-run plans) go"
    )
    sync = sub.add_parser("sync", parents=[common, cycle], help="run one provisioning cycle")
    sync.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.AUTO.value)
    sync.add_argument("--dry-run", action="store_true", help="print the planned changes; write nothing")
    sync.add_argument(
        "--plan-csv",
        type=Path,
        help="with --dry-run: write the whole plan here (default: <report dir>/<cycle id>-plan.csv)",
    )
    sync.set_defaults(func=_sync)
    restart = sub.add_parser(
        "restart-provisioning",
        parents=[common, cycle],
        help="Entra's 'Restart provisioning': clear the delta link, escrow and quarantine, then run a full cycle",
        description=(
            "Entra's 'Restart provisioning': forget the delta link (the cycle is full), the escrow (failed "
            "records are no longer retried) and the job's quarantine, then run a full cycle, which rebuilds "
            "the snapshot, links, seen users and roles from what it reads. The snapshot is kept until then, "
            "so the users this product manages are still recognised. Exit status as for sync."
        ),
    )
    restart.add_argument("--yes", action="store_true", help="confirm: without it nothing is changed (exit 2)")
    restart.set_defaults(func=_restart_provisioning)
    one = sub.add_parser("provision-user", parents=[common], help="provision one user now, showing each step")
    one.add_argument("upn", help="the user's userPrincipalName")
    one.add_argument("--dry-run", action="store_true", help="show the steps and the planned action only")
    one.set_defaults(func=_provision_user, pause_collector=True)
    check = sub.add_parser("validate-config", parents=[common], help="check mapping, suite and connections")
    check.add_argument("--connect", action="store_true", help="also log in to Graph and Salesforce")
    check.set_defaults(func=_validate_config)
    return parser


def main(argv: Sequence[str] | None = None, *, process_ends: bool = False) -> int:
    """Run one command; its exit status. ``process_ends``: the process exits right after
    (``python -m include.provisioning``), so a command that paused the cyclic collector leaves
    it paused instead of giving it back."""
    args = _parser().parse_args(argv)
    # azure-identity logs a refused token request (trace id, timestamp, response body) at WARNING;
    # with no handler configured Python prints that to stderr, --quiet or not, before the engine's
    # own error, which names the connection and what to check. PROVISIONING_DEBUG shows it again.
    if not os.environ.get("PROVISIONING_DEBUG"):
        logging.getLogger("azure.identity").setLevel(logging.ERROR)
    # provision-user is a short process over one user: its cost is the imports (GX's above all,
    # and pandas' and SQLAlchemy's below, hence paused before them), whose long-lived objects the
    # cyclic collector would rescan again and again (2 of ~6 CPU seconds, measured) while the
    # command makes little garbage. A sync keeps it on (memory). Giving the collector back just
    # before the process exits would start at once a collection of everything allocated while it
    # was paused (0.11-0.14 CPU s, measured with gc.callbacks).
    pause = getattr(args, "pause_collector", False)
    if pause and process_ends:
        gc.disable()  # for good: __main__ freezes the heap and exits
    with collector_paused() if pause and not process_ends else contextlib.nullcontext():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """``args.func(args)``, with the engine's errors turned into exit statuses (module notes)."""
    from include.provisioning.errors import ConfigurationError
    from include.provisioning.state import StateError
    from include.provisioning.state.lease import LeaseBusyError

    try:
        return int(args.func(args))
    except LeaseBusyError as exc:
        print(
            f"error: another run is writing: {exc}; wait for it, or use --force if you know it is dead", file=sys.stderr
        )
        return EXIT_BUSY
    except (ConfigurationError, StateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        if os.environ.get("PROVISIONING_DEBUG"):
            raise
        print(f"error: the cycle failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("(set PROVISIONING_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILED
