"""Benchmark the sync engine end to end against the sandbox, and beside it the by-hand way.

    python scripts/benchmark_sync.py [--sizes 10000,100000] [--seed 1] [--baseline-users 2000]

For each tenant size: generate (or reuse from ``.bench/``) a tenant + org pair, start the
sandbox, and run three cycles of ``python -m include.provisioning sync`` in a child process
(exactly what a user runs), measuring wall time per phase (from the cycle summary), the child's
peak RSS, and Graph and Salesforce requests (the emulators' own counters):

1. the initial sync (empty state store, mode auto → full),
2. a no-change incremental cycle,
3. a cycle after changing the surnames of 1 % of the tenant's users (directly assigned ones)
   through the control API; the label shows the share actually changed.

Then, for ``--baseline-users`` users, the way a person would do it by hand — users fetched with
typed msgraph-sdk models and one simple-salesforce REST call per user — timed in the same run
against the engine's initial sync of the same tenant, so the table shows the ratio of the two
wall-clock times (the engine's child process included, as a user waits for it).
Numbers are printed as measured; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402

from include.sandbox.process import SandboxProcess  # noqa: E402
from scripts.benchlib import PeakRss, Report, cached_fixtures, cli_sync_command, sizes_arg  # noqa: E402


def _run_sync(
    sandbox: SandboxProcess, state_url: str, workdir: Path, label: str, report: Report
) -> tuple[dict[str, Any], float]:
    """One CLI cycle in a child process; returns its summary JSON and its wall-clock seconds."""
    for service in ("graph", "salesforce"):
        (sandbox.graph if service == "graph" else sandbox.salesforce).delete("/_sandbox/requests")
    summary_path = workdir / f"{label}.json"
    started = time.perf_counter()
    child = subprocess.Popen(
        cli_sync_command(sandbox.env_file, state_url, summary_path, workdir / "reports"),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    rss = PeakRss(child.pid, interval=0.05)
    peak = rss.sampled
    output, _ = child.communicate()
    rss.stop()
    peak = max(rss.sampled, peak)
    seconds = time.perf_counter() - started
    if child.returncode not in (0,):
        print(output.decode(errors="replace"))
        raise SystemExit(f"{label}: sync exited with {child.returncode}")
    summary = json.loads(summary_path.read_text())
    graph = sandbox.requests("graph")
    salesforce = sandbox.requests("salesforce")
    writes = sum(
        n
        for route, n in salesforce["by_route"].items()
        if route.startswith(
            (
                "POST /services/data/{version}/jobs/ingest",
                "PATCH /services/data/{version}/sobjects",
                "POST /services/data/{version}/sobjects",
            )
        )
    )
    phases = ", ".join(f"{k} {v:.2f}" for k, v in summary["phase_seconds"].items())
    users = summary["in_scope"]
    report.add(
        label,
        seconds,
        f"{users:,} in scope: +{summary['created']} ~{summary['updated']} -{summary['deactivated']} "
        f"={summary['unchanged']} q{summary['quarantined']} e{summary['escrowed']} h{summary['held_back']}",
        f"Graph {graph['total']}"
        + (f" ({graph['total'] / max(users, 1) * 1000:.2f}/1k in scope)" if summary["mode"] == "full" else "")
        + ", "
        f"SF {salesforce['total']} (writes {writes})",
        f"peak RSS {peak / 2**20:,.0f} MiB; phases: {phases}",
    )
    return summary, seconds


def share_label(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal: 60 of 10,000 is "0.6 %", never "1 %"."""
    return f"{100 * part / max(whole, 1):.1f} %"


def _change_one_percent(sandbox: SandboxProcess, tenant: dict[str, Any]) -> int:
    """Change the surnames of 1 % of the tenant's users, spread over the directly assigned ones."""
    assigned = {a["principalId"] for a in tenant["appRoleAssignments"]}
    candidates = [u["id"] for u in tenant["users"] if u["id"] in assigned and not u.get("deletedDateTime")]
    wanted = max(1, len(tenant["users"]) // 100)
    chosen = candidates[:: max(1, len(candidates) // wanted)][:wanted]
    for n, user_id in enumerate(chosen):
        sandbox.graph.patch(f"/_sandbox/users/{user_id}", json={"surname": f"Changed{n}"}).raise_for_status()
    return len(chosen)


def _size(users: int, seed: int, cache: Path, report: Report) -> None:
    fixtures = cached_fixtures(users, seed, cache, report)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        workdir = Path(tmp)
        sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", workdir, startup_timeout=600)
        try:
            state_url = f"sqlite:///{workdir / 'state.db'}"
            _run_sync(sandbox, state_url, workdir, f"{users:,}: initial sync", report)
            _run_sync(sandbox, state_url, workdir, f"{users:,}: no-change cycle", report)
            changed = _change_one_percent(sandbox, orjson.loads((fixtures / "tenant.json").read_bytes()))
            label = f"{users:,}: {share_label(changed, users)} change ({changed:,} users)"
            _run_sync(sandbox, state_url, workdir, label, report)
        finally:
            sandbox.stop()


def _by_hand(sandbox: SandboxProcess) -> dict[str, Any]:
    """What a person would script: typed SDK models, one REST create per user."""
    from scripts.by_hand_sync import by_hand_sync

    return asyncio.run(by_hand_sync(sandbox.settings))


def _baseline(users: int, seed: int, cache: Path, report: Report) -> None:
    fixtures = cached_fixtures(users, seed, cache, report)
    with tempfile.TemporaryDirectory(prefix="bench-hand-") as tmp:
        workdir = Path(tmp)
        sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", workdir, startup_timeout=600)
        try:
            _, engine_seconds = _run_sync(
                sandbox, f"sqlite:///{workdir / 'state.db'}", workdir, f"{users:,}: engine initial sync", report
            )
            sandbox.reset()
            started = time.perf_counter()
            outcome = _by_hand(sandbox)
            hand_seconds = time.perf_counter() - started
            graph, salesforce = sandbox.requests("graph"), sandbox.requests("salesforce")
            report.add(
                f"{users:,}: by hand (typed SDK, REST per user)",
                hand_seconds,
                f"{outcome['users']:,} users: +{outcome['created']} failed {outcome['failed']}",
                f"Graph {graph['total']}, SF {salesforce['total']}",
                f"{speed_ratio(hand_seconds, engine_seconds)} the engine's wall time ({engine_seconds:.2f}s)",
            )
        finally:
            sandbox.stop()


def speed_ratio(slow_seconds: float, fast_seconds: float) -> str:
    """How many times ``fast_seconds`` fit in ``slow_seconds``, e.g. "3.7x" (both wall-clock times)."""
    return f"{slow_seconds / max(fast_seconds, 1e-9):.1f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_arg, default="10000,100000", help="comma-separated tenant sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-users", type=int, default=2000, help="0 skips the by-hand comparison")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".bench")
    args = parser.parse_args(argv)
    report = Report()
    for size in args.sizes:
        _size(size, args.seed, args.cache.resolve(), report)
    if args.baseline_users:
        _baseline(args.baseline_users, args.seed, args.cache.resolve(), report)
    report.print()
    print("\nitems: + created, ~ updated, - deactivated, = unchanged, q quarantined, e escrowed, h held back;")
    print("in scope = the users the cycle evaluated (an incremental cycle evaluates only what changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
