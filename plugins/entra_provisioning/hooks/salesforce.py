"""The ``salesforce`` connection as the engine's ``SalesforceSettings``.

The connection type, its form and its Test button belong to apache-airflow-providers-salesforce
(``SalesforceHook``). The engine logs in through its own simple-salesforce session (retries,
timeouts, an explicit CA bundle, client credentials first), so the provider's hook is not used
for the cycle; this module reads the same connection for the engine. One connection serves both:
the provider reads login, password and the extras ``security_token``, ``domain``,
``consumer_key``, ``consumer_secret``, ``private_key``/``private_key_file_path``, ``version``;
the engine reads the same names plus ``verify`` (CA bundle) and ``timeout``.
"""

from __future__ import annotations

from entra_provisioning.hooks.connection import read_connection
from include.provisioning.salesforce.settings import SalesforceSettings
from include.provisioning.settings import SALESFORCE_CONN_ID


def salesforce_settings(conn_id: str = SALESFORCE_CONN_ID) -> SalesforceSettings:
    """``SalesforceSettings`` for the engine's ``connect()`` from the Airflow connection ``conn_id``.

    Raises ``AirflowNotFoundException`` when the connection is undefined, and the engine's
    ``SettingsError`` (naming the connection) when it holds no complete login.
    """
    return SalesforceSettings.from_connection(read_connection(conn_id))
