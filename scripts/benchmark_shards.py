"""Benchmark: the initial sync through Airflow with 1 and with 4 shards, per task instance.

    .venv/bin/python scripts/benchmark_shards.py [--sizes 100000,1000000] [--shards 1,4] [--seed 1]
        [--cache .bench] [--json PATH] [--keep] [--airflow-env AIRFLOW__SECTION__KEY=VALUE ...]

Targets (issue 7): a 1,000,000-user initial sync within 150 s on this 2-core machine, and no task
above 2 GiB with 4 shards. This is a benchmark that prints what it measured, not a test: nothing
is asserted. At 1,000,000 users it takes about half an hour (the tenant is generated once into the
cache; the sandbox takes a minute to load it); run nothing else heavy meanwhile.

For each size: generate (or reuse) the tenant, start the sandbox and one ``airflow standalone``
(LocalExecutor; the project's configuration, ``[core] parallelism`` 4, so the four shards of a
mapped stage run at once), then for each shard count: reset the sandbox to the fixtures
(``PUT /_sandbox/state``), start from an empty state store, and trigger one run of the provisioning
DAG with ``{"shards": N}`` (an initial, full cycle). Wall time is from the trigger until the run is
seen ``success``. Each task instance's peak RSS is its task child's (the process that runs the
task's code, sampled every 0.2 s with its kernel high-water mark; ``benchmark_airflow.py`` explains
the sampling), so mapped shards are measured one by one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from include.sandbox.process import SandboxProcess  # noqa: E402
from scripts.benchlib import Report, cached_fixtures, sizes_arg  # noqa: E402
from scripts.benchmark_airflow import (  # noqa: E402
    DAG_ID,
    RUN_TIMEOUT,
    SAMPLE_SECONDS,
    AirflowBench,
    _load,
    _mib,
    _outcome,
    _parse_time,
    _reset_sandbox,
    _table,
)

TARGET_SECONDS_1M = 150.0
TARGET_TASK_RSS = 2 * 2**30


@dataclass
class TaskInstance:
    task: str
    """``extract``, ``load[2]`` (a mapped instance), ..."""
    state: str
    seconds: float | None
    peak_rss: int | None


@dataclass
class ShardRun:
    users: int
    shards: int
    wall: float
    state: str
    outcome: str
    load: str
    tasks: list[TaskInstance] = field(default_factory=list)

    def max_task(self) -> TaskInstance | None:
        measured = [t for t in self.tasks if t.peak_rss]
        return max(measured, key=lambda t: t.peak_rss or 0) if measured else None


def _fresh_state(bench: AirflowBench) -> None:
    """Remove the state store the server's ``provisioning_state`` connection names (SQLite)."""
    conn = json.loads(bench.server.env["AIRFLOW_CONN_PROVISIONING_STATE"])
    path = conn["extra"]["sqlite_path"]
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def _run(bench: AirflowBench, users: int, shards: int) -> ShardRun:
    run_id = f"bench_shards{shards}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    load = _load()
    started = time.perf_counter()
    body = {"dag_run_id": run_id, "logical_date": dt.datetime.now(dt.UTC).isoformat(), "conf": {"shards": shards}}
    answer = bench.server.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"trigger answered {answer.status_code}: {answer.text[:500]}")
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
    while (run := bench.server.api("GET", base).json())["state"] not in ("success", "failed"):
        if time.perf_counter() - started > RUN_TIMEOUT:
            raise RuntimeError(f"run {run_id} still {run['state']} after {RUN_TIMEOUT:.0f}s")
        time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - started
    time.sleep(2 * SAMPLE_SECONDS)  # let the sampler see the last task child go
    assert bench.sampler is not None
    children = bench.sampler.task_children()
    tis = bench.server.api("GET", f"{base}/taskInstances", params={"limit": 200}).json()["task_instances"]
    rows = []
    for ti in sorted(tis, key=lambda t: (t.get("start_date") or "9999", t["task_id"], t.get("map_index", -1))):
        index = ti.get("map_index", -1)
        child = children.get(ti["id"])
        start, end = _parse_time(ti.get("start_date")), _parse_time(ti.get("end_date"))
        rows.append(
            TaskInstance(
                task=ti["task_id"] + (f"[{index}]" if index >= 0 else ""),
                state=ti.get("state") or "?",
                seconds=(end - start).total_seconds() if start and end else None,
                peak_rss=child.peak if child else None,
            )
        )
    summary = bench.commit_summary(run_id)
    return ShardRun(users, shards, wall, run["state"], _outcome(summary) if summary else run["state"], load, rows)


