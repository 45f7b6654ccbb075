"""``sync --dry-run`` on the example fixtures: the counts, a short table and the whole plan as a
CSV a person can open; nothing changes in Salesforce or the state store. A dry run that validation
stops says "stopped" and exits 3, as the real cycle would."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from include.provisioning.cycle import Engine, run_cycle
from include.provisioning.state import StateStore
from tests.e2e.conftest import ingest_jobs, org_changes, org_users, run_cli
from tests.sandbox_process import REPO_ROOT, SandboxProcess

ADELE, ALEX, MEGAN, ZOE, NOSURNAME = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 6))
MEGAN_SF_ID = "005000000000002AAA"


def _dry_run(sandbox: SandboxProcess, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(sandbox, tmp_path / "cli.db", "sync", "--dry-run", *args, "--quiet")


def test_dry_run_prints_counts_and_a_short_table_and_writes_the_whole_plan(
    sandbox: SandboxProcess, tmp_path: Path, make_engine: Callable[..., Engine]
) -> None:
    before = org_users(sandbox)
    plan_csv = tmp_path / "out" / "plan.csv"
    dry = _dry_run(sandbox, tmp_path, "--plan-csv", str(plan_csv))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    out = dry.stdout.splitlines()

    # The counts: the same equation as a real cycle's summary.
    equation = "in scope 6 = created 4 + updated 1 + unchanged 1 + deactivated 0 + quarantined 0 + escrowed 0"
    assert any(line.strip().startswith(equation) for line in out), dry.stdout
    # The table: one line per planned action, in the load's order (creates, then updates), by UPN;
    # each user named "Display name (UPN)".
    start = out.index("Planned changes (dry run, nothing written): 5 action(s)")
    table = [line.strip() for line in out[start + 1 : start + 8]]
    assert table[0].split() == ["action", "user", "changes"]
    user, what = table[0].index("user"), table[0].index("changes")
    assert [(line[:user].strip(), line[user:what].strip()) for line in table[2:]] == [
        ("create", "Adele Vance (adele.vance@contoso.example)"),
        ("create", "Alex Wilber (alex.wilber@contoso.example)"),
        ("create", "Nosurname None (no.surname@contoso.example)"),
        ("create", "Zoë Müller (zoe.muller@contoso.example)"),
        ("update", "Megan Bowen (megan.bowen@contoso.example)"),
    ]
    assert table[2][what:].startswith("Username: adele.vance@contoso.example; IsActive: True;")
    assert table[6][what:].startswith("LastName: Bowen-Old → Bowen; Alias: mbowen → megan.bo;")
    assert f"Plan CSV: {plan_csv} (5 row(s), one per planned action)" in out
    assert "and" not in " ".join(table)  # five actions fit: no "… and N more" line

    # The CSV: every planned action, as the plan has it, UTF-8 with a byte-order mark.
    data = plan_csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert header == [
        "action",
        "user_principal_name",
        "display_name",
        "entra_id",
        "salesforce_id",
        "changes",
        "reason",
    ]
    assert [row[:5] for row in rows] == [
        ["create", "adele.vance@contoso.example", "Adele Vance", ADELE, ""],
        ["create", "alex.wilber@contoso.example", "Alex Wilber", ALEX, ""],
        ["create", "no.surname@contoso.example", "Nosurname None", NOSURNAME, ""],
        ["create", "zoe.muller@contoso.example", "Zoë Müller", ZOE, ""],
        ["update", "megan.bowen@contoso.example", "Megan Bowen", MEGAN, MEGAN_SF_ID],
    ]
    planned = run_cycle(make_engine(f"sqlite:///{tmp_path / 'in-process.db'}"), dry_run=True).plan
    by_id = {change.entra_id: change for change in planned.writes()}
    assert sorted(by_id) == sorted(row[3] for row in rows)
    profiles = {p["Id"]: p["Name"] for p in sandbox.org["profiles"]}

    def shown(name: str, value: object) -> str:  # a ProfileId with its profile's name beside it
        return f"{value} ({profiles[str(value)]})" if name == "ProfileId" and value else str(value or "(empty)")

    for row in rows:
        change = by_id[row[3]]
        cells = dict(part.split(": ", 1) for part in row[5].split("; "))
        assert list(cells) == list(change.changes), row[1]
        if change.sf_id is None:  # a create: the values sent
            assert cells == {name: shown(name, c.new) for name, c in change.changes.items()}
        else:
            assert cells == {name: f"{shown(name, c.old)} → {shown(name, c.new)}" for name, c in change.changes.items()}
    assert rows[3][5].split("; ")[3:5] == ["FirstName: Zoë", "LastName: Müller"]

    # Nothing was written: no Bulk job, no change in the org, nothing in the state store.
    assert ingest_jobs(sandbox) == 0 and org_changes(before, org_users(sandbox)) == {}
    with StateStore(f"sqlite:///{tmp_path / 'cli.db'}") as state:
        assert state.cycles() == [] and state.snapshot().empty and state.log_entries() == []


def test_dry_run_writes_its_csv_to_the_report_dir_by_default(sandbox: SandboxProcess, tmp_path: Path) -> None:
    dry = _dry_run(sandbox, tmp_path, "--report-dir", str(tmp_path / "reports"))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    (written,) = (tmp_path / "reports").glob("dry-run-*-plan.csv")
    assert f"Plan CSV: {written} (5 row(s)" in dry.stdout


def test_a_dry_run_that_validation_stops_exits_3_and_says_stopped(sandbox: SandboxProcess, tmp_path: Path) -> None:
    before = org_users(sandbox)
    for user_id in (ADELE, ALEX, MEGAN):
        sandbox.graph.patch(f"/_sandbox/users/{user_id}", json={"mail": "bad"}).raise_for_status()
    dry = _dry_run(sandbox, tmp_path, "--report-dir", str(tmp_path / "reports"))
    assert dry.returncode == 3, dry.stdout + dry.stderr
    assert "full cycle, stopped (dry run)" in dry.stdout
    assert "reason: 3 of the 5 users validated (60.0%) failed validation (limit 40%)" in dry.stdout
    assert "Planned changes (dry run, nothing written): 3 action(s)" in dry.stdout  # the quarantined
    assert "dry run (planned only" not in dry.stdout
    assert ingest_jobs(sandbox) == 0 and org_changes(before, org_users(sandbox)) == {}


def test_plan_csv_goes_with_dry_run_only(sandbox: SandboxProcess, tmp_path: Path) -> None:
    real = subprocess.run(
        [sys.executable, "-m", "include.provisioning", "sync", "--plan-csv", str(tmp_path / "p.csv")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert real.returncode == 2 and "--plan-csv goes with --dry-run" in real.stderr
    assert not (tmp_path / "p.csv").exists()
