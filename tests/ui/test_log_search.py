"""The log search's condition (pure logic and a throwaway SQLite table): what a search text is
taken for, and which rows a name search matches. The query plans of each search on both back ends
are in ``test_log_query_plans.py``; the searches on real cycles in ``test_provisioning_api.py``."""

from __future__ import annotations

import datetime as dt

import pytest
from entra_provisioning.ui import log_query
from sqlalchemy import create_engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from include.provisioning.state import schema

LOG = schema.provisioning_log


@pytest.mark.parametrize(
    ("search", "kind"),
    [
        ("00000000-0000-0000-0000-00000000000A", "entra_id"),
        ("005000000000001AAA", "sf_id"),
        ("005000000000001", "sf_id"),
        ("005000000001", "name"),  # too short for an id
        ("Adele V", "name"),
        ("adele.vance@contoso.example", "name"),
    ],
)
def test_a_search_is_taken_for_what_its_shape_says(search: str, kind: str) -> None:
    assert log_query.search_kind(search) == kind


def test_a_name_is_the_start_of_the_upn_or_of_the_display_name_lowered_by_the_database() -> None:
    condition = log_query._search_condition("Adele V", "postgresql")
    text = str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    # PostgreSQL: the index's expression (collation "C", so a range is "starts with"), each side lowered.
    ranges = [
        f"(lower(provisioning_log.{column}) COLLATE \"C\") >= lower('Adele V') AND "
        f"(lower(provisioning_log.{column}) COLLATE \"C\") < (lower('Adele V') || '\U0010ffff')"
        for column in ("upn", "display_name")
    ]
    assert text == f"{ranges[0]} OR {ranges[1]}"
    on_sqlite = str(log_query._search_condition("Adele V", "sqlite").compile(dialect=sqlite.dialect()))
    assert "COLLATE" not in on_sqlite and on_sqlite.count("lower(") == 8  # both bounds of two ranges, each side


def test_which_rows_a_name_search_finds_on_sqlite() -> None:
    engine = create_engine("sqlite://")
    schema.metadata.create_all(engine)
    people = [
        ("adele.vance@contoso.example", "Adele Vance"),
        ("alex.wilber@contoso.example", "Alex Wilber"),
        ("a.v@contoso.example", None),  # a row written before schema version 7
        ("e.dupont@contoso.example", "Émile Dupont"),
        ("x@contoso.example", "Vance Refrigeration"),
    ]
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    rows = [
        {"cycle_id": "c", "action": "Update", "status": "Success", "entra_id": f"e{n}", "upn": upn}
        | {"display_name": name, "changes": "{}", "at": at}
        for n, (upn, name) in enumerate(people)
    ]
    with engine.begin() as conn:
        conn.execute(insert(LOG), rows)

    def found(search: str) -> list[str]:
        with engine.connect() as conn:
            query = select(LOG.c.upn).where(log_query._search_condition(search, "sqlite")).order_by(LOG.c.id)
            return list(conn.execute(query).scalars())

    assert found("ADELE v") == ["adele.vance@contoso.example"]  # by the display name: the UPN has a dot
    assert found("a") == ["adele.vance@contoso.example", "alex.wilber@contoso.example", "a.v@contoso.example"]
    assert found("vance") == ["x@contoso.example"]  # a start, not any word of the name
    # SQLite's lower() folds ASCII letters only; the text is lowered the same way, so É matches É.
    assert found("ÉMILE") == found("Émile") == ["e.dupont@contoso.example"] and found("émile") == []
    assert found("%") == found("_") == []  # no LIKE: wildcards are text
    engine.dispose()
