"""Benchmark: the initial sync with 1 and with 4 shards, one process per task instance.

    .venv/bin/python scripts/benchmark_shards.py [--sizes 100000,1000000] [--shards 1,4] [--seed 1]
        [--cache /tmp/provisioning-bench] [--parallelism 4] [--repeat 1] [--json PATH] [--keep]

Targets (issue 7): a 1,000,000-user initial sync within 150 s on this 2-core machine, and no task
above 2 GiB with 4 shards. This is a benchmark that prints what it measured, not a test: nothing
is asserted. At 1,000,000 users a run takes about ten minutes per shard count; the tenant is
generated once into the cache (``--cache``, default under /tmp) and the sandbox takes a minute or
two to load it. Run nothing else heavy meanwhile.

How it runs: the stages are run the way the provisioning DAG's tasks run them, one fresh Python
process (``scripts/task_instance.py``) per task instance (``begin``, ``extract``, ``validate[i]``,
``transform[i]``, ``plan``, ``load[i]``, ``commit``, ``end``), each building its own engine,
reading the previous stages' Parquet files from the run's workspace and holding the writer lease
under the run's key; the shards of a mapped stage run at once, at most ``--parallelism`` together
(the project's Airflow ``[core] parallelism`` is 4). Airflow's scheduler, API server and task
supervisor are left out: driving ``airflow standalone`` at 1,000,000 users made the REST API answer
too slowly to poll on this machine, and what issue 7 budgets is the engine's work per task.
``notify`` (e-mail only) is not run. ``benchmark_airflow.py`` measures what Airflow itself adds. A
failed task instance is retried as the DAG retries it (``RETRIES``), with its log's tail printed;
each attempt is a row.

For each size: generate (or reuse) the tenant, start the sandbox, then for each shard count reset
the sandbox to the fixtures (``PUT /_sandbox/state``), start from an empty SQLite state store, and
run the cycle. Per task instance: wall seconds, CPU seconds (user + system, the kernel's ``wait4``
accounting of that process) and peak RSS (the kernel's high-water mark ``VmHWM``, which the task
process writes down as it ends: exact, no sampling). Wall time of
the cycle is from starting ``begin`` to the end of ``end``. The 1-minute load average before each
cycle is printed: other work on the machine stretches wall time, not CPU seconds or RSS.

``--repeat N`` runs each shard count N times (the sandbox reset to the fixtures before each) and
adds a table of medians: this machine's speed drifts by a quarter within an hour
(docs/decisions.md, issue 7), so one run says little about a target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.benchlib import Report, cached_fixtures, sizes_arg, tree_cpu  # noqa: E402
from scripts.benchmark_airflow import _load, _mib, _outcome, _reset_sandbox, _table  # noqa: E402
from scripts.task_instance import peak_file, task_name  # noqa: E402

TARGET_SECONDS_1M = 150.0
TARGET_TASK_RSS = 2 * 2**30
RETRIES = 3
"""Attempts after a failed one, as the provisioning DAG's ``default_args`` ``retries`` (without
its 30 s+ delay); every stage is safe to re-run (``load`` resumes its recorded Bulk jobs)."""


@dataclass
class TaskInstance:
    task: str
    """``extract``, ``load[2]`` (a mapped instance), ..."""
    exit_code: int
    seconds: float
    cpu_seconds: float
    """User + system CPU of the process (``wait4``)."""
    peak_rss: int
    """The kernel's high-water mark of the process's RSS (``VmHWM``), in bytes; 0 if it died first."""


@dataclass
class ShardRun:
    users: int
    shards: int
    run: int
    """1 for the first cycle of this size and shard count, 2 for its first repeat, ..."""
    wall: float
    state: str
    outcome: str
    load: str
    tasks: list[TaskInstance] = field(default_factory=list)
    sandbox_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of the sandbox process (the stand-in for Graph and Salesforce, sharing the
    machine's cores with the tasks) while each stage ran, by stage."""

    def max_task(self) -> TaskInstance | None:
        return max(self.tasks, key=lambda t: t.peak_rss) if self.tasks else None

    def cpu_seconds(self) -> float:
        return sum(t.cpu_seconds for t in self.tasks)


# -- the driver ----------------------------------------------------------------------------------


