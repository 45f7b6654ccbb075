"""The Salesforce side of the engine, through simple-salesforce.

``client`` logs in (client credentials, JWT bearer or SOAP) and wraps the session; ``org`` reads
the users (Bulk 2.0 query) and profiles; ``profiles`` turns profile names into ProfileIds;
``load`` writes with Bulk 2.0 ingest jobs and joins the results back to users, ``csv_out``
writes their CSV and ``jobs`` waits for jobs.
"""

from typing import TYPE_CHECKING

from include.provisioning.lazy_modules import exported_from

if TYPE_CHECKING:
    from include.provisioning.salesforce.client import SalesforceLoginError, SalesforceSession, connect
    from include.provisioning.salesforce.jobs import BulkJobError
    from include.provisioning.salesforce.load import BulkLoader, LoadRequest
    from include.provisioning.salesforce.org import fetch_profiles, fetch_users
    from include.provisioning.salesforce.profiles import resolve_profiles
    from include.provisioning.salesforce.settings import SalesforceSettings

# Imported on first use, not with the package: the engine and the Airflow hooks import
# ``salesforce.settings`` in every task process, and only the stages that talk to Salesforce need
# simple-salesforce, requests and PyJWT.
__getattr__ = exported_from(
    __name__,
    {
        "SalesforceLoginError": "client",
        "SalesforceSession": "client",
        "connect": "client",
        "SalesforceSettings": "settings",
        "BulkJobError": "jobs",
        "BulkLoader": "load",
        "LoadRequest": "load",
        "fetch_profiles": "org",
        "fetch_users": "org",
        "resolve_profiles": "profiles",
    },
)

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
