"""Benchmark: one provisioning cycle through the engine's command line and through Airflow, side by side.

    .venv/bin/python scripts/benchmark_airflow.py [--sizes 10000,100000] [--seed 1] [--json PATH] [--keep]
        [--no-warmup] [--no-dags-test] [--airflow-env AIRFLOW__SECTION__KEY=VALUE ...]

Takes about 5 minutes for both sizes on 2 cores (run nothing else heavy meanwhile).

Target (the issue): Airflow adds at most 15 s to a cycle, and no task's process goes above 1.5 GiB at
100,000 users. This is a benchmark that prints what it measured, not a test: nothing is asserted.

For each tenant size: generate the tenant with ``python -m include.sandbox generate`` (or reuse it from
``.bench/``, the cache ``benchmark_sync.py`` shares), start the sandbox (``python -m include.sandbox up
--env-file``), then run the same two cycles three ways, each on a fresh state store and on the sandbox
reset to the same fixtures (``PUT /_sandbox/state`` with the fixture files):

1. CLI: ``python -m include.provisioning sync`` (initial = full, then no-change = incremental) in a
   child process. Wall time from start to exit; peak RSS is the kernel's ``ru_maxrss`` of the child.
2. Airflow (scheduler): ``airflow standalone`` (scheduler with LocalExecutor, dag-processor,
   triggerer, api-server; SQLite; ``[core] parallelism`` 2) in a fresh AIRFLOW_HOME, configured by
   ``scripts/airflow_env.sh`` through ``tests/airflow/server.py`` with the sandbox's ``AIRFLOW_CONN_*``
   settings and a ``provisioning_state`` connection to a fresh SQLite file. ``[scheduler]
   use_job_schedule`` is off, so unpausing the DAG creates no scheduled run (it would run the
   initial cycle unasked, and a 20-minute boundary passed during a run would add another); each
   cycle is one run triggered through the REST API (``POST /api/v2/dags/{dag_id}/dagRuns`` with a
   JWT from ``POST /auth/token``). Wall time = POST until the run is seen ``success`` (polled every
   0.2 s); the API's own task start/end dates give the sum of task durations and the gaps between
   tasks. Server start-up is not part of a cycle and is printed separately.
   Memory: the server's process tree is sampled every 0.2 s (psutil + ``/proc``). Airflow 3.3's
   LocalExecutor worker (pre-forked, it is the task's *supervisor*) is titled ``airflow worker --
   LocalExecutor: <ti id>`` while it runs a task; it forks the *task child*, which runs the
   task's code and retitles itself ``airflow worker -- <ti id>``. The "task peak RSS" is the task
   child's: the larger of the sampled RSS and the kernel's high-water mark (``VmHWM``) last read
   before it exited; it counts the pages it still shares with the supervisor it was forked from
   (``USS``, its private pages, is shown beside it). TI ids are mapped to task ids through the API.
3. ``airflow dags test`` (every task in one process, no scheduler) against the same metadata DB
   after the server stopped; wall time and ``ru_maxrss`` of that one process.

Before the measured cycles, each way gets one warm-up (a dry run provisioning one user: CLI
``provision-user --dry-run``, a DAG run with ``{"dry_run": true, "user": ...}``), so the first cold
start after a server start (the first task child read its modules from disk: ~3 s here) is not
counted as a cycle's cost; ``--no-warmup`` counts it. ``--airflow-env`` tries a configuration
change on the server (e.g. ``AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1``) against the same CLI.

"Airflow added" = Airflow (scheduler) wall - CLI wall of the same cycle. The per-task table splits
each task's time (scheduler wait, start-up, engine phases from the task log, writing outputs, the
supervisor's close) along the run's critical path. Other engineers use this machine: the 1-minute
load average before each measurement is printed; repeat noisy rows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402

from include.sandbox.process import SandboxProcess  # noqa: E402
from scripts.airflow_server import AirflowServer, sandbox_airflow_env  # noqa: E402
from scripts.benchlib import Report, cached_fixtures, cli_sync_command, sizes_arg  # noqa: E402

DAG_ID = "entra_salesforce_provisioning"
TARGET_ADDED_SECONDS = 15.0
TARGET_TASK_RSS = int(1.5 * 2**30)
CYCLES = ("initial", "no-change")
SAMPLE_SECONDS = 0.2
RUN_TIMEOUT = 3600.0

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SUPERVISOR_TITLE = re.compile(rf"^airflow worker -- LocalExecutor(?: \[[^\]]*\])?: ({_UUID})$")
WORKER_PREFIX = "airflow worker -- LocalExecutor"
TASK_TITLE = re.compile(rf"^airflow worker -- ({_UUID})$")
PHASE_DONE = re.compile(r"^\[([\w-]+)\] done in ([\d.]+)s$")
PHASE_START = re.compile(r"^\[([\w-]+)\] \.\.\.$")

MiB = 2**20


def _mib(n: int | None) -> str:
    return "-" if not n else f"{n / MiB:,.0f} MiB"


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# -- processes ------------------------------------------------------------------------------------


def _run_measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int]:
    """Run ``cmd`` to its end; (wall seconds, exit code, kernel peak RSS in bytes of that process)."""
    with log.open("ab") as out:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return seconds, child.returncode, usage.ru_maxrss * 1024  # Linux reports KiB


def _proc_text(pid: int, name: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")
    except OSError:
        return None


def _status_number(status: str, key: str) -> int:
    """The number after ``key`` in a ``/proc`` key-value file (0 when absent)."""
    for line in status.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _status_kib(status: str, key: str) -> int:
    return _status_number(status, key) * 1024


@dataclass
class Proc:
    """What the sampler saw of one process of the server's tree."""

    pid: int
    ppid: int
    first_seen: float
    last_seen: float
    titles: list[str] = field(default_factory=list)
    peak_rss: int = 0
    hwm: int = 0
    peak_uss: int = 0
    ti_id: str | None = None
    """For a task child: the task instance it ran."""
    rss_by_ti: dict[str, int] = field(default_factory=dict)
    """For a LocalExecutor worker (supervisor): its peak RSS while it supervised each TI."""

    @property
    def is_worker(self) -> bool:
        return any(t.startswith(WORKER_PREFIX) for t in self.titles)

    @property
    def peak(self) -> int:
        return max(self.peak_rss, self.hwm)


