"""Cycle policies end to end: the state store on PostgreSQL, the validation stop, the
accidental-deletion threshold, dry runs, and the command line's exit status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from include.provisioning.cycle import Engine, run_cycle
from include.provisioning.model import Action, CycleStatus, Mode, Status
from include.provisioning.report import format_summary
from include.provisioning.state import StateStore
from include.sandbox.core.envfile import write_env_file
from tests.e2e.conftest import ingest_jobs, org_changes, org_users, run_cli
from tests.sandbox_process import REPO_ROOT, SandboxProcess

ADELE, ZOE = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000004"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"provisioning_e2e_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.mark.postgres
def test_cycles_on_a_postgresql_state_store(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine], postgres_url: str
) -> None:
    engine = make_engine(postgres_url)
    first = run_cycle(engine)
    assert (first.summary.status, first.summary.created, first.summary.escrowed) == (CycleStatus.SUCCEEDED, 3, 1)
    sandbox.graph.patch(f"/_sandbox/users/{ADELE}", json={"department": "Marketing"}).raise_for_status()
    second = run_cycle(engine)
    assert second.summary.mode is Mode.INCREMENTAL
    assert [(e.action, e.status) for e in second.log if e.entra_id == ADELE] == [(Action.UPDATE, Status.SUCCESS)]
    assert org_users(sandbox)["adele.vance@contoso.example"]["Department"] == "Marketing"
    assert len(engine.state.log_entries(entra_id=ADELE)) == 2
    engine.state.close()


def test_too_many_bad_records_stop_the_cycle_before_any_write(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine]
) -> None:
    for user_id in ("01", "02", "03"):
        sandbox.graph.patch(
            f"/_sandbox/users/00000000-0000-0000-0000-0000000000{user_id}", json={"mail": "not-an-address"}
        ).raise_for_status()
    before = org_users(sandbox)
    result = run_cycle(make_engine())
    assert result.summary.status is CycleStatus.STOPPED
    assert "failed validation" in (result.summary.reason or "")
    assert ingest_jobs(sandbox) == 0
    assert org_changes(before, org_users(sandbox)) == {}
    assert {q.entra_id for q in result.quarantined} >= {ADELE}
    assert all(any("mail" in r for r in q.reasons) for q in result.quarantined)
    assert result.report is not None  # quarantined users are reported


def test_a_validation_stop_says_how_many_were_in_scope_and_why_some_were_not_validated(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine()
    first = run_cycle(engine)
    assert first.summary.escrowed == 1  # the example org holds a username taken elsewhere
    for user_id in ("01", "03", "04"):
        sandbox.graph.patch(
            f"/_sandbox/users/00000000-0000-0000-0000-0000000000{user_id}", json={"mail": "not-an-address"}
        ).raise_for_status()
    stopped = run_cycle(engine, Mode.FULL)  # a full cycle holds the escrowed user until its retry
    reason = stopped.summary.reason or ""
    match = re.fullmatch(
        r"3 of the (\d+) users validated \((\d+\.\d)%\) failed validation \(limit 40%\); (\d+) users in scope, "
        r"2 not validated \(1 waiting for their escrow retry, 1 leaving the scope\); "
        r"nothing was written to Salesforce",
        reason,
    )
    assert match is not None, reason
    validated, share, in_scope = int(match[1]), float(match[2]), int(match[3])
    assert in_scope == first.summary.in_scope == validated + 2  # disabled.user leaves the scope
    assert share == round(300 / validated, 1)
    text = format_summary(stopped.summary)
    assert f"  counted {stopped.summary.in_scope} = " in text and f"{in_scope} users in scope" in text
    engine.state.close()


def test_deactivations_above_the_threshold_are_held_back(
    sandbox: SandboxProcess, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(AIRFLOW_VAR_PROVISIONING_DELETION_THRESHOLD_COUNT="1")
    run_cycle(engine)
    for assignment in ("asg-1", "asg-4"):
        sandbox.graph.delete(f"/_sandbox/appRoleAssignments/{assignment}").raise_for_status()
    before = org_users(sandbox)
    result = run_cycle(engine)
    assert org_changes(before, org_users(sandbox)) == {}
    assert result.summary.held_back == 2 and result.summary.deactivated == 0
    assert result.plan.held_back_reason is not None and "2" in result.plan.held_back_reason
    staged = [e for e in result.log if e.action is Action.STAGED_DELETE]
    assert {e.status for e in staged} == {Status.SKIPPED} and len(staged) == 2
    assert result.report is not None and "held" in result.report.text.lower()


def _cli(sandbox: SandboxProcess, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(sandbox, tmp_path / "cli.db", *args)


def test_cli_dry_run_writes_nothing_then_sync_writes_and_reports(sandbox: SandboxProcess, tmp_path: Path) -> None:
    before = org_users(sandbox)
    dry_summary = tmp_path / "dry.json"
    dry = _cli(sandbox, tmp_path, "sync", "--dry-run", "--summary-json", str(dry_summary))
    assert dry.returncode == 0, dry.stderr
    planned = r"create  Adele Vance \(adele\.vance@contoso\.example\) +Username: adele\.vance@contoso\.example;"
    assert re.search(planned, dry.stdout), dry.stdout
    assert "cycle, dry run (planned only, nothing written)" in dry.stdout
    assert "stopped" not in dry.stdout  # a dry run is not a stopped cycle (exit 3 means stopped)
    assert json.loads(dry_summary.read_text())["status"] == "dry_run"
    assert ingest_jobs(sandbox) == 0 and org_changes(before, org_users(sandbox)) == {}
    with StateStore(f"sqlite:///{tmp_path / 'cli.db'}") as state:  # a dry run records nothing either
        assert state.cycles() == [] and state.watermark() is None and state.snapshot().empty

    summary_path = tmp_path / "summary.json"
    real = _cli(sandbox, tmp_path, "sync", "--summary-json", str(summary_path), "--report-dir", str(tmp_path / "r"))
    assert real.returncode == 0, real.stderr
    summary = json.loads(summary_path.read_text())
    outcomes = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
    assert summary["in_scope"] == sum(summary[k] for k in outcomes) == 6
    assert summary["reactivated"] == 0  # a part of "updated", not of the sum
    graph_lines = [line.split("  ", 1)[-1] for line in real.stderr.splitlines() if "assignments:" in line]
    assert graph_lines and len(graph_lines) == len(set(graph_lines)), "each progress line once"
    assert "[extract]" in real.stderr  # progress on stderr
    assert "Failure report:" in real.stdout and list((tmp_path / "r").glob("*.csv"))


def test_cli_exit_status_for_a_stopped_cycle_and_bad_configuration(sandbox: SandboxProcess, tmp_path: Path) -> None:
    for user_id in ("01", "02", "03"):
        sandbox.graph.patch(
            f"/_sandbox/users/00000000-0000-0000-0000-0000000000{user_id}", json={"mail": "bad"}
        ).raise_for_status()
    stopped = _cli(sandbox, tmp_path, "sync", "--report-dir", str(tmp_path / "reports"))
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "cycle, stopped" in stopped.stdout
    bad_mapping = tmp_path / "bad.yaml"
    bad_mapping.write_text("mappings:\n  - target: LastName\n    source: Mid([surname], 1\n")
    broken = _cli(sandbox, tmp_path, "sync", "--mapping", str(bad_mapping))
    assert broken.returncode == 2
    assert "bad.yaml" in broken.stderr and "Traceback" not in broken.stderr


def test_provision_user_on_demand_shows_the_steps(sandbox: SandboxProcess, tmp_path: Path) -> None:
    done = _cli(sandbox, tmp_path, "provision-user", "adele.vance@contoso.example")
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("connection test", "import", "scope", "match", "action"):
        assert f"] {step}:" in done.stdout
    assert "create succeeded" in done.stdout
    assert "full (provision on demand, one user only: adele.vance@contoso.example)" in done.stderr
    assert "as requested" not in done.stderr  # nobody asked for a full cycle
    assert re.search(r"Username: adele\.vance@contoso\.example; ", done.stdout)  # the plan CSV's rendering
    assert re.search(r"ProfileId: 00e\w{15} \(Standard User\)", done.stdout)
    assert "None" not in done.stdout and "'" not in done.stdout and "->" not in done.stdout
    found = [line for line in done.stderr.splitlines() if "user found; groups:" in line]
    assert len(found) == 1, done.stderr  # each progress line once
    assert "adele.vance@contoso.example" in org_users(sandbox)
    assert len(org_users(sandbox)) == 3, "only the one user was provisioned"
    taken = _cli(sandbox, tmp_path, "provision-user", "alex.wilber@contoso.example")
    assert taken.returncode == 1 and "DUPLICATE_USERNAME: Duplicate Username. The username" in taken.stdout
    assert "<br>" not in taken.stdout
    with StateStore(f"sqlite:///{tmp_path / 'cli.db'}") as state:  # escrowed as text, not Salesforce's markup
        (escrowed,) = state.escrow_entries()
        assert escrowed.error_message and escrowed.error_message.startswith("Duplicate Username. The username")


def test_provision_user_tells_an_unknown_user_from_an_unassigned_one(sandbox: SandboxProcess, tmp_path: Path) -> None:
    before = org_users(sandbox)
    unassigned = _cli(sandbox, tmp_path, "provision-user", "not.assigned@contoso.example")
    assert unassigned.returncode == 0, unassigned.stdout + unassigned.stderr
    assert "[skipped] import: not.assigned@contoso.example is not assigned to the app" in unassigned.stdout
    assert "nothing to do" in unassigned.stdout
    for dry_run in ([], ["--dry-run"]):
        unknown = _cli(sandbox, tmp_path, "provision-user", "nobody@nowhere.example", *dry_run)
        assert unknown.returncode == 2, unknown.stdout + unknown.stderr
        assert "[ failed] import: Entra ID has no user nobody@nowhere.example" in unknown.stdout
        assert "not assigned" not in unknown.stdout and "nothing to do" not in unknown.stdout
        assert "error: Entra ID has no user nobody@nowhere.example" in unknown.stderr
        assert "Traceback" not in unknown.stderr
    assert ingest_jobs(sandbox) == 0 and org_changes(before, org_users(sandbox)) == {}


def _validate_connect(sandbox: SandboxProcess, tmp_path: Path, **connections: dict[str, Any]) -> str:
    """``validate-config --connect`` with some connections changed; its stderr (exit 2 checked)."""
    env_file = tmp_path / "changed.env"
    settings = {**sandbox.settings}
    for variable, change in connections.items():
        connection = json.loads(settings[variable])
        extra = {**connection.get("extra", {}), **change.pop("extra", {})}
        settings[variable] = json.dumps({**connection, **change, "extra": extra})
    write_env_file(env_file, settings)
    done = subprocess.run(
        [sys.executable, "-m", "include.provisioning", "validate-config", "--connect", "--env-file", str(env_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors and all(line.startswith("error: ") or "problem(s) found" in line for line in errors), done.stderr
    return done.stderr


def test_refused_secrets_print_one_error_each_naming_the_connection(sandbox: SandboxProcess, tmp_path: Path) -> None:
    """Each connection's refused secret is one ``error:`` line naming the setting to check: not
    azure-identity's WARNING dump of the refused token request (trace id, JSON body) first, which
    Python printed because the CLI configures no logging handler, and not "Salesforce login:
    Salesforce login failed: ..."."""
    stderr = _validate_connect(
        sandbox,
        tmp_path,
        AIRFLOW_CONN_MSGRAPH_DEFAULT={"password": "not-the-secret"},
        AIRFLOW_CONN_SALESFORCE_DEFAULT={"extra": {"consumer_secret": "not-the-secret-either"}},
    )
    assert "check the client id, secret and extra.tenant_id of connection 'msgraph_default'" in stderr
    assert "check extra.consumer_key and extra.consumer_secret of connection 'salesforce_default'" in stderr
    assert "error: Salesforce login failed: " in stderr and "Salesforce login: Salesforce login" not in stderr
    assert "error: Graph authentication failed for " in stderr and "Graph login: Graph" not in stderr
    assert "Trace ID" not in stderr and "not-the-secret" not in stderr
