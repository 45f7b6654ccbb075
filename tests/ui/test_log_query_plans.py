"""Each log filter reads its index on both back ends (the query plans, not timings: the 1M-row
benchmark measures the time). PostgreSQL is told to avoid sequential scans, since on an empty table
its planner would rightly prefer one."""

from __future__ import annotations

import datetime as dt

import pytest
from entra_provisioning.ui import log_query

from include.provisioning.state import StateStore

WINDOW_START = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
WANTED = [
    (log_query.LogFilter(status="Failure"), "ix_provisioning_log_status_id"),
    (log_query.LogFilter(error_code="DUPLICATE_USERNAME"), "ix_provisioning_log_error_code_id"),
    (log_query.LogFilter(cycle_id="20261130T100000Z-ab12", action="Create"), "ix_provisioning_log_cycle_id_id"),
    (log_query.LogFilter(search="00000000-0000-0000-0000-000000000001"), "ix_provisioning_log_entra_id_id"),
    (log_query.LogFilter(search="005000000000001AAA"), "ix_provisioning_log_sf_id_id"),
    (log_query.LogFilter(search="005000000000001"), "ix_provisioning_log_sf_id_id"),
    # A name: its UPN's index and its display name's, each read for its range.
    (
        log_query.LogFilter(search="adele.v"),
        ("ix_provisioning_log_upn_lower", "ix_provisioning_log_display_name_lower"),
    ),
    (
        log_query.LogFilter(search="Adele V", action="Update"),
        ("ix_provisioning_log_upn_lower", "ix_provisioning_log_display_name_lower"),
    ),
    (log_query.LogFilter(since=WINDOW_START, until=WINDOW_START + dt.timedelta(hours=1)), "ix_provisioning_log_at_id"),
]


@pytest.mark.parametrize(
    ("log_filter", "index"), WANTED, ids=[repr(f.search or f.status or f.error_code or f.cycle_id) for f, _ in WANTED]
)
@pytest.mark.parametrize("before", [None, 1000], ids=["first page", "next page"])
def test_a_filtered_page_reads_the_filters_index(
    url: str, log_filter: log_query.LogFilter, index: str | tuple[str, ...], before: int | None
) -> None:
    with StateStore(url) as store, store._engine.connect() as conn:
        query = log_query._select(log_filter, conn.dialect.name, before, 51, by_time=log_filter.until is not None)
        compiled = query.compile(conn)
        if conn.dialect.name == "sqlite":
            params = tuple(compiled.params[name] for name in compiled.positiontup or ())
            plan = " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))
    for name in (index,) if isinstance(index, str) else index:
        assert name in plan, plan