class TreeSampler:
    """Samples every descendant of ``root_pid`` every ``interval`` seconds in a thread."""

    def __init__(self, root_pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.root = psutil.Process(root_pid)
        self.interval = interval
        self.procs: dict[tuple[int, float], Proc] = {}
        self._by_pid: dict[int, Proc] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.ticks = 0
        self.tick_seconds = 0.0
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(psutil.Error):
                self._tick()
            self.ticks += 1
            self.tick_seconds += time.perf_counter() - started
            self._stop.wait(self.interval)

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self.root.children(recursive=True):
            status = _proc_text(child.pid, "status")
            cmdline = _proc_text(child.pid, "cmdline")
            if status is None or cmdline is None:
                continue
            try:
                key = (child.pid, child.create_time())
            except psutil.Error:
                continue
            proc = self.procs.get(key)
            if proc is None:
                ppid = _status_number(status, "PPid:")
                proc = self.procs[key] = Proc(child.pid, ppid, now, now)
                self._by_pid[child.pid] = proc
            title = cmdline.replace("\0", " ").strip()
            if not proc.titles or proc.titles[-1] != title:
                proc.titles.append(title)
            proc.last_seen = now
            rss = _status_kib(status, "VmRSS:")
            proc.peak_rss = max(proc.peak_rss, rss)
            proc.hwm = max(proc.hwm, _status_kib(status, "VmHWM:"))
            parent = self._by_pid.get(proc.ppid)
            supervised = SUPERVISOR_TITLE.match(title)
            if parent is not None and parent.is_worker:  # a task child (first named after its parent)
                own = TASK_TITLE.match(title)
                from_parent = SUPERVISOR_TITLE.match(parent.titles[-1])
                proc.ti_id = own.group(1) if own else proc.ti_id or (from_parent.group(1) if from_parent else None)
                rollup = _proc_text(child.pid, "smaps_rollup")
                if rollup:
                    uss = _status_kib(rollup, "Private_Clean:") + _status_kib(rollup, "Private_Dirty:")
                    proc.peak_uss = max(proc.peak_uss, uss)
            elif supervised:
                ti = supervised.group(1)
                proc.rss_by_ti[ti] = max(proc.rss_by_ti.get(ti, 0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def task_children(self) -> dict[str, Proc]:
        """Task child processes by TI id."""
        return {p.ti_id: p for p in self.procs.values() if p.ti_id}

    def supervisors(self) -> dict[str, int]:
        """Peak RSS of the supervising worker by TI id."""
        out: dict[str, int] = {}
        for proc in self.procs.values():
            for ti, rss in proc.rss_by_ti.items():
                out[ti] = max(out.get(ti, 0), rss)
        return out

    def components(self) -> dict[str, int]:
        """Peak RSS of Airflow's long-lived processes, summed by component (task children excluded)."""
        out: dict[str, int] = {}
        for proc in self.procs.values():
            title = next((t for t in proc.titles if t), "")
            if proc.ti_id or not title or not proc.peak:  # task children; a process gone before a sample
                continue
            if proc.is_worker:
                name = "LocalExecutor workers"
            elif "api_server" in title or "api-server" in title or "uvicorn" in title:
                name = "api-server"
            elif "scheduler" in title:
                name = "scheduler"
            elif "dag-processor" in title or "dag_processor" in title or "DagFileProcessor" in title:
                name = "dag-processor"
            elif "triggerer" in title:
                name = "triggerer"
            else:
                name = "other (" + " ".join(title.split()[:3])[:40] + ")"
            out[name] = out.get(name, 0) + proc.peak
        return out


# -- the sandbox --------------------------------------------------------------------------------


def _reset_sandbox(sandbox: SandboxProcess, fixtures: Path) -> float:
    """Both emulators back to the fixture files (state, no faults, zero counters); seconds taken."""
    started = time.perf_counter()
    for client, name in ((sandbox.graph, "tenant.json"), (sandbox.salesforce, "org.json")):
        client.delete("/_sandbox/faults").raise_for_status()
        client.put("/_sandbox/state", content=(fixtures / name).read_bytes(), timeout=900).raise_for_status()
        client.delete("/_sandbox/requests").raise_for_status()
    return time.perf_counter() - started


def _requests(sandbox: SandboxProcess) -> str:
    graph, salesforce = sandbox.requests("graph"), sandbox.requests("salesforce")
    for client in (sandbox.graph, sandbox.salesforce):
        client.delete("/_sandbox/requests").raise_for_status()
    return f"G{graph['total']} SF{salesforce['total']}"


def _some_user(sandbox: SandboxProcess) -> str:
    """An assigned, not deleted user's UPN: the warm-ups provision just this one, as a dry run."""
    assigned = {a["principalId"] for a in sandbox.tenant["appRoleAssignments"]}
    return next(
        u["userPrincipalName"]
        for u in sandbox.tenant["users"]
        if u["id"] in assigned and not u.get("deletedDateTime") and u.get("userPrincipalName")
    )


def _outcome(summary: dict[str, Any]) -> str:
    return (
        f"{summary.get('mode', '?')}: +{summary['created']} ~{summary['updated']} -{summary['deactivated']} "
        f"={summary['unchanged']} q{summary['quarantined']} e{summary['escrowed']} h{summary['held_back']}"
    )


# -- measurements ---------------------------------------------------------------------------------


@dataclass
class Measure:
    seconds: float | None = None
    peak_rss: int | None = None
    outcome: str = ""
    requests: str = ""
    load: str = ""
    note: str = ""


@dataclass
class TaskRow:
    task_id: str
    state: str
    try_number: int
    start: dt.datetime | None
    end: dt.datetime | None
    duration: float | None
    gap: float | None
    """Seconds from the end of its last upstream task (or the run's start) to its start."""
    phases: dict[str, float]
    """The engine's own phase timings from the task's log."""
    marks: dict[str, Any]
    """Seconds from the task's start: ``scheduled``/``queued`` (negative: before it started), and from
    its log ``first_log``, ``engine_start`` (first engine phase), ``engine_done`` (last phase done),
    ``last_log``; ``parse_ms`` (the task child's DAG-file parse)."""
    child_peak_rss: int | None
    child_peak_uss: int | None
    supervisor_rss: int | None
    pid: int | None
    """The TI's pid as the API reports it (the task child's); ``child_pid`` is the one sampled."""
    child_pid: int | None = None


@dataclass
class AirflowRun:
    run_id: str
    wall: float
    state: str
    queued_to_start: float | None
    start_to_end: float | None
    tasks: list[TaskRow]
    critical: list[str]
    """Task ids on the critical path, first to last."""
    ended_to_success: float | None
    """From the last task's end to the run's end date (the scheduler marking it successful)."""
    summary: dict[str, Any] | None
    requests: str
    load: str

    @property
    def task_seconds(self) -> float:
        return sum(t.duration or 0.0 for t in self.tasks)

    def max_task(self) -> TaskRow | None:
        measured = [t for t in self.tasks if t.child_peak_rss]
        return max(measured, key=lambda t: t.child_peak_rss or 0) if measured else None


@dataclass
class SizeResult:
    users: int
    cli: dict[str, Measure] = field(default_factory=dict)
    airflow: dict[str, AirflowRun] = field(default_factory=dict)
    dags_test: dict[str, Measure] = field(default_factory=dict)
    server_start: float | None = None
    components: dict[str, int] = field(default_factory=dict)
    sampler_cost: str = ""


def _cli_cycle(sandbox: SandboxProcess, state_url: str, workdir: Path, label: str) -> Measure:
    summary_path = workdir / f"cli-{label}.json"
    load = _load()
    seconds, code, peak = _run_measured(
        cli_sync_command(sandbox.env_file, state_url, summary_path, workdir / "reports"),
        dict(os.environ),
        workdir / "cli.log",
    )
    if code != 0:
        raise SystemExit(f"CLI {label}: sync exited with {code}; see {workdir / 'cli.log'}")
    summary = json.loads(summary_path.read_text())
    phases = ", ".join(f"{k} {v:.2f}" for k, v in summary["phase_seconds"].items())
    return Measure(seconds, peak, _outcome(summary), _requests(sandbox), load, note=f"phases: {phases}")


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _task_log(home: Path, run_id: str, task_id: str, try_number: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The engine's ``[phase] done in Xs`` lines and time marks from the task's log (JSON lines)."""
    phases: dict[str, float] = {}
    marks: dict[str, Any] = {}
    path = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={try_number}.log"
    if not path.exists():
        return phases, marks
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event, at = str(record.get("event", "")).strip(), _parse_time(record.get("timestamp"))
        marks.setdefault("first_log", at)
        marks["last_log"] = at
        if "dag_file_parse_ms" in record:
            marks["parse_ms"] = record["dag_file_parse_ms"]
        if PHASE_START.match(event):
            marks.setdefault("engine_start", at)
        match = PHASE_DONE.match(event)
        if match:
            phases[match.group(1)] = phases.get(match.group(1), 0.0) + float(match.group(2))
            marks["engine_done"] = at
    return phases, marks


def _critical_path(tasks: list[TaskRow], upstream: dict[str, list[str]]) -> list[TaskRow]:
    """From the last task to end back to the first: each time the upstream that ended last."""
    by_id = {t.task_id: t for t in tasks}
    ended = [t for t in tasks if t.end]
    path = []
    current = max(ended, key=lambda t: t.end) if ended else None  # type: ignore[arg-type, return-value]
    while current is not None:
        path.append(current)
        ups = [by_id[u] for u in upstream.get(current.task_id, []) if u in by_id and by_id[u].end]
        current = max(ups, key=lambda t: t.end) if ups else None  # type: ignore[arg-type, return-value]
    return path[::-1]


class AirflowBench:
    """``airflow standalone`` wired to the sandbox, the DAG unpaused, runs triggered one at a time."""

    def __init__(self, home: Path, sandbox: SandboxProcess, extra_env: dict[str, str]) -> None:
        self.home = home
        env = {
            **sandbox_airflow_env(sandbox.settings, home),
            # No scheduled runs: every cycle measured is one run this benchmark triggers.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            **extra_env,
        }
        self.server = AirflowServer(home, env, startup_timeout=600)
        self.sampler: TreeSampler | None = None
        self.upstream: dict[str, list[str]] = {}

    def start(self) -> float:
        started = time.perf_counter()
        self.server.start()
        assert self.server.proc is not None
        self.sampler = TreeSampler(self.server.proc.pid)
        deadline = time.monotonic() + 300
        while self.server.api("GET", f"/api/v2/dags/{DAG_ID}").status_code != 200:
            errors = self.server.api("GET", "/api/v2/importErrors").json().get("import_errors", [])
            if errors or time.monotonic() > deadline:
                raise RuntimeError(f"DAG {DAG_ID} not loaded: {errors or 'timeout'}\n{self.server.tail()}")
            time.sleep(0.5)
        self.server.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        tasks = self.server.api("GET", f"/api/v2/dags/{DAG_ID}/tasks").json()["tasks"]
        for task in tasks:
            for down in task.get("downstream_task_ids", []):
                self.upstream.setdefault(down, []).append(task["task_id"])
        return time.perf_counter() - started

    def run(self, label: str, sandbox: SandboxProcess, conf: dict[str, Any] | None = None) -> AirflowRun:
        run_id = f"bench_{label}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
        load = _load()
        started = time.perf_counter()
        answer = self.server.api(
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": dt.datetime.now(dt.UTC).isoformat(), "conf": conf or {}},
        )
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"trigger answered {answer.status_code}: {answer.text[:500]}")
        while True:
            run = self.server.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                break
            if time.perf_counter() - started > RUN_TIMEOUT:
                raise RuntimeError(f"run {run_id} still {run['state']} after {RUN_TIMEOUT:.0f}s")
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
        time.sleep(2 * SAMPLE_SECONDS)  # let the sampler see the last task child go
        return self._collect(run_id, run, wall, load, sandbox)

    def _collect(self, run_id: str, run: dict[str, Any], wall: float, load: str, sandbox: SandboxProcess) -> AirflowRun:
        assert self.sampler is not None
        base = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
        tis = self.server.api("GET", f"{base}/taskInstances", params={"limit": 100}).json()["task_instances"]
        children, supervisors = self.sampler.task_children(), self.sampler.supervisors()
        by_task = {ti["task_id"]: ti for ti in tis}
        run_start, run_end = _parse_time(run.get("start_date")), _parse_time(run.get("end_date"))
        queued = _parse_time(run.get("queued_at"))
        rows = []
        for ti in sorted(tis, key=lambda t: (t.get("start_date") or "9999", t["task_id"])):
            start, end = _parse_time(ti.get("start_date")), _parse_time(ti.get("end_date"))
            ends = [
                _parse_time(by_task[u].get("end_date")) for u in self.upstream.get(ti["task_id"], []) if u in by_task
            ]
            ready = max((e for e in ends if e), default=run_start)
            child = children.get(ti["id"])
            phases, logged = _task_log(self.home, run_id, ti["task_id"], ti.get("try_number", 1))
            marks: dict[str, Any] = {"parse_ms": logged.pop("parse_ms", None)}
            for name, at in [
                ("scheduled", _parse_time(ti.get("scheduled_when"))),
                ("queued", _parse_time(ti.get("queued_when"))),
                *logged.items(),
            ]:
                marks[name] = (at - start).total_seconds() if at and start else None
            rows.append(
                TaskRow(
                    task_id=ti["task_id"],
                    state=ti.get("state") or "?",
                    try_number=ti.get("try_number", 1),
                    start=start,
                    end=end,
                    duration=ti.get("duration"),
                    gap=(start - ready).total_seconds() if start and ready else None,
                    phases=phases,
                    marks=marks,
                    child_peak_rss=child.peak if child else None,
                    child_peak_uss=child.peak_uss if child else None,
                    supervisor_rss=supervisors.get(ti["id"]),
                    pid=ti.get("pid"),
                    child_pid=child.pid if child else None,
                )
            )
        summary = self.commit_summary(run_id)
        critical = _critical_path(rows, self.upstream)
        last_end = critical[-1].end if critical else None
        return AirflowRun(
            run_id=run_id,
            wall=wall,
            state=run["state"],
            queued_to_start=(run_start - queued).total_seconds() if run_start and queued else None,
            start_to_end=(run_end - run_start).total_seconds() if run_end and run_start else None,
            tasks=rows,
            critical=[t.task_id for t in critical],
            ended_to_success=(run_end - last_end).total_seconds() if run_end and last_end else None,
            summary=summary,
            requests=_requests(sandbox),
            load=load,
        )

    def commit_summary(self, run_id: str) -> dict[str, Any] | None:
        """The run's ``commit`` XCom (the cycle's counts), None when it has none."""
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/commit/xcomEntries/return_value"
        xcom = self.server.api("GET", path)
        if xcom.status_code != 200:
            return None
        value = xcom.json().get("value")
        return json.loads(value) if isinstance(value, str) else value

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.server.stop()


def _dags_test(env: dict[str, str], home: Path, label: str, sandbox: SandboxProcess) -> Measure:
    load = _load()
    log = home / f"dags-test-{label}.log"
    airflow = str(Path(sys.executable).parent / "airflow")
    seconds, code, peak = _run_measured([airflow, "dags", "test", DAG_ID], env, log)
    finished = re.findall(r"DagRun Finished:.*?run_duration=([\d.]+), state=(\w+)", log.read_text(errors="replace"))
    note = f"exit {code}" + (f"; see {log}" if code else "")
    if finished:
        note = f"run {float(finished[-1][0]):.2f} s {finished[-1][1]}, {note}"
    return Measure(seconds, peak, requests=_requests(sandbox), load=load, note=note)


# -- one size -------------------------------------------------------------------------------------


@dataclass
class Options:
    seed: int
    cache: Path
    keep: bool
    warmup: bool
    dags_test: bool
    airflow_env: dict[str, str]


def _size(users: int, opts: Options, report: Report) -> SizeResult:
    result = SizeResult(users)
    seed, cache, keep = opts.seed, opts.cache, opts.keep
    fixtures = cached_fixtures(users, seed, cache, report, via_cli=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-airflow-{users}-"))
    sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", workdir, startup_timeout=900)
    try:
        upn = _some_user(sandbox)
        if opts.warmup:  # the first process after a start reads everything from disk: not a cycle's cost
            warmup = [sys.executable, "-m", "include.provisioning", "provision-user", upn, "--dry-run"]
            seconds, code, _ = _run_measured(
                [*warmup, "--env-file", str(sandbox.env_file), "--state-url", f"sqlite:///{workdir / 'warmup.db'}"],
                dict(os.environ),
                workdir / "cli.log",
            )
            report.add(f"{users:,} CLI warm-up", seconds, f"provision-user --dry-run, exit {code}")
            _requests(sandbox)

        # (a) the command line, on a fresh state store
        state_url = f"sqlite:///{workdir / 'cli-state.db'}"
        for cycle in CYCLES:
            result.cli[cycle] = m = _cli_cycle(sandbox, state_url, workdir, cycle)
            report.add(f"{users:,} CLI {cycle}", m.seconds, m.outcome, m.requests, f"peak {_mib(m.peak_rss)}")

        # (b) Airflow through its scheduler, on a fresh AIRFLOW_HOME and state store
        reset = _reset_sandbox(sandbox, fixtures)
        report.add(f"{users:,} sandbox reset", reset, "PUT /_sandbox/state with the fixture files")
        bench = AirflowBench(workdir / "airflow", sandbox, opts.airflow_env)
        try:
            result.server_start = bench.start()
            report.add(f"{users:,} airflow standalone up", result.server_start, "healthy, DAG parsed, unpaused")
            if opts.warmup:
                warm = bench.run("warmup", sandbox, {"dry_run": True, "user": upn})
                report.add(f"{users:,} Airflow warm-up", warm.wall, f"dry run for one user: {warm.state}")
            for cycle in CYCLES:
                run = result.airflow[cycle] = bench.run(cycle.replace("-", "_"), sandbox)
                top = run.max_task()
                report.add(
                    f"{users:,} Airflow {cycle}",
                    run.wall,
                    _outcome(run.summary) if run.summary else run.state,
                    run.requests,
                    f"{run.state}; tasks {run.task_seconds:.2f}s; max task {_mib(top.child_peak_rss) if top else '-'}"
                    f" ({top.task_id if top else '-'})",
                )
        finally:
            bench.stop()
        assert bench.sampler is not None
        result.components = bench.sampler.components()
        ticks = max(bench.sampler.ticks, 1)
        result.sampler_cost = f"{bench.sampler.tick_seconds / ticks * 1000:.1f} ms per sample, {ticks} samples"

        # (c) airflow dags test: in-process, same metadata DB, fresh state store
        if not opts.dags_test:
            return result
        _reset_sandbox(sandbox, fixtures)
        env = dict(bench.server.env)
        state = {"conn_type": "provisioning_state", "extra": {"sqlite_path": str(bench.home / "dags-test-state.db")}}
        env["AIRFLOW_CONN_PROVISIONING_STATE"] = json.dumps(state)
        for cycle in CYCLES:
            result.dags_test[cycle] = m = _dags_test(env, bench.home, cycle, sandbox)
            report.add(f"{users:,} dags test {cycle}", m.seconds, m.note, m.requests, f"peak {_mib(m.peak_rss)}")
    finally:
        sandbox.stop()
        if keep:
            print(f"  kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- printing -------------------------------------------------------------------------------------


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int] | None = None) -> None:
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    line = fmt(headers)
    print()
    print(line)
    print("-" * len(line))
    for row in rows:
        print(fmt(row))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _summary_table(results: list[SizeResult]) -> None:
    rows = []
    for res in results:
        for cycle in CYCLES:
            cli, run, test = res.cli.get(cycle), res.airflow.get(cycle), res.dags_test.get(cycle)
            added = run.wall - cli.seconds if run and cli and cli.seconds is not None else None
            top = run.max_task() if run else None
            misses = []
            if added is not None and added > TARGET_ADDED_SECONDS:
                misses.append(f"+{added:.1f}s > {TARGET_ADDED_SECONDS:.0f}s")
            if top and (top.child_peak_rss or 0) > TARGET_TASK_RSS:
                misses.append(f"{top.task_id} > 1.5 GiB")
            if run and run.state != "success":
                misses.append(f"run {run.state}")
            rows.append(
                (
                    f"{res.users:,}",
                    cycle,
                    _s(cli.seconds if cli else None),
                    _mib(cli.peak_rss if cli else None),
                    _s(run.wall if run else None),
                    _s(run.task_seconds if run else None),
                    "-" if added is None else f"{added:+.2f} s",
                    _s(test.seconds if test else None),
                    _mib(test.peak_rss if test else None),
                    f"{_mib(top.child_peak_rss)} ({top.task_id})" if top else "-",
                    "yes" if not misses else "NO: " + "; ".join(misses),
                    f"{cli.load if cli else '-'}/{run.load if run else '-'}",
                )
            )
    _table(
        (
            "users",
            "cycle",
            "CLI wall",
            "CLI peak",
            "Airflow wall",
            "sum of tasks",
            "Airflow added",
            "dags test wall",
            "dags test peak",
            "max task peak RSS",
            "target met",
            "load CLI/AF",
        ),
        rows,
        right={2, 3, 4, 5, 6, 7, 8},
    )


def _split(t: TaskRow) -> dict[str, float | None]:
    """The task's time in consecutive slices (see the legend printed under the table)."""
    m = t.marks
    ready = -(t.gap or 0.0)
    sched, queued = m.get("scheduled"), m.get("queued")
    first, last = m.get("first_log"), m.get("last_log")
    e0, e1 = m.get("engine_start"), m.get("engine_done")
    out: dict[str, float | None] = {
        "sched": sched - ready if sched is not None else None,
        "queue": queued - sched if queued is not None and sched is not None else None,
        "start": -queued if queued is not None else None,
        "boot": first,
        "to_engine": None,
        "engine": None,
        "after": None,
        "close": (t.duration - last) if t.duration is not None and last is not None else None,
    }
    if first is not None and last is not None:
        if e0 is not None and e1 is not None:
            out["to_engine"], out["engine"], out["after"] = e0 - first, e1 - e0, last - e1
        else:
            out["to_engine"] = last - first
    return out


def _task_table(res: SizeResult, cycle: str) -> None:
    run = res.airflow.get(cycle)
    if run is None:
        return
    print(f"\nPer task, {res.users:,} users, {cycle} run ({run.run_id}, {run.state}); * = on the critical path:")
    rows = []
    totals: dict[str, float] = {}
    for t in run.tasks:
        split = _split(t)
        if t.task_id in run.critical:
            totals["wait"] = totals.get("wait", 0.0) + (t.gap or 0.0)
            for key, value in split.items():
                totals[key] = totals.get(key, 0.0) + (value or 0.0)
        rows.append(
            (
                t.task_id + (" *" if t.task_id in run.critical else ""),
                t.state,
                _s(t.gap),
                *(_s(split[k]) for k in ("sched", "queue", "start", "boot", "to_engine", "engine", "after", "close")),
                _s(t.duration),
                _mib(t.child_peak_rss),
                _mib(t.child_peak_uss),
                _mib(t.supervisor_rss),
                ", ".join(f"{k} {v:.2f}" for k, v in t.phases.items()),
            )
        )
    headers = (
        "task",
        "state",
        "wait",
        "(sched",
        "queue",
        "start)",
        "boot",
        "to engine",
        "engine",
        "after",
        "close",
        "duration",
        "peak RSS",
        "peak USS",
        "supervisor",
        "engine phases (s)",
    )
    _table(headers, rows, right=set(range(2, 15)))
    on_path = sum(t.duration or 0.0 for t in run.tasks if t.task_id in run.critical)
    print(
        f"  trigger -> success {run.wall:.2f} s: queued -> running {_s(run.queued_to_start)}; critical path "
        f"{' > '.join(run.critical)}: waits {totals.get('wait', 0):.2f} s, task durations {on_path:.2f} s "
        f"(boot {totals.get('boot', 0):.2f}, to engine {totals.get('to_engine', 0):.2f}, engine "
        f"{totals.get('engine', 0):.2f}, after {totals.get('after', 0):.2f}, close {totals.get('close', 0):.2f}); "
        f"last task end -> run success {_s(run.ended_to_success)}"
    )
    matched = sum(1 for t in run.tasks if t.child_pid is not None and t.child_pid == t.pid)
    unsampled = [t.task_id for t in run.tasks if t.child_pid is None]
    print(
        f"  task children sampled: {len(run.tasks) - len(unsampled)} of {len(run.tasks)}, {matched} with the pid"
        " the API reports for the TI"
        + (f"; not sampled (ended within a sample): {', '.join(unsampled)}" if unsampled else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_arg, default="10000,100000", help="comma-separated tenant sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".bench")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (logs, AIRFLOW_HOME)")
    parser.add_argument("--no-warmup", action="store_true", help="measure the first runs after start-up too")
    parser.add_argument("--no-dags-test", action="store_true", help="skip the airflow dags test rows")
    parser.add_argument(
        "--airflow-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra setting for the Airflow server, e.g. AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1 (repeatable)",
    )
    args = parser.parse_args(argv)
    opts = Options(
        seed=args.seed,
        cache=args.cache.resolve(),
        keep=args.keep,
        warmup=not args.no_warmup,
        dags_test=not args.no_dags_test,
        airflow_env=dict(item.split("=", 1) for item in args.airflow_env),
    )
    if opts.airflow_env:
        print(f"Airflow server settings on top of the project's: {opts.airflow_env}", flush=True)
    report = Report()
    results = []
    for size in args.sizes:
        results.append(_size(size, opts, report))
    report.print()
    _summary_table(results)
    print(
        "\nCLI: python -m include.provisioning sync; Airflow: POST dagRuns -> run success through airflow standalone"
        " (LocalExecutor, parallelism 2); added = Airflow - CLI; dags test: airflow dags test, one process;"
        "\npeak RSS: kernel high-water mark of the process (for tasks: the task child, not its supervisor);"
        f" target: added <= {TARGET_ADDED_SECONDS:.0f} s and every task <= 1.5 GiB; load = 1-min load average"
    )
    if results:
        largest = max(results, key=lambda r: r.users)
        for cycle in CYCLES:
            _task_table(largest, cycle)
        print(
            "\n  wait = end of the task's last upstream (or the run's start) -> task start, split into (sched: -> TI"
            " scheduled, queue: -> queued to the executor, start: -> the supervisor reported it running);"
            "\n  boot: start -> the task child's first log line; to engine: -> the engine's first phase (DAG parse,"
            " imports, engine and connections, reading inputs; the whole body for tasks without phases);"
            "\n  engine: first phase start -> last phase done; after: -> last log line (outputs, XCom); close: ->"
            " TI end (supervisor); peak RSS/USS: task child; supervisor: its LocalExecutor worker's RSS"
        )
        for res in results:
            comps = ", ".join(f"{k} {_mib(v)}" for k, v in sorted(res.components.items()))
            print(f"  {res.users:,}: Airflow processes' peak RSS: {comps}; sampler {res.sampler_cost}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
