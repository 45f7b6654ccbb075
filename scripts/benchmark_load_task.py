"""The CPU and peak RSS of one load task's own work, without HTTP, on a kept run's plan part.

    python scripts/benchmark_load_task.py RUN_DIR OUT_DIR [--index 0] [--count 4]

``RUN_DIR`` is a kept workspace of ``scripts/benchmark_shards.py --keep`` (read only: its
``plan.<i>of<n>.parquet``). Does what ``stages._load`` does: read the plan part, resume (a fresh
SQLite state store in ``OUT_DIR`` has no jobs), ``_send`` through ``BulkLoader``, put the results
into ``OUT_DIR``. Salesforce is faked inside ``BulkLoader``: job ids are counted, the upload is
kept, close and wait return at once, and ``successfulResults`` reports every uploaded row created
(the other result sets are empty). The fake's own CPU is measured and subtracted.

Prints the engine's CPU seconds (``time.process_time``; decode, send, put; ``first_upload``: from
the plan's read to the first job's upload, the time the sandbox waits for), the process's peak RSS
(``ru_maxrss``) and sha256 prefixes of the uploaded CSV (per job), of the ``bulk_jobs`` rows and of
the results file, so two trees can be compared on the same part: run this file with
``PYTHONPATH=<tree>:<tree>/plugins`` from each tree's root, interleaved (A B A B), and compare medians.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import resource
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))  # after PYTHONPATH: the tree measured is the one it names

from include.provisioning import stages  # noqa: E402
from include.provisioning.artifacts import RESULTS  # noqa: E402
from include.provisioning.gc_pause import collector_paused  # noqa: E402
from include.provisioning.salesforce.load import BulkLoader  # noqa: E402
from include.provisioning.shards import Shard  # noqa: E402
from include.provisioning.state.store import StateStore  # noqa: E402
from include.provisioning.workspace import Workspace  # noqa: E402

CYCLE_ID = "benchmark-load"


class FakeBulk:
    """Salesforce's side of the Bulk jobs, in process; ``cpu`` is the CPU seconds it used."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.uploads: dict[str, bytes] = {}
        self.csv_digest = hashlib.sha256()
        self.first_upload: float | None = None
        """``time.process_time`` at the first upload, less the fake's CPU until then."""
        self._ids = itertools.count(1)

    def call(self, fn: Any, what: str = "") -> Any:
        """``SalesforceSession.call``: answers by what the loader says it is doing."""
        started = time.process_time()
        try:
            if what.startswith("create a Bulk"):
                return {"id": f"750{next(self._ids):015d}"}
            if what.startswith("read successfulResults"):
                return self._successful(what.rsplit(" ", 1)[1])
            return ""
        finally:
            self.cpu += time.process_time() - started

    def requests_by_kind(self) -> dict[str, int]:
        return {}

    def upload(self, job_id: str, data: bytes) -> None:
        started = time.process_time()
        if self.first_upload is None:
            self.first_upload = started - self.cpu
        self.uploads[job_id] = data
        self.csv_digest.update(job_id.encode() + b"\0" + data)
        self.cpu += time.process_time() - started

    def _successful(self, job_id: str) -> str:
        """Every uploaded row created, as ``sf__Id,sf__Created,<the row>``; built from bytes and
        decoded once, as the real client's response is."""
        head, _, body = self.uploads.pop(job_id).partition(b"\n")
        lines = body.split(b"\n")[:-1]
        del body
        rows = (b"005%012dAAA,true,%s" % (n, line) for n, line in enumerate(lines))
        text = b"\n".join([b'"sf__Id","sf__Created",' + head, *rows]) + b"\n"
        del lines
        return text.decode()


def _fake_salesforce(fake: FakeBulk) -> None:
    """Route ``BulkLoader``'s upload, close and wait to ``fake`` (the rest goes through ``call``)."""
    BulkLoader._upload = lambda self, job_id, data: fake.upload(job_id, data)  # type: ignore[method-assign]
    BulkLoader._close = lambda self, job_id: None  # type: ignore[method-assign]
    BulkLoader._wait = lambda self, job_id, operation, rows: {"state": "JobComplete"}  # type: ignore[method-assign]


def _read_plan(ws: Workspace, shard: Shard) -> Any:
    """The plan part as the tree's ``_load`` reads it (a tree before ``load_plan``: ``PLAN``)."""
    if hasattr(stages, "load_plan"):
        return stages.load_plan(ws, shard)
    return ws.get(shard.name("plan"), stages.PLAN)


def _unsent(plan: Any, done: dict[str, Any]) -> Any:
    """What the tree's ``_load_shard`` sends after the resume (a tree before ``_unsent``: every
    write not done, always restricted)."""
    if hasattr(stages, "_unsent"):
        return stages._unsent(plan, done)
    return stages._restrict(plan, {c.entra_id for c in plan.writes()} - set(done))


def _digest_jobs(store: StateStore) -> str:
    digest = hashlib.sha256()
    for job in store.pending_jobs(CYCLE_ID):
        digest.update(repr((job.operation, job.key_field, job.keys, job.records)).encode())
    return digest.hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a kept benchmark_shards.py run (read only)")
    parser.add_argument("out_dir", type=Path, help="emptied, then holds the state store and results")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    shutil.rmtree(args.out_dir, ignore_errors=True)
    args.out_dir.mkdir(parents=True)
    fake = FakeBulk()
    _fake_salesforce(fake)
    store = StateStore(f"sqlite:///{args.out_dir}/state.db")
    engine: Any = SimpleNamespace(state=store, progress=lambda message: None, table=None)
    session: Any = fake
    shard = Shard(args.index, args.count)
    # As the tree's _load does: a tree with _load_shard runs the load with the collector paused.
    paused = collector_paused() if hasattr(stages, "_load_shard") else contextlib.nullcontext()
    with paused:
        started = time.process_time()
        plan = _read_plan(Workspace(args.run_dir), shard)
        decoded = time.process_time()
        done = stages._resume_jobs(engine, session, CYCLE_ID, plan)
        results = [*done.values(), *stages._send(engine, session, CYCLE_ID, _unsent(plan, done))]
        sent = time.process_time()
        Workspace(args.out_dir).put(shard.name("results"), results, RESULTS)
        ended = time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results_file = args.out_dir / f"{shard.name('results')}.parquet"
    first = (fake.first_upload or ended) - started
    print(
        f"cpu={ended - started - fake.cpu:.2f} first_upload={first:.2f} decode={decoded - started:.2f} "
        f"send={sent - decoded - fake.cpu:.2f} "
        f"put={ended - sent:.2f} fake={fake.cpu:.2f} peak_rss={peak:.0f}MiB "
        f"csv={fake.csv_digest.hexdigest()[:12]} jobs={_digest_jobs(store)} "
        f"results={hashlib.sha256(results_file.read_bytes()).hexdigest()[:12]} n={len(results)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
