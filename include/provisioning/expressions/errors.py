"""Errors of the expression language.

Two kinds, because they reach different people: a syntax error is found once, when the
mapping table loads, and belongs to whoever edits the table; a runtime error belongs to one
user's data in one cycle and quarantines that user only.
"""

from __future__ import annotations

from include.provisioning.errors import ConfigurationError, RecordError


class ExpressionSyntaxError(ConfigurationError, ValueError):
    """The expression text cannot be parsed or names something that does not exist.

    ``position`` is 1-based (the first character is position 1), as a person counts.
    """

    def __init__(self, position: int, message: str, *, expected: str | None = None, found: str | None = None):
        self.position = position
        self.reason = message
        self.expected = expected
        self.found = found
        super().__init__(f"at position {position}: {message}")


class ExpressionRuntimeError(RecordError, ValueError):
    """Evaluating the expression for one row failed (Entra reports these per object, too)."""
