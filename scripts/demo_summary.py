"""Print what the main command did: each DAG run with its task states and cycle summary, the
e-mails the SMTP catcher received, and where to look next (``scripts/demo.sh`` calls it).

Reads Airflow's metadata database (the ``AIRFLOW_HOME`` the demo configured), the engine's state
store and the catcher's folder; changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAIL_LINES = 40
"""Lines of each received e-mail printed here (the whole message: scripts/show_mail.py)."""
TASKS = ("begin_cycle", "extract", "validate", "transform", "plan", "load", "commit", "notify", "end_cycle")


def _runs(dag_id: str) -> list[tuple[str, str, dict[str, str], dict[str, object]]]:
    """(run id, state, task → state, commit's summary XCom) per run, oldest first."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after)).all()
        for run in runs:
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
            value = session.scalar(
                select(XComModel.value).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run.run_id,
                    XComModel.task_id == "commit",
                    XComModel.key == "return_value",
                )
            )
            found.append((run.run_id, str(run.state), states, _deserialize(value)))
    return found


def _deserialize(value: object) -> dict[str, object]:
    import json

    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _outputs(runs: Path, cycle_id: str) -> str:
    """Where a cycle's stage outputs are, and whether it has a report: the commit task writes
    ``report.html`` (and the CSV) only for a cycle that needs attention (``report.cycle_report``)."""
    found = sorted(runs.glob(f"*/{cycle_id}"))
    if not found:
        return "(none found)"
    if (found[0] / "report.html").exists():
        return f"{_short(found[0])}/ (report.html: the cycle report)"
    return f"{_short(found[0])}/ (no report.html: nothing failed, was quarantined or held back)"


def _short(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--state-url", required=True)
    parser.add_argument("--mail-dir", type=Path, required=True)
    args = parser.parse_args()

    from include.provisioning.report import EscrowBacklog, format_summary
    from include.provisioning.state import StateStore
    from scripts.show_mail import main as show_mail

    home = Path(os.environ["AIRFLOW_HOME"])
    print("What happened")
    print("=============")
    with StateStore(args.state_url) as store:
        cycles = {c.cycle_id: c for c in store.cycles(limit=50)}
        for number, (run_id, state, tasks, summary) in enumerate(_runs(args.dag_id), start=1):
            print(f"\nDAG run {number}: {run_id}: {state}")
            print("  tasks: " + ", ".join(f"{t} {tasks.get(t, '-')}" for t in TASKS))
            cycle = cycles.get(str(summary.get("cycle_id")))
            if cycle is not None:
                # Who waits in escrow after the run, as its task log says: an incremental cycle's
                # "escrowed 0" counts only the users it looked at.
                backlog = EscrowBacklog.from_json(summary)
                print("  " + format_summary(cycle, backlog=backlog).replace("\n", "\n  "))
                print(f"  stage outputs: {_outputs(home / 'provisioning' / 'runs' / args.dag_id, cycle.cycle_id)}")
    mails = sorted(args.mail_dir.glob("*.eml"))
    print(f"\nE-mails received by the SMTP catcher: {len(mails)}")
    for path in mails:
        print()
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            show_mail([str(path)])
        lines = shown.getvalue().splitlines()
        print("\n".join(lines[:MAIL_LINES]))
        if len(lines) > MAIL_LINES:
            print(f"... {len(lines) - MAIL_LINES} more lines: .venv/bin/python scripts/show_mail.py {path} --csv 5")
    runs = home / "provisioning" / "runs" / args.dag_id
    shown = runs.relative_to(Path.cwd()) if runs.is_relative_to(Path.cwd()) else runs
    docs = sorted(runs.glob("*/*/great_expectations/data_docs/index.html"))
    indent = " " * 34
    doc_lines = "\n".join(f"{indent}run {n}: {_short(path)}" for n, path in enumerate(docs, 1))
    mail, state = _short(args.mail_dir), _short(Path(args.state_url.removeprefix("sqlite:///")))
    print(
        f"""
Where to look
  task logs of each run:          .demo/airflow-run1.log, .demo/airflow-run2.log
  stage outputs of each run:      {shown}/<run>/<cycle>/
                                  (users/valid/mapped/plan/results .parquet; report.html and the CSV
                                  when the cycle needs attention: something failed, was quarantined or held back)
  Great Expectations Data Docs:   (open in a browser; run 1 holds the failed expectations)
{doc_lines or indent + "(none: nothing needed validating)"}
  received e-mails:               {mail}/*.eml  (.venv/bin/python scripts/show_mail.py {mail})
                                  (their "Open the run" link points at [api] base_url; the demo runs no web server)
  state store (SQLite):           {state}  (provisioning log, snapshot, escrow)
  the Airflow UI:                 bash scripts/standalone.sh
                                  (a separate Airflow with its own sandbox, runs and e-mails)
  the command line:               the demo's sandbox is stopped now; start one as the README's "The sandbox" shows,
                                  then .venv/bin/python -m include.provisioning sync --env-file .sandbox/sandbox.env"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
