"""Shares printed beside their limits (shares.py): never rounded so that they look equal."""

from __future__ import annotations

import pytest

from include.provisioning.shares import percent, percent_of


@pytest.mark.parametrize(
    ("share", "shown"),
    [(0.01, "1%"), (0.4, "40%"), (0.015, "1.5%"), (0.00125, "0.125%"), (1.0, "100%"), (0.0, "0%")],
)
def test_a_limit_is_printed_exactly_without_trailing_zeros(share: float, shown: str) -> None:
    assert percent(share) == shown


@pytest.mark.parametrize(
    ("share", "limit", "shown"),
    [
        (23 / 1750, 0.01, "1.3%"),  # issue 8: 1.31 % read "1% (limit 1%)"
        (0.6, 0.4, "60.0%"),
        (0.0104, 0.01, "1.04%"),  # one decimal would read 1.0%, like the limit
        (0.010004, 0.01, "1.0004%"),
        (0.0100000001, 0.01, ">1%"),  # closer than four decimals tell
        (0.0099999999, 0.01, "<1%"),
        (0.01, 0.01, "1.0%"),  # equal shares may look equal
    ],
)
def test_a_share_never_looks_equal_to_a_different_limit(share: float, limit: float, shown: str) -> None:
    assert percent_of(share, limit) == shown


def test_every_share_near_a_limit_reads_differently_from_it_and_on_its_side() -> None:
    limit = 0.01
    for failed in (*range(1, 100), *range(101, 400)):
        share = failed / 10_000
        text = percent_of(share, limit)
        shown = float(text.strip("<>%"))
        assert shown != 1.0, (failed, text)
        assert (shown > 1.0) == (share > limit), (failed, text)
