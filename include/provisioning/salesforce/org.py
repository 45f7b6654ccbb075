"""The org as it is: every User (Bulk API 2.0 query) and the Profiles (REST SOQL).

A full cycle diffs against a fresh snapshot of the org's users, so this read has to be fast at
100,000 users: one Bulk 2.0 query job, result pages of ``page_size`` rows parsed by pandas' C
reader with every value as a string (``dtype=str``, ``keep_default_na=False``, so a user called
"NA" or "null" stays a string), then empty cells turned into None. Bulk query CSV writes a null
as nothing and Salesforce stores no empty strings, so empty means null.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import SalesforceMalformedRequest
from simple_salesforce.format import format_soql

from include.provisioning.salesforce.client import SalesforceSession
from include.provisioning.salesforce.fields import field_fault
from include.provisioning.salesforce.jobs import JOB_COMPLETE, BulkJobError, error_parts, error_text, wait_for_job

DEFAULT_PAGE_SIZE = 50_000
PROFILE_COLUMNS = ["Id", "Name", "UserLicenseId"]


def user_query(fields: list[str], where: str | None = None) -> str:
    """``SELECT Id, <fields> FROM User [WHERE ...]`` with each field once, Id first."""
    columns = ["Id", *dict.fromkeys(f for f in fields if f.lower() != "id")]
    soql = f"SELECT {', '.join(columns)} FROM User"
    return f"{soql} WHERE {where}" if where else soql


def linked_or_matching(sf_ids: Sequence[str], values_by_field: Mapping[str, Sequence[Any]]) -> str:
    """A ``WHERE`` for the users a cycle of a few Entra users needs (provision on demand): those
    they are linked to (``Id IN``) and those holding one of their values of ``values_by_field``
    (``<field> IN``: the matching fields, and the fields Salesforce keeps unique, which the diff
    checks creates against). SOQL compares text case-insensitively, so this finds at least what
    the diff compares (exactly, or case-insensitively for ``Username``). ``Id = null`` (nobody)
    when there is nothing to look for. Values are quoted by simple-salesforce's ``format_soql``."""
    clauses = [format_soql("Id IN {}", list(dict.fromkeys(sf_ids)))] if sf_ids else []
    for name, values in values_by_field.items():
        present = list(dict.fromkeys(v for v in values if not pd.isna(v) and v != ""))
        if present:
            clauses.append(format_soql(f"{name} IN {{}}", present))
    return " OR ".join(clauses) or "Id = null"


def fetch_users(
    session: SalesforceSession,
    fields: list[str],
    *,
    where: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    poll_initial: float = 0.05,
    poll_max: float = 1.0,
) -> pd.DataFrame:
    """The ORG frame: ``Id`` plus ``fields`` for every user (strings, booleans "true"/"false",
    nulls None), columns named exactly as asked. Raises ``SalesforceFieldError`` (a configuration
    error) when Salesforce refuses a field of the query (INVALID_FIELD, INVALID_TYPE), else
    ``BulkJobError``."""
    soql = user_query(fields, where)
    columns = ["Id", *dict.fromkeys(f for f in fields if f.lower() != "id")]
    try:
        created = session.call(
            lambda: session.bulk2()._client.create_job(Operation.query, soql), "create the User query job"
        )
    except SalesforceMalformedRequest as exc:
        # A field the configuration names that the org lacks (INVALID_FIELD) is not transient.
        fault = field_fault(*error_parts(exc))
        if fault is not None:
            raise fault from None
        raise BulkJobError(None, f"Salesforce refused the query {soql!r}: {error_text(exc)}") from None
    job_id = created["id"]
    info = wait_for_job(session, job_id, is_query=True, poll_initial=poll_initial, poll_max=poll_max)
    if info.get("state") != JOB_COMPLETE:
        raise BulkJobError(
            job_id, f"the User query ended {info.get('state')}: {info.get('errorMessage') or 'no error message'}"
        )
    pages: list[pd.DataFrame] = []
    locator = ""
    while True:
        page = session.call(
            lambda loc=locator: session.bulk2()._client.get_query_results(job_id, loc, page_size),
            f"read the results of query job {job_id}",
        )
        pages.append(_parse_page(page["records"], columns))
        locator = page["locator"]
        if not locator:
            break
    frame = pd.concat(pages, ignore_index=True) if len(pages) > 1 else pages[0]
    return _nulls_to_none(frame)


def _parse_page(text: str, columns: list[str]) -> pd.DataFrame:
    if not text.strip():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    by_lower = {c.lower(): c for c in columns}
    frame = frame.rename(columns=lambda c: by_lower.get(str(c).lower(), c))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BulkJobError(None, f"the User query results lack the column(s) {', '.join(missing)}")
    return frame[columns]


def _nulls_to_none(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(object)
    return frame.where(frame != "", None)


def fetch_profiles(session: SalesforceSession) -> pd.DataFrame:
    """Every Profile: ``Id``, ``Name``, ``UserLicenseId`` (a few hundred at most: REST is enough)."""
    records = session.query_all(f"SELECT {', '.join(PROFILE_COLUMNS)} FROM Profile")
    frame = pd.DataFrame.from_records(records, columns=PROFILE_COLUMNS)
    return frame.astype(object).where(frame.notna(), None)