def _size(users: int, shard_counts: list[int], args: argparse.Namespace, report: Report) -> list[ShardRun]:
    fixtures = cached_fixtures(users, args.seed, args.cache, report, via_cli=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-shards-{users}-"))
    sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", workdir, startup_timeout=900)
    runs: list[ShardRun] = []
    try:
        bench = AirflowBench(workdir / "airflow", sandbox, dict(args.airflow_env))
        try:
            report.add(f"{users:,} airflow standalone up", bench.start(), "healthy, DAG parsed, unpaused")
            for shards in shard_counts:
                report.add(f"{users:,} sandbox reset", _reset_sandbox(sandbox, fixtures), "to the fixtures")
                _fresh_state(bench)
                run = _run(bench, users, shards)
                top = run.max_task()
                top_text = f"{_mib(top.peak_rss)} ({top.task})" if top else "-"
                report.add(f"{users:,} {shards} shard(s)", run.wall, run.outcome, f"max task {top_text}")
                runs.append(run)
        finally:
            bench.stop()
    finally:
        sandbox.stop()
        if args.keep:
            print(f"  kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def _print(runs: list[ShardRun]) -> None:
    print("\nInitial sync through Airflow (LocalExecutor), one run per row")
    rows = []
    for run in runs:
        top = run.max_task()
        target = ""
        if run.users >= 1_000_000:
            target = "met" if run.wall <= TARGET_SECONDS_1M else f"missed (target {TARGET_SECONDS_1M:.0f} s)"
        rss_target = ""
        if run.shards >= 4 and top is not None and top.peak_rss:
            rss_target = "met" if top.peak_rss <= TARGET_TASK_RSS else "missed (target 2 GiB)"
        rows.append(
            (
                f"{run.users:,}",
                str(run.shards),
                run.state,
                f"{run.wall:.1f}",
                target,
                _mib(top.peak_rss) if top else "-",
                top.task if top else "-",
                rss_target,
                run.load,
            )
        )
    _table(
        ("users", "shards", "state", "wall s", "150 s", "max task RSS", "task", "2 GiB", "load avg before"),
        rows,
        right={0, 1, 3, 5},
    )
    for run in runs:
        print(f"\n{run.users:,} users, {run.shards} shard(s): {run.outcome}")
        _table(
            ("task instance", "state", "seconds", "peak RSS"),
            [
                (t.task, t.state, f"{t.seconds:.1f}" if t.seconds is not None else "-", _mib(t.peak_rss))
                for t in run.tasks
            ],
            right={2, 3},
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes_arg, default="100000,1000000", help="comma-separated tenant sizes")
    parser.add_argument("--shards", default="1,4", help="comma-separated shard counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".bench")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (logs, AIRFLOW_HOME)")
    parser.add_argument(
        "--airflow-env",
        nargs="*",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        help="extra AIRFLOW__SECTION__KEY=VALUE settings for the server",
    )
    args = parser.parse_args(argv)
    report = Report()
    runs: list[ShardRun] = []
    counts = [int(n) for n in args.shards.split(",")]
    for users in args.sizes:
        runs += _size(users, counts, args, report)
    report.print()
    _print(runs)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
