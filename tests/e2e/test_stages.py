"""The cycle stage by stage, as the Airflow tasks run it: a fresh engine per stage (as a fresh task
process would build), stage outputs as Parquet files under a run path, on a generated tenant with
every kind of messy record. It must leave Salesforce and the summary exactly as the one-process
cycle of the command line does, and re-running a stage must converge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.provisioning import api, stages
from include.provisioning.artifacts import PLAN
from include.provisioning.cycle import run_cycle
from include.provisioning.model import Status
from include.provisioning.shards import Shard
from include.provisioning.workspace import Workspace
from tests.e2e.generated import engine_for, org_users
from tests.e2e.generated import generated_sandbox as generated
from tests.sandbox_process import SandboxProcess

USERS = 1500
MAIL_MISSING = "mail: missing (expect_column_values_to_not_be_null)"


@pytest.fixture(scope="module")
def generated_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with generated(tmp_path_factory, "stages", USERS, seed=7) as (_, process):
        yield process


_engine = engine_for
_org = org_users


def _counts(summary: Any) -> dict[str, int]:
    names = ("created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back")
    return {name: getattr(summary, name) for name in names}


def test_stage_by_stage_through_files_equals_the_one_process_cycle(
    generated_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    sandbox = generated_sandbox
    sandbox.reset()
    in_memory = run_cycle(_engine(sandbox, tmp_path / "memory.db"))
    expected_org = _org(sandbox)

    sandbox.reset()
    state = tmp_path / "files.db"
    context, ws = stages.begin(
        _engine(sandbox, state), lambda cycle_id: Workspace(tmp_path / "run" / cycle_id), run_key="airflow:d:r1"
    )
    for stage in (stages.run_extract, stages.run_validate, stages.run_transform, stages.run_plan):
        stage(_engine(sandbox, state), ws)
    # Re-running the stages before the load changes nothing: the same plan comes out.
    first_plan = ws.get("plan", PLAN)
    for stage in (stages.run_extract, stages.run_validate, stages.run_transform, stages.run_plan):
        stage(_engine(sandbox, state), ws)
    assert ws.get("plan", PLAN) == first_plan
    stages.run_load(_engine(sandbox, state), ws)
    result = stages.run_commit(_engine(sandbox, state), ws)

    assert _counts(result.summary) == _counts(in_memory.summary)
    assert result.summary.quarantined > 0 and result.summary.created > 0  # the messy tenant exercised both
    assert _org(sandbox) == expected_org
    assert sorted(q.entra_id for q in result.quarantined) == sorted(q.entra_id for q in in_memory.quarantined)
    # Parquet files under the run path carried everything between the stages.
    names = {p.name for p in (tmp_path / "run" / context.cycle_id).iterdir()}
    assert {"users.parquet", "valid.parquet", "mapped.parquet", "plan.parquet", "results.parquet"} <= names
    # A commit re-run (its task cleared after it succeeded) changes nothing.
    again = stages.run_commit(_engine(sandbox, state), ws)
    assert again.notes == ["already committed"] and _counts(again.summary) == _counts(result.summary)


def test_a_load_re_run_resumes_its_recorded_jobs_instead_of_sending_again(
    generated_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    sandbox = generated_sandbox
    sandbox.reset()
    state = tmp_path / "state.db"
    _context, ws = stages.begin(
        _engine(sandbox, state), lambda cycle_id: Workspace(tmp_path / "run" / cycle_id), run_key="airflow:d:r2"
    )
    for stage in (stages.run_extract, stages.run_validate, stages.run_transform, stages.run_plan, stages.run_load):
        stage(_engine(sandbox, state), ws)
    created = _org(sandbox)
    ingest_before = _ingest_jobs(sandbox)
    # The load task is cleared after its jobs ran but before the commit: it reads them back.
    outcome = stages.run_load(_engine(sandbox, state), ws)
    assert outcome.counts["resumed"] == outcome.counts["sent"] > 0
    assert _ingest_jobs(sandbox) == ingest_before  # no new Bulk job
    assert _org(sandbox) == created
    result = stages.run_commit(_engine(sandbox, state), ws)
    summary = result.summary
    assert summary.created > 0 and summary.status == "succeeded"
    _each_user_logged_once(result)


def _each_user_logged_once(result: Any) -> None:
    """One provisioning-log row per user, and the summary's failures are the log's."""
    logged = [e.entra_id for e in result.log]
    assert len(logged) == len(set(logged)), "a user was logged twice"
    failed = sum(1 for e in result.log if e.status in (Status.FAILURE, Status.WARNING))
    waiting = sum(1 for r in result.results if not r.ok)
    assert failed == waiting <= result.summary.escrowed


def _ingest_jobs(sandbox: SandboxProcess) -> int:
    counts = sandbox.requests("salesforce")["by_route"]
    return sum(n for route, n in counts.items() if route == "POST /services/data/{version}/jobs/ingest")


def test_four_shards_leave_salesforce_as_one_does(generated_sandbox: SandboxProcess, tmp_path: Path) -> None:
    sandbox = generated_sandbox
    sandbox.reset()
    whole = run_cycle(_engine(sandbox, tmp_path / "whole.db"))
    expected_org = _org(sandbox)

    sandbox.reset()
    state = tmp_path / "sharded.db"
    context, ws = api.open_cycle(
        _engine(sandbox, state),
        lambda cycle_id: Workspace(tmp_path / "run" / cycle_id),
        holder="airflow:d:r",
        run_key="airflow:d:r",
        shards=4,
    )
    api.run_stage(_engine(sandbox, state), "extract", ws)
    for name in ("validate", "transform"):
        for shard in Shard.all(4):  # each shard as its own mapped task instance would
            api.run_stage(_engine(sandbox, state), name, ws, shard=shard)
    api.run_stage(_engine(sandbox, state), "plan", ws)
    loads = [api.run_stage(_engine(sandbox, state), "load", ws, shard=shard) for shard in reversed(Shard.all(4))]
    # A shard's load re-run (its task cleared) resumes its own jobs and sends nothing twice.
    again = api.run_stage(_engine(sandbox, state), "load", ws, shard=Shard(0, 4))
    assert again.counts["resumed"] == again.counts["sent"] == loads[-1].counts["sent"]
    result = api.run_stage(_engine(sandbox, state), "commit", ws)

    assert _counts(result.summary) == _counts(whole.summary)
    _each_user_logged_once(result)
    assert _org(sandbox) == expected_org
    assert all(outcome.counts["sent"] > 0 for outcome in loads)  # every shard had work
    # Reasons that stop only a create (new users without mail) reach the diff from every shard.
    held = sorted((q.entra_id, q.reasons) for q in result.quarantined)
    assert held == sorted((q.entra_id, q.reasons) for q in whole.quarantined)
    assert any(MAIL_MISSING in reasons for _, reasons in held)
    names = {p.name for p in (tmp_path / "run" / context.cycle_id).iterdir()}
    assert {f"mapped.{i}of4.parquet" for i in range(4)} <= names
    assert {f"results.{i}of4.parquet" for i in range(4)} <= names
    with pytest.raises(ValueError, match="not sharded"):
        api.run_stage(_engine(sandbox, state), "plan", ws, shard=Shard(1, 4))
