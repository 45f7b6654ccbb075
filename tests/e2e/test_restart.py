"""Entra's administrator actions through the front door: "Restart provisioning" forgets the delta
link, the escrow and the quarantine, and the next cycle is full; "reset quarantine" lifts it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from include.provisioning import api
from include.provisioning.cycle import CycleResult, Engine
from include.provisioning.model import Mode


def test_restart_provisioning_clears_delta_link_escrow_and_quarantine(
    engine: Engine, cycle: Callable[..., CycleResult]
) -> None:
    first = cycle()
    assert first.summary.escrowed >= 1  # the example org holds a username taken elsewhere
    assert engine.state.watermark() is not None and engine.state.escrow_entries()
    assert cycle().summary.mode is Mode.INCREMENTAL
    engine.state.quarantine_job("EncounteredEscrowProportionThreshold", "test", backoff=dt.timedelta(hours=24))
    api.take_lease(engine, "person")
    try:
        done = api.restart_provisioning(engine)
    finally:
        api.give_lease_back(engine)
    assert "next cycle is full" in done and "quarantine lifted" in done
    assert engine.state.watermark() is None and engine.state.escrow_entries() == []
    assert not engine.state.job_quarantine().active
    after = api.sync(engine)
    assert after.summary.mode is Mode.FULL
    assert after.summary.created == 0  # the users it provisioned are still recognised, not created again


def test_reset_quarantine_and_a_successful_cycle_lift_it(engine: Engine, cycle: Callable[..., CycleResult]) -> None:
    engine.state.quarantine_job("AuthenticationFailed", "test", backoff=dt.timedelta(hours=24))
    assert api.reset_quarantine(engine).startswith("quarantine lifted")
    assert api.reset_quarantine(engine) == "the job was not quarantined"
    engine.state.quarantine_job("AuthenticationFailed", "test", backoff=dt.timedelta(hours=24))
    result = cycle()
    assert result.job_quarantine is not None and not result.job_quarantine.active
