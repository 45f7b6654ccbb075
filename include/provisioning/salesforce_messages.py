"""Salesforce's error messages as plain text.

Salesforce writes line breaks inside some record-level error messages as HTML ``<br>``
(``DUPLICATE_USERNAME``: "Duplicate Username.<br>The username already exists in this or another
Salesforce organization..."). Stored as they come, they reach the provisioning log, the escrow,
the cycle report and the Provisioning page, where the markup is escaped and shows as a literal
``<br>``. The loader turns them into text where it reads them (``load.parse_record_error``, a
job's ``errorMessage``, ``jobs.error_text``); the readers of stored messages apply the same
function to rows written before that. (Outside the ``salesforce`` package, whose import loads
simple-salesforce: the report and the Provisioning page need only this.)
"""

from __future__ import annotations

import re

_LINE_BREAK_TAG = re.compile(r"\s*<br\s*/?>\s*", re.IGNORECASE)


def plain_message(message: str | None) -> str | None:
    """``message`` with every ``<br>`` (``<br/>``, ``<BR />``) and the spaces around it turned
    into one space; None stays None."""
    if message is None or "<" not in message:
        return message
    return _LINE_BREAK_TAG.sub(" ", message).strip()
