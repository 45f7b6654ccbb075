"""The User fields the engine sends to Salesforce, checked against the org's own describe.

A mapping target is a Salesforce field name, and a misspelt one (``FirstNme``) used to pass
``validate-config --connect`` and fail the next cycle's org query as a transient ``BulkJobError``
(exit 1, retried by Airflow). Two checks close that:

- ``check_user_fields``: ``validate-config --connect`` reads ``GET sobjects/User/describe``
  (simple-salesforce ``sf.User.describe()``) and names every row whose target the org does not
  have (with a close match), cannot create (any row: a create sends every mapped field) or cannot
  update (``apply: always`` rows: an update sends them; ``apply: on_create`` rows are never
  updated), and matching targets it cannot filter on (provision on demand selects by them).
- ``SalesforceFieldError``: Salesforce refusing a field during a cycle (the org query's
  ``INVALID_FIELD``/``INVALID_TYPE``, or an ingest job failed with "InvalidBatch : Field name not
  found") is a configuration error (exit 2, no retry) naming the field and its row; before, the
  query raised a transient ``BulkJobError`` and the refused job escrowed every user in it.

Describe's field flags are documented in the SOAP/REST reference ("DescribeSObjectResult",
``fields``: ``name``, ``createable``, ``updateable``, ``filterable``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from include.provisioning.errors import ConfigurationError

if TYPE_CHECKING:
    from include.provisioning.mapping import MappingTable
    from include.provisioning.model import RecordResult
    from include.provisioning.salesforce.client import SalesforceSession

PROFILE_TARGET = "ProfileName"
"""The mapping's profile row: resolved to ``ProfileId`` before it reaches Salesforce."""
ALWAYS_SENT = ("Id", "IsActive", "ProfileId")
"""Fields every cycle reads or writes whatever the table says (org query, deactivations)."""
FIELD_FAULTS = frozenset(
    {"INVALID_FIELD", "INVALID_TYPE", "INVALID_TYPE_FOR_OPERATION", "INVALID_FIELD_FOR_INSERT_UPDATE"}
)
"""Salesforce error codes (API "StatusCode" list) that mean a field or object name, or its use,
is wrong in a whole request: configuration, not load. Per-record codes of an ingest job's results
stay record failures (escrowed)."""
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'|Field name not found\s*:\s*(\S+)")


class SalesforceFieldError(ConfigurationError):
    """Salesforce refused a field the configuration names (``code``: INVALID_FIELD, INVALID_TYPE…).

    ``field`` is the field name when Salesforce's message gives it, ``origin`` where it comes from
    (``mapping.yaml row 2 (FirstNme)``) when the caller knows. Retrying cannot help."""

    def __init__(self, code: str, message: str, *, field: str | None = None, origin: str | None = None) -> None:
        self.code = code
        self.detail = message
        self.field = field
        self.origin = origin
        named = f"the field {field}" + (f" ({origin})" if origin else "") if field else "a field"
        super().__init__(
            f"Salesforce refused {named}: {code}: {message}; fix the mapping table "
            "(validate-config --connect checks every field against the org)"
        )

    def at(self, origin: str | None) -> SalesforceFieldError:
        """The same error naming where the field comes from."""
        return SalesforceFieldError(self.code, self.detail, field=self.field, origin=origin)


def field_fault(code: str, message: str) -> SalesforceFieldError | None:
    """A ``SalesforceFieldError`` when ``code`` is a field fault (``FIELD_FAULTS``), else None; the
    field name is read from Salesforce's wording ("No such column 'X'", "Field name not found : X")."""
    if code not in FIELD_FAULTS:
        return None
    match = _NO_SUCH_COLUMN.search(message)
    field = (match.group(1) or match.group(2)) if match else None
    # Salesforce's query banner repeats the SOQL over several lines: the last line is the reason.
    reason = message.strip().splitlines()[-1].strip() if message.strip() else code
    return SalesforceFieldError(code, reason, field=field)


def refused_job_fault(results: Iterable[RecordResult]) -> SalesforceFieldError | None:
    """The fault when Bulk 2.0 refused a whole ingest job for a column User lacks (the job Failed
    with "InvalidBatch : Field name not found : X" before processing a row, which ``load`` gives
    every row of the job as its result) and no row of ``results`` was written, else None (a
    group split over several jobs with one written keeps its results: they must be committed)."""
    results = list(results)
    if any(result.ok for result in results):
        return None
    for result in results:
        if result.ok or result.error_code != "InvalidBatch":
            continue
        match = _NO_SUCH_COLUMN.search(result.error_message or "")
        if match and match.group(2):
            return SalesforceFieldError(
                "INVALID_FIELD", f"Field name not found : {match.group(2)}", field=match.group(2)
            )
    return None


def field_origin(table: MappingTable, name: str | None) -> str | None:
    """``<file> row N (<target>)`` for the mapping row that sends ``name`` (``ProfileId`` is the
    ``ProfileName`` row), or None when no row does (a field every cycle sends)."""
    if name is None:
        return None
    wanted = PROFILE_TARGET if name.lower() == "profileid" else name
    for f in table.fields:
        if f.target.lower() == wanted.lower():
            return f"{table.name} row {f.row} ({f.target})"
    return None


def describe_user(session: SalesforceSession) -> dict[str, dict[str, Any]]:
    """Field name → its describe entry, from ``GET sobjects/User/describe`` (one REST request)."""
    # The lambda builds sf.User anew on a retry: the SFType copies the session id when created.
    body = session.call(lambda: session.sf.User.describe(), "describe User")  # noqa: PLW0108
    return {str(f["name"]): f for f in body.get("fields", [])}


def check_user_fields(table: MappingTable, fields: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems (one line each, naming the row) of the table's targets against ``fields``
    (``describe_user``'s answer); empty when Salesforce accepts every field the engine sends."""
    problems: list[str] = []
    from include.provisioning.mapping import suggest_name

    # Salesforce's API names are case-insensitive (SOQL, Bulk CSV headers): FIRSTNAME is FirstName.
    by_lower = {name.lower(): entry for name, entry in fields.items()}
    matching = {f.target for f in table.matching_fields()}
    for f in table.fields:
        name = "ProfileId" if f.target == PROFILE_TARGET else f.target
        where = f"{table.name} row {f.row} ({f.target})"
        entry = by_lower.get(name.lower())
        if entry is None:
            problems.append(f"{where}: Salesforce's User has no field {name}{suggest_name(name, fields)}")
            continue
        cannot = [
            verb
            for verb, flag, needed in (
                ("create", "createable", True),
                ("update", "updateable", f.apply == "always"),
                ("filter on", "filterable", f.target in matching),
            )
            if needed and entry.get(flag) is False
        ]
        if cannot:
            why = {
                "create": "a create sends it",
                "update": "apply: always sends it on update; use apply: on_create",
                "filter on": "it is a matching attribute",
            }
            reasons = "; ".join(why[c] for c in cannot)
            problems.append(f"{where}: Salesforce cannot {' or '.join(cannot)} User.{name} ({reasons})")
    for name in ALWAYS_SENT:
        if name.lower() not in by_lower:
            problems.append(f"Salesforce's User describe lacks {name}, which every cycle reads")
    return problems
