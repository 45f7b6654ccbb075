"""The one-writer lease in the state store, on SQLite and PostgreSQL: one holder at a time, renewal,
expiry and take-over, release, and two processes racing for it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from include.provisioning.errors import LeaseBusyError, LeaseLostError, TransientError
from include.provisioning.model import CycleStatus, Mode
from include.provisioning.state import StateStore
from tests.sandbox_process import REPO_ROOT

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(minutes=10)


def test_one_holder_at_a_time_until_release(store: StateStore) -> None:
    first = store.acquire_lease("airflow:dag:run1", ttl=TTL, now=T0)
    assert first.granted and first.took_over is None
    busy = store.acquire_lease("cli:host:42", ttl=TTL, now=T0 + dt.timedelta(minutes=1))
    assert not busy.granted
    assert busy.lease.holder == "airflow:dag:run1"
    assert "held by airflow:dag:run1" in busy.lease.describe()
    assert store.release_lease("cli:host:42") is False  # not the holder: nothing changes
    assert store.lease() is not None and store.lease().holder == "airflow:dag:run1"  # type: ignore[union-attr]
    assert store.release_lease("airflow:dag:run1") is True
    assert store.lease() is None
    assert store.acquire_lease("cli:host:42", ttl=TTL, now=T0 + dt.timedelta(minutes=2)).granted


def test_the_holder_renews_and_reacquires_its_own_lease(store: StateStore) -> None:
    store.acquire_lease("run1", ttl=TTL, now=T0)
    renewed = store.renew_lease("run1", ttl=TTL, now=T0 + dt.timedelta(minutes=9))
    assert renewed.expires_at == T0 + dt.timedelta(minutes=19)
    again = store.acquire_lease("run1", ttl=TTL, now=T0 + dt.timedelta(minutes=15))
    assert again.granted and again.lease.acquired_at == T0  # same holding, extended
    assert not store.acquire_lease("run2", ttl=TTL, now=T0 + dt.timedelta(minutes=18)).granted


def test_an_expired_lease_is_taken_over_and_its_holder_learns_it_lost(store: StateStore) -> None:
    store.acquire_lease("killed-run", ttl=TTL, now=T0)
    grant = store.acquire_lease("next-run", ttl=TTL, now=T0 + TTL + dt.timedelta(seconds=1))
    assert grant.granted
    assert grant.took_over is not None and grant.took_over.holder == "killed-run"
    with pytest.raises(LeaseLostError, match="now held by next-run"):
        store.renew_lease("killed-run", ttl=TTL, now=T0 + TTL + dt.timedelta(seconds=2))
    assert store.release_lease("killed-run") is False


def test_force_takes_a_live_lease(store: StateStore) -> None:
    store.acquire_lease("stuck", ttl=TTL, now=T0)
    grant = store.acquire_lease("person", ttl=TTL, now=T0 + dt.timedelta(minutes=1), force=True)
    assert grant.granted and grant.took_over is not None and grant.took_over.holder == "stuck"


def test_busy_and_lost_are_transient_errors() -> None:
    assert issubclass(LeaseBusyError, TransientError) and issubclass(LeaseLostError, TransientError)


def test_a_run_resumes_its_uncommitted_cycle_only_while_it_is_the_newest(store: StateStore) -> None:
    first, resumed = store.open_cycle(Mode.AUTO, "fp", run_key="airflow:d:run1", now=T0)
    assert not resumed
    store.fail_cycle(first, "task failed")  # the run's teardown closed it
    again, resumed = store.open_cycle(Mode.AUTO, "fp", run_key="airflow:d:run1", now=T0 + dt.timedelta(minutes=1))
    assert (again, resumed) == (first, True)
    assert store.cycle(first).status is CycleStatus.RUNNING  # type: ignore[union-attr]
    other, resumed = store.open_cycle(Mode.AUTO, "fp", run_key="airflow:d:run2", now=T0 + dt.timedelta(minutes=2))
    assert other != first and not resumed
    assert "no longer holds the lease" in (store.cycle(first).reason or "")  # type: ignore[union-attr]
    # run1 cleared again: another cycle started since, so its old plan is stale: a new cycle.
    newer, resumed = store.open_cycle(Mode.AUTO, "fp", run_key="airflow:d:run1", now=T0 + dt.timedelta(minutes=3))
    assert newer not in (first, other) and not resumed


RACER = textwrap.dedent(
    """
    import sys, time
    from include.provisioning.state import StateStore
    store = StateStore(sys.argv[1])
    grant = store.acquire_lease(sys.argv[2])
    print("granted" if grant.granted else "busy", flush=True)
    time.sleep(1.0)
    """
)


def test_two_processes_racing_for_the_lease_get_exactly_one_grant(
    open_store: Callable[..., StateStore], url: str
) -> None:
    open_store().close()  # schema created once, before the race
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, f"racer-{n}"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    answers = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert sorted(answers) == ["busy", "busy", "busy", "granted"], answers
