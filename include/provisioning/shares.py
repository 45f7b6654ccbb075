"""Shares (fractions of a whole) as people read them: percentages that never look equal to the
limit they are compared with.

A share rounded to whole percent reads "1% (limit 1%)" for 1.31 % against 1 %: the reader sees
a cycle stopped for being at its limit. :func:`percent_of` prints as many decimals as it takes
for a share to differ, as printed, from its limit (when it differs at all); :func:`percent`
prints a configured limit exactly (``0.015`` → ``1.5%``).
"""

from __future__ import annotations

MAX_DECIMALS = 4
"""Decimals of a percentage at most (0.0001 % is one in a million)."""


def percent(share: float, *, decimals: int | None = None) -> str:
    """``share`` (a fraction, 0.013 = 1.3 %) as a percentage: with ``decimals`` decimals, or
    with the fewest (up to :data:`MAX_DECIMALS`) that print it exactly, trailing zeros dropped."""
    value = share * 100
    if decimals is not None:
        return f"{value:.{decimals}f}%"
    for places in range(MAX_DECIMALS + 1):
        text = f"{value:.{places}f}"
        if float(text) == round(value, MAX_DECIMALS):
            return f"{text}%"
    return f"{value:.{MAX_DECIMALS}f}%"


def percent_of(share: float, limit: float) -> str:
    """``share`` beside its ``limit``: one decimal, or more until it no longer prints like the
    limit (:func:`percent`) when the two differ; ``1.31 %`` against ``1 %`` → ``1.3%``, ``1.0004 %``
    against ``1 %`` → ``1.0004%``; closer than :data:`MAX_DECIMALS` decimals tell: ``>1%`` or ``<1%``."""
    shown = percent(limit)
    for places in range(1, MAX_DECIMALS + 1):
        text = percent(share, decimals=places)
        if share == limit or float(text[:-1]) != float(shown[:-1]):
            return text
    return f">{shown}" if share > limit else f"<{shown}"
