"""The Graph side of the engine: the client, the extraction of assigned users, app roles.

The cycle calls, inside one ``asyncio.run``::

    async with GraphClient(GraphSettings.from_env()) as client:
        roles = await read_app_roles(client, sp_id)
        extraction = await extract(client, service_principal_id=sp_id, select=[...], mode=Mode.AUTO,
                                   delta_link=saved, known=snapshot_roles)
"""

from include.provisioning.graph.client import (
    GraphAuthError,
    GraphClient,
    GraphError,
    GraphSettings,
    RetryPolicy,
)
from include.provisioning.graph.extract import DeltaTokenExpired, Extraction, extract
from include.provisioning.graph.roles import RoleSyncResult, read_app_roles, sync_app_roles_from_profiles

__all__ = [
    "DeltaTokenExpired",
    "Extraction",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphSettings",
    "RetryPolicy",
    "RoleSyncResult",
    "extract",
    "read_app_roles",
    "sync_app_roles_from_profiles",
]
