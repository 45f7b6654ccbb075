"""The Salesforce side of the engine, through simple-salesforce.

``client`` logs in (client credentials, JWT bearer or SOAP) and wraps the session; ``org`` reads
the users (Bulk 2.0 query) and profiles; ``profiles`` turns profile names into ProfileIds;
``load`` writes with Bulk 2.0 ingest jobs and joins the results back to users, ``csv_out``
writes their CSV and ``jobs`` waits for jobs.
"""

from include.provisioning.salesforce.client import (
    SalesforceLoginError,
    SalesforceSession,
    SalesforceSettings,
    connect,
)
from include.provisioning.salesforce.jobs import BulkJobError
from include.provisioning.salesforce.load import BulkLoader, LoadRequest
from include.provisioning.salesforce.org import fetch_profiles, fetch_users
from include.provisioning.salesforce.profiles import resolve_profiles

__all__ = [
    "BulkJobError",
    "BulkLoader",
    "LoadRequest",
    "SalesforceLoginError",
    "SalesforceSession",
    "SalesforceSettings",
    "connect",
    "fetch_profiles",
    "fetch_users",
    "resolve_profiles",
]
