"""Copy a kept ``benchmark_shards.py --keep`` run so that one of its stages can be run again.

    .venv/bin/python scripts/kept_run.py KEPT_DIR OUT_DIR [--shards 4]

``KEPT_DIR`` is what ``--keep`` printed (read only). ``OUT_DIR`` is emptied, then holds a copy of
the run's workspace, its ``cycle.json`` pointing at that copy, the sandbox's env file, and a state
store as it was before the commit: the committed rows deleted and the cycle uncommitted (a
committed cycle is not committed again), with the writer lease taken for the benchmark's run key.
The command that runs a stage on the copy is printed; a stage rewrites its own files. ``commit``,
``validate`` and the load's own work (``benchmark_load_task.py``) need no sandbox; ``extract``,
``transform``, ``plan`` and ``load`` need one on the same fixtures (the kept ``sandbox.env`` names
the benchmark's, which has stopped).

Why: a stage's CPU is compared between two trees on the same input, A B A B, and a 1,000,000-user
cycle takes minutes to make that input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from include.provisioning.state.store import CYCLE_COUNTS, StateStore  # noqa: E402
from scripts.task_instance import RUN_KEY  # noqa: E402

COMMITTED_TABLES = (
    "provisioning_log",
    "snapshot",
    "quarantine",
    "seen",
    "escrow",
    "watermark",
    "job_quarantine",
    "leases",
)
"""What a first sync's commit fills (and the lease, taken again below)."""


def copy_run(kept: Path, out: Path, shards: int) -> Path:
    """Copy ``kept``'s run of ``shards`` shards into ``out``; the copy's run directory."""
    source = kept / f"shards{shards}"
    cycle = json.loads((source / "cycle.json").read_text())
    workspace = Path(cycle["workspace"]).name
    shutil.rmtree(out, ignore_errors=True)
    run_dir = out / f"shards{shards}"
    shutil.copytree(source / workspace, run_dir / workspace)
    if (kept / "sandbox.env").exists():  # names the stopped sandbox: replace it to run a stage that needs one
        shutil.copy2(kept / "sandbox.env", out / "sandbox.env")
    cycle["workspace"] = str(run_dir / workspace)
    (run_dir / "cycle.json").write_text(json.dumps(cycle))
    _state_before_commit(source / "state.db", run_dir / "state.db")
    return run_dir


def _state_before_commit(kept_db: Path, db: Path) -> None:
    shutil.copy2(kept_db, db)
    with sqlite3.connect(db) as conn:
        for table in COMMITTED_TABLES:
            conn.execute(f'DELETE FROM "{table}"')
        counts = ", ".join(f"{name} = 0" for name in CYCLE_COUNTS)
        conn.execute(f"UPDATE cycles SET status = 'running', finished_at = NULL, committed_at = NULL, {counts}")
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")  # the kept state is ~1.5 GB: the copy is not
    store = StateStore(f"sqlite:///{db}")
    try:
        store.acquire_lease(RUN_KEY, ttl=dt.timedelta(hours=10), force=True)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kept", type=Path, help="a kept benchmark_shards.py run (read only)")
    parser.add_argument("out", type=Path, help="emptied, then holds the copy")
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)
    run_dir = copy_run(args.kept, args.out, args.shards)
    print(
        "run a stage on the copy, from a tree's root:\n"
        f"  PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python scripts/task_instance.py --stage STAGE [--index I] "
        f"--run-dir {run_dir} --env-file {args.out / 'sandbox.env'} --state-url sqlite:///{run_dir / 'state.db'} "
        f"--count {args.shards}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