def _task(stage: str, run_dir: Path, env_file: Path, state_url: str, count: int, *, index: int | None) -> TaskInstance:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "task_instance.py"), "--stage", stage]
    command += ["--run-dir", str(run_dir)]
    command += ["--env-file", str(env_file), "--state-url", state_url, "--count", str(count)]
    name = task_name(stage, index)
    if index is not None:
        command += ["--index", str(index)]
    with (run_dir / f"{name}.log").open("ab") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    peak = peak_file(run_dir, name)
    return TaskInstance(name, child.returncode, seconds, cpu, int(peak.read_text()) if peak.exists() else 0)


def _cycle(
    users: int, shards: int, env_file: Path, workdir: Path, parallelism: int, *, sandbox_pid: int, run: int = 1
) -> ShardRun:
    run_dir = workdir / (f"shards{shards}" if run == 1 else f"shards{shards}-run{run}")
    run_dir.mkdir()
    state_url = f"sqlite:///{run_dir / 'state.db'}"
    load = _load()
    tasks: list[TaskInstance] = []
    sandbox_cpu: dict[str, float] = {}
    started = time.perf_counter()

    def step(stage: str, sharded: bool = False) -> bool:
        indices: list[int | None] = list(range(shards)) if sharded else [None]
        before = tree_cpu(sandbox_pid)
        with ThreadPoolExecutor(max_workers=min(parallelism, len(indices))) as pool:
            done = list(pool.map(lambda i: attempts(stage, i), indices))
        sandbox_cpu[stage] = tree_cpu(sandbox_pid) - before
        print(f"    {'(sandbox)':<14} {'':>9}  {sandbox_cpu[stage]:7.1f} CPU-s  while {stage} ran", flush=True)
        return all(t.exit_code == 0 for t in done)

    def attempts(stage: str, index: int | None) -> TaskInstance:
        """A task instance with the DAG's retries: each failed attempt's log tail is printed, and
        every attempt is a row of the table (its time and memory count)."""
        for attempt in range(1 + RETRIES):
            task = _task(stage, run_dir, env_file, state_url, shards, index=index)
            if attempt:
                task.task += f" try {attempt + 1}"
            tasks.append(task)
            print(
                f"    {task.task:<14} {task.seconds:7.1f} s  {task.cpu_seconds:7.1f} CPU-s  {_mib(task.peak_rss):>10}"
                f"  exit {task.exit_code}",
                flush=True,
            )
            if task.exit_code == 0:
                break
            tail = (run_dir / f"{task_name(stage, index)}.log").read_text(errors="replace").splitlines()[-12:]
            print("\n".join(f"      | {line}" for line in tail), flush=True)
        return task

    order = [("begin", False), ("extract", False), ("validate", True), ("transform", True), ("plan", False)]
    order += [("load", True), ("commit", False)]
    ok = all(step(stage, sharded) for stage, sharded in order)  # stops at the first failed stage
    step("end")
    wall = time.perf_counter() - started
    summary_file = run_dir / "summary.json"
    outcome = _outcome(json.loads(summary_file.read_text())) if summary_file.exists() else "no summary"
    return ShardRun(users, shards, run, wall, "success" if ok else "failed", outcome, load, tasks, sandbox_cpu)


