"""Benchmark provision on demand (one user, Entra's "provision on demand") against the sandbox.

    python scripts/benchmark_on_demand.py [--sizes 10000,100000] [--runs 5] [--seed 1]

For each tenant size: generate (or reuse from ``.bench/``) a tenant + org pair, start the sandbox,
and give the engine a state store that already manages as many users as the tenant has (synthetic
rows, ``state.bench.seed_managed_users``), as after an initial sync. Then provision one directly
assigned user on demand (``api.provision_user``, what ``provision-user <upn>`` runs) once to warm
up (imports, logins), and ``--runs`` more users one after the other, each a user the org does not
have yet (a create), and one user assigned through nested groups. Every run is a whole focused
cycle: Graph, validation, mapping, Salesforce's Bulk API and the provisioning log.

The table gives the median seconds of the runs and the requests one run made (the emulators'
counters: HTTP requests, and for Graph the requests inside ``$batch`` envelopes). The target is
≤ 3 s at 100,000 users; numbers are printed as measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402

from include.provisioning import api  # noqa: E402
from include.provisioning.on_demand import OnDemandOutcome  # noqa: E402
from include.provisioning.runtime import build_engine  # noqa: E402
from include.provisioning.state.bench import seed_managed_users  # noqa: E402
from include.sandbox.process import SandboxProcess  # noqa: E402
from scripts.benchlib import Report, cached_fixtures, sizes_arg  # noqa: E402


def pick_users(tenant: dict[str, Any], count: int) -> tuple[list[str], str | None]:
    """``count`` + 1 enabled users assigned directly (the first warms up), and one enabled user
    assigned only through a group (None when the tenant has none), by userPrincipalName."""
    users = {u["id"]: u for u in tenant["users"] if u.get("accountEnabled") and not u.get("deletedDateTime")}
    direct = [a["principalId"] for a in tenant["appRoleAssignments"] if a.get("principalType") == "User"]
    chosen = [users[i]["userPrincipalName"] for i in dict.fromkeys(direct) if i in users][: count + 1]
    assigned_groups = {a["principalId"] for a in tenant["appRoleAssignments"] if a.get("principalType") == "Group"}
    direct_ids = set(direct)
    for group in tenant["groups"]:
        if group["id"] in assigned_groups:
            for member in group["members"]:
                if member in users and member not in direct_ids:
                    return chosen, users[member]["userPrincipalName"]
    return chosen, None


def requests_made(sandbox: SandboxProcess) -> str:
    """One run's requests: Graph HTTP (of which inside ``$batch``), Salesforce HTTP."""
    graph, salesforce = sandbox.requests("graph"), sandbox.requests("salesforce")
    batched = sum(graph["batched_by_route"].values())
    return f"graph {graph['total']} ({batched} in $batch), sf {salesforce['total']}"


def _action(outcome: OnDemandOutcome) -> str:
    last = outcome.steps[-1]
    return f"{last.name} {last.status}: {last.detail.split(':')[0]}"


def provision(sandbox: SandboxProcess, engine: Any, upn: str) -> tuple[float, OnDemandOutcome, str]:
    """One on-demand run with zeroed counters: seconds, outcome, requests made."""
    for client in (sandbox.graph, sandbox.salesforce):
        client.delete("/_sandbox/requests").raise_for_status()
    started = time.perf_counter()
    outcome = api.provision_user(engine, upn)
    seconds = time.perf_counter() - started
    broken = any(step.name == "connection test" and step.status == "failed" for step in outcome.steps)
    if outcome.unknown_user or broken:
        raise SystemExit(f"{upn}: {[(s.name, s.status, s.detail) for s in outcome.steps]}")
    return seconds, outcome, requests_made(sandbox)


def benchmark(users: int, runs: int, seed: int, report: Report) -> None:
    fixtures = cached_fixtures(users, seed, REPO_ROOT / ".bench", report)
    tenant = orjson.loads((fixtures / "tenant.json").read_bytes())
    direct, via_group = pick_users(tenant, runs)
    del tenant
    with tempfile.TemporaryDirectory(prefix="bench-on-demand-") as folder:
        work = Path(folder)
        sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", work)
        engine = build_engine(sandbox.settings, state_url=f"sqlite:///{work / 'state.db'}")
        try:
            started = time.perf_counter()
            seed_managed_users(engine.state, users, dt.datetime.now(dt.UTC))
            report.add("state store: managed users", time.perf_counter() - started, f"{users:,} snapshot rows")
            seconds, outcome, made = provision(sandbox, engine, direct[0])
            report.add(f"{users:,} users: first run (warm-up)", seconds, _action(outcome), made, "imports, logins")
            timings: list[float] = []
            for upn in direct[1:]:
                seconds, outcome, made = provision(sandbox, engine, upn)
                timings.append(seconds)
            report.add(
                f"{users:,} users: median of {len(timings)} runs (direct)",
                statistics.median(timings),
                _action(outcome),
                made,
                f"min {min(timings):.2f} s, max {max(timings):.2f} s",
            )
            if via_group is not None:
                seconds, outcome, made = provision(sandbox, engine, via_group)
                report.add(f"{users:,} users: one run (nested group)", seconds, _action(outcome), made)
        finally:
            engine.state.close()
            sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_arg, default=[10_000, 100_000], help="tenant sizes, e.g. 10000,100000")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per size (after one warm-up)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = Report()
    for users in args.sizes:
        benchmark(users, max(1, args.runs), args.seed, report)
    report.print()
    print("target: <= 3 s per user at 100,000 users; requests: one run's HTTP requests to each emulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
