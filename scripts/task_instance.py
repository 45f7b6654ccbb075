"""One task instance of the provisioning cycle in this process, as a DAG task runs it: the child
process of ``scripts/benchmark_shards.py`` (one per task instance).

    .venv/bin/python scripts/task_instance.py --stage STAGE --run-dir DIR --env-file FILE
        --state-url URL [--count N] [--index I]

``STAGE`` is ``begin``, ``extract``, ``validate``, ``transform``, ``plan``, ``load``, ``commit``
or ``end``; ``--index`` makes it the mapped instance ``STAGE[I]`` of ``--count`` shards. Its
progress goes to stdout, each line with the seconds since start and the resident set then; its
peak RSS (``VmHWM``) is written to ``DIR/<task>.peak_rss`` as it ends. It imports what a DAG task
imports (the engine), not the benchmark's driver (tenant generator, report tables), so its CPU
and memory are the task's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

RUN_KEY = "benchmark:shards"
"""The run key (and lease holder) of every benchmarked cycle, as ``runtime.run_key`` makes one."""


def _child(args: argparse.Namespace) -> int:
    """Run one stage of the cycle whose files are under ``args.run_dir``, as a DAG task would."""
    from include.provisioning import api
    from include.provisioning.runtime import build_engine
    from include.provisioning.shards import Shard
    from include.provisioning.workspace import Workspace
    from include.sandbox.core.envfile import read_env_file

    env = {**os.environ, **read_env_file(args.env_file)}
    started = time.monotonic()
    engine = build_engine(
        env,
        state_url=args.state_url,
        progress=lambda text: print(f"{time.monotonic() - started:8.2f}s {_rss_mib():6,} MiB  {text}", flush=True),
    )
    engine.lease_holder = RUN_KEY
    cycle_file = args.run_dir / "cycle.json"
    try:
        if args.stage == "begin":
            context, ws = api.open_cycle(
                engine,
                lambda cycle_id: Workspace(args.run_dir / cycle_id),
                holder=RUN_KEY,
                run_key=RUN_KEY,
                shards=args.count,
            )
            cycle_file.write_text(json.dumps({"cycle_id": context.cycle_id, "workspace": str(ws.root)}))
            return 0
        cycle = json.loads(cycle_file.read_text())
        if args.stage == "end":
            print(api.close_cycle(engine, holder=RUN_KEY, cycle_id=cycle["cycle_id"], reason="benchmark ended"))
            return 0
        ws = Workspace(Path(cycle["workspace"]))
        shard = Shard(args.index, args.count) if args.index is not None else None
        outcome = api.run_stage(engine, args.stage, ws, **({"shard": shard} if shard is not None else {}))
        if args.stage == "commit":
            from include.provisioning.cli import summary_dict

            summary = summary_dict(outcome.summary)  # type: ignore[union-attr]
            (args.run_dir / "summary.json").write_text(json.dumps(summary))
        return 0
    finally:
        engine.state.close()
        _keep_peak_rss(args)


def _keep_peak_rss(args: argparse.Namespace) -> None:
    """Write this process's kernel high-water mark (``VmHWM``) next to its log. Its own, not
    ``wait4``'s ``ru_maxrss``: that one starts from the RSS of the process that spawned it (the
    driver holds the fixtures), so small tasks would all read as large as the driver."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_file(args.run_dir, task_name(args.stage, args.index)).write_text(str(int(line.split()[1]) * 1024))


def _rss_mib() -> int:
    """This process's resident set now (each progress line shows it: where a task's peak is)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


def task_name(stage: str, index: int | None) -> str:
    """``load[2]`` for a mapped instance, ``plan`` for the others."""
    return stage if index is None else f"{stage}[{index}]"


def peak_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.peak_rss"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--state-url", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--index", type=int)
    return _child(parser.parse_args(argv))


if __name__ == "__main__":
    code = main()
    # As an Airflow task process ends: the supervisor's forked child leaves through os._exit
    # (airflow.sdk.execution_time.supervisor._fork_main), so the interpreter never frees the
    # task's heap object by object (up to a second for a validate task's Great Expectations).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
