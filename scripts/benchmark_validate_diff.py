"""Time validate and diff on synthetic frames of 10,000 / 100,000 / 1,000,000 users.

Each measurement runs in its own process (so peak memory belongs to one phase), builds its
inputs first, then resets the kernel's peak-RSS counter and times only the call:

    .venv/bin/python scripts/benchmark_validate_diff.py                 # all sizes
    .venv/bin/python scripts/benchmark_validate_diff.py --sizes 10000,100000

Phases:
  validate          the default suite on the USERS frame: 1 % bad mail, 2 % leavers
  diff initial      full mode, empty org and snapshot: every user is a create
  diff full         full mode, org and snapshot hold the applied state; 1 % changed, 0.5 % leaving
  diff incremental  incremental mode: the frame holds the 1 % changed users, the snapshot everyone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PHASES = ("validate", "diff initial", "diff full", "diff incremental")
PROFILE = "00e000000000001AAA"


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Linux resets VmHWM when "5" is written to clear_refs; without it the peak includes setup."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _users(n: int) -> Any:
    import numpy as np
    import pandas as pd

    numbers = np.arange(n)
    upn = [f"user{i}@contoso.example" for i in range(n)]
    mail = [f"user{i}@" if i % 100 == 7 else u for i, u in zip(range(n), upn, strict=True)]
    return pd.DataFrame(
        {
            "id": [f"00000000-0000-0000-0000-{i:012d}" for i in range(n)],
            "userPrincipalName": upn,
            "mail": mail,
            "givenName": [f"Given{i % 997}" for i in range(n)],
            "surname": [f"Surname{i % 1009}" for i in range(n)],
            "mailNickname": [f"user{i}" for i in range(n)],
            "jobTitle": "Account Executive",
            "department": "Sales",
            "employeeId": [str(100000 + i) for i in range(n)],
            "preferredLanguage": "en-US",
            "appRoleAssignments": [["Standard User"]] * n,
            "IsSoftDeleted": numbers % 50 == 3,
            "scopeReason": None,
        }
    )


def _table() -> dict[str, Any]:
    """Matching fields, defaults, on-create and clear-when-null fields of the default mapping table."""
    import yaml

    from include.provisioning.settings import DEFAULT_MAPPING_PATH

    rows = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())["fields"]
    ranked = sorted((r for r in rows if r.get("match_precedence")), key=lambda r: r["match_precedence"])
    return {
        "matching": [r["target"] for r in ranked],
        "defaults": {r["target"]: r["default"] for r in rows if r.get("default") is not None},
        "create_only": {r["target"] for r in rows if r.get("apply") == "on_create"},
        "clear_when_null": {r["target"] for r in rows if r.get("clear_when_null")},
    }


def _mapped(users: Any) -> Any:
    """What the default table makes of the synthetic users (ProfileName already resolved)."""
    upn = users["userPrincipalName"]
    frame = users[["id"]].copy()
    frame["Username"] = upn
    frame["IsActive"] = ~users["IsSoftDeleted"]
    frame["Email"] = users["mail"]
    frame["FirstName"] = users["givenName"]
    frame["LastName"] = users["surname"]
    frame["Alias"] = upn.str.slice(0, 8)
    frame["CommunityNickname"] = upn.str.split("@").str[0]
    frame["FederationIdentifier"] = upn
    frame["LocaleSidKey"] = "en_US"
    frame["LanguageLocaleKey"] = "en_US"
    frame["EmailEncodingKey"] = None
    frame["TimeZoneSidKey"] = None
    frame["Title"] = users["jobTitle"]
    frame["Department"] = users["department"]
    frame["EmployeeNumber"] = users["employeeId"]
    frame["ProfileId"] = PROFILE
    frame["IsSoftDeleted"] = users["IsSoftDeleted"]
    return frame


def _diff_input(phase: str, n: int) -> Any:
    import numpy as np
    import pandas as pd

    from include.provisioning.diff import DiffInput
    from include.provisioning.settings import SyncOptions

    users = _users(n)
    users["IsSoftDeleted"] = False
    users["mail"] = users["userPrincipalName"]
    mapped = _mapped(users)
    fields = [c for c in mapped.columns if c not in ("id", "IsSoftDeleted")]
    table = _table()
    options = SyncOptions(deletion_threshold_count=10**9, deletion_threshold_share=1.0)
    if phase == "diff initial":
        snapshot = pd.DataFrame(
            {c: pd.Series([], dtype=object) for c in ("entra_id", "sf_id", "match_value", "fields")}
        )
        org = pd.DataFrame({c: pd.Series([], dtype=object) for c in ["Id", *fields]})
        return DiffInput(mapped, users, snapshot.assign(is_active=pd.Series([], dtype=bool)), org, managed_count=0,
                         options=options, **table)  # fmt: skip

    # The applied state: what the initial sync created (defaults filled in).
    sf_ids = [f"005{i:012d}AAA" for i in range(n)]
    applied = mapped[fields].astype(object)
    for name, value in table["defaults"].items():
        applied[name] = applied[name].where(applied[name].notna(), value)
    snapshot = pd.DataFrame(
        {
            "entra_id": mapped["id"],
            "sf_id": sf_ids,
            "match_value": mapped["Username"],
            "is_active": True,
            "fields": applied.to_dict("records"),
            "roles": [["Standard User"]] * n,
        }
    )
    org = applied.astype(str).assign(Id=sf_ids, IsActive="true")
    changed = np.arange(n) % 100 == 11
    leaving = np.arange(n) % 200 == 5
    mapped.loc[changed, "LastName"] = "Renamed"
    users.loc[leaving, "IsSoftDeleted"] = True
    mapped.loc[leaving, "IsSoftDeleted"] = True
    if phase == "diff full":
        return DiffInput(mapped, users, snapshot, org, managed_count=n, options=options, **table)
    picked = changed | leaving
    return DiffInput(mapped[picked], users[picked], snapshot, None, managed_count=n, options=options, **table)


def run_one(phase: str, n: int) -> dict[str, Any]:
    """Build the inputs, then time one call and measure its peak memory."""
    import great_expectations  # noqa: F401  (import cost is reported apart)

    from include.provisioning.diff import plan_changes
    from include.provisioning.validate import validate

    started = time.perf_counter()
    if phase == "validate":
        data: Any = _users(n)
    else:
        data = _diff_input(phase, n)
    setup = time.perf_counter() - started
    baseline = _status_kib("VmRSS")
    exact = _reset_peak()
    started = time.perf_counter()
    if phase == "validate":
        result = validate(data)
        detail = f"{result.checked} checked, {len(result.quarantined)} quarantined"
    else:
        plan = plan_changes(data)
        detail = (
            f"{len(plan.creates)} creates, {len(plan.updates)} updates, {len(plan.deactivations)} deactivations, "
            f"{len(plan.unchanged)} unchanged"
        )
    seconds = time.perf_counter() - started
    return {
        "phase": phase,
        "users": n,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(_status_kib("VmHWM") / 1024),
        "baseline_rss_mib": round(baseline / 1024),
        "peak_is_phase_only": exact,
        "setup_seconds": round(setup, 1),
        "detail": detail,
    }


def main() -> None:
    from scripts.benchlib import sizes_arg  # here, not at the top: the measuring children do not need it

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes_arg, default="10000,100000,1000000", help="comma-separated user counts")
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--one", nargs=2, metavar=("PHASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return

    gx_import = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import great_expectations; print(round(time.perf_counter() - t, 2))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.strip()
    print(f"great_expectations import (once per process, not in the table): {gx_import} s")
    print(f"{'phase':<18}{'users':>10}{'seconds':>10}{'peak RSS MiB':>14}{'of which inputs':>17}  result")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for n in args.sizes:
        for phase in args.phases:
            command = [sys.executable, __file__, "--one", phase, str(n)]
            done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO, env=env)
            if done.returncode:
                print(f"{phase:<18}{n:>10}  FAILED: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{phase:<18}{n:>10,}{row['seconds']:>10.2f}{row['peak_rss_mib']:>14,}"
                f"{row['baseline_rss_mib']:>17,}  {row['detail']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