def _size(users: int, shard_counts: list[int], args: argparse.Namespace, report: Report) -> list[ShardRun]:
    from include.sandbox.process import SandboxProcess

    fixtures = cached_fixtures(users, args.seed, args.cache, report, via_cli=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-shards-{users}-"))
    started = time.perf_counter()
    sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", workdir, startup_timeout=1800)
    report.add(f"{users:,} sandbox up", time.perf_counter() - started, "fixtures loaded")
    runs: list[ShardRun] = []
    try:
        cycles = [(shards, number) for shards in shard_counts for number in range(1, args.repeat + 1)]
        for position, (shards, number) in enumerate(cycles):
            if position:  # the first cycle starts from the fixtures the sandbox loaded
                report.add(f"{users:,} sandbox reset", _reset_sandbox(sandbox, fixtures), "to the fixtures")
            which = f", run {number} of {args.repeat}" if args.repeat > 1 else ""
            print(f"  {users:,} users, {shards} shard(s){which}:", flush=True)
            run = _cycle(
                users, shards, sandbox.env_file, workdir, args.parallelism, sandbox_pid=sandbox.proc.pid, run=number
            )
            top = run.max_task()
            top_text = f"{_mib(top.peak_rss)} ({top.task})" if top else "-"
            report.add(f"{users:,} {shards} shard(s){which}", run.wall, run.outcome, f"max task {top_text}")
            runs.append(run)
    finally:
        sandbox.stop()
        if args.keep:
            print(f"  kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return runs


def _wall_target(users: int, wall: float) -> str:
    if users < 1_000_000:
        return ""
    return "met" if wall <= TARGET_SECONDS_1M else f"missed (target {TARGET_SECONDS_1M:.0f} s)"


def _rss_target(shards: int, peak_rss: int) -> str:
    if shards < 4:
        return ""
    return "met" if peak_rss <= TARGET_TASK_RSS else "missed (target 2 GiB)"


def _print(runs: list[ShardRun]) -> None:
    print("\nInitial sync, one process per task instance (as the DAG's tasks), one run per row")
    rows = []
    for run in runs:
        top = run.max_task()
        target = _wall_target(run.users, run.wall)
        rss_target = _rss_target(run.shards, top.peak_rss) if top is not None else ""
        rows.append(
            (
                f"{run.users:,}",
                str(run.shards),
                str(run.run),
                run.state,
                f"{run.wall:.1f}",
                f"{run.cpu_seconds():.0f}",
                target,
                _mib(top.peak_rss) if top else "-",
                top.task if top else "-",
                rss_target,
                run.load,
            )
        )
    headers = ("users", "shards", "run", "state", "wall s", "CPU-s", "150 s")
    headers += ("max task RSS", "task", "2 GiB", "load avg")
    _table(headers, rows, right={0, 1, 2, 4, 5, 7})
    _print_medians(runs)
    for run in runs:
        which = f", run {run.run}" if any(other.run > 1 for other in runs) else ""
        print(f"\n{run.users:,} users, {run.shards} shard(s){which}: {run.outcome}")
        _table(
            ("task instance", "exit", "wall s", "CPU-s", "peak RSS"),
            [
                (t.task, str(t.exit_code), f"{t.seconds:.1f}", f"{t.cpu_seconds:.1f}", _mib(t.peak_rss))
                for t in run.tasks
            ],
            right={1, 2, 3, 4},
        )
        by_stage = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in run.sandbox_cpu.items() if seconds >= 0.05)
        print(f"sandbox CPU-s while each stage ran: {by_stage} (total {sum(run.sandbox_cpu.values()):.1f})")


def _print_medians(runs: list[ShardRun]) -> None:
    """One row per size and shard count run more than once: the median wall time (the targets
    are judged on it), the fastest and slowest run, and the largest task of any run."""
    groups: dict[tuple[int, int], list[ShardRun]] = {}
    for run in runs:
        groups.setdefault((run.users, run.shards), []).append(run)
    rows = []
    for (users, shards), group in groups.items():
        if len(group) < 2:
            continue
        walls = sorted(run.wall for run in group)
        median = statistics.median(walls)
        peak = max((t.peak_rss for run in group for t in run.tasks), default=0)
        states = {run.state for run in group}
        rows.append(
            (
                f"{users:,}",
                str(shards),
                str(len(group)),
                "success" if states == {"success"} else "/".join(sorted(states)),
                f"{median:.1f}",
                f"{walls[0]:.1f}-{walls[-1]:.1f}",
                _wall_target(users, median),
                _mib(peak),
                _rss_target(shards, peak),
            )
        )
    if not rows:
        return
    print("\nMedians of the repeated runs (the targets judged on the median wall time and the largest task)")
    headers = ("users", "shards", "runs", "state", "median wall s", "range s", "150 s", "max task RSS", "2 GiB")
    _table(headers, rows, right={0, 1, 2, 4, 7})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes_arg, default="100000,1000000", help="comma-separated tenant sizes")
    parser.add_argument("--shards", default="1,4", help="comma-separated shard counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "provisioning-bench")
    parser.add_argument("--parallelism", type=int, default=4, help="shards of a mapped stage run at once")
    parser.add_argument("--repeat", type=_positive, default=1, help="cycles per shard count (medians printed)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (task logs, state)")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
